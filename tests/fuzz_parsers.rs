//! Mutation fuzzing of the parsers of outside input, on stable Rust with no fuzzing engine: each
//! target starts from real files (a trained run's config, manifest, chunk order and metrics, a
//! k2 results file, Pythia's lm-eval results, stories260K's safetensors, index, tokenizer.json
//! and SentencePiece model) and feeds seeded random mutations of them (bit flips, byte
//! overwrites, truncations, duplicated and deleted spans, splices of interesting bytes) to the
//! parser k2 uses. A parser may reject the input with an error; it must never panic.
//!
//! CI runs a short smoke per target (`K2_FUZZ_ITERS`, default 300). The full run is the same
//! test with `K2_FUZZ_ITERS=1000000`; it prints executions and panics per target.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::*;

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"=",
    b"\n",
    b"-1",
    b"1e308",
    b"NaN",
    b"18446744073709551616",
    b"\xff\xfe",
    b"\0",
    b"../",
    b"\"\"",
    b"[[",
    b"]]",
    b"null",
];

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            2 => b.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let (i, n) = (rng.below(len), 1 + rng.below(16));
                let span: Vec<u8> = b[i..(i + n).min(len)].to_vec();
                let at = rng.below(len);
                b.splice(at..at, span);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(32)).min(len);
                b.drain(i..j);
            }
            _ => {
                let at = rng.below(len + 1);
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                b.splice(at..at, ins.iter().copied());
            }
        }
    }
    b
}

/// One parser: writes the input where it reads it and parses it; errors are fine.
struct Target {
    name: &'static str,
    seed: Vec<u8>,
    file: PathBuf,
    parse: Box<dyn Fn(&Path)>,
}

fn iters() -> usize {
    std::env::var("K2_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn targets(run: &Path, work: &Path) -> Vec<Target> {
    let stories = fixtures().join("models/stories260K-hf");
    let pythia = fixtures()
        .join("pythia_evals/pythia-v1/pythia-70m-deduped/zero-shot/70m-deduped_step32.json");
    let k2_results = run.join("eval/ckpt_0001/k2_facts.json");
    let read = |p: &Path| std::fs::read(p).unwrap();
    let at = |dir: &str, name: &str| {
        let d = work.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    };
    // The index fuzzed beside a real shard, so a parse that passes goes on to open it.
    let index_dir = work.join("index");
    std::fs::create_dir_all(&index_dir).unwrap();
    std::fs::copy(
        stories.join("model.safetensors"),
        index_dir.join("model-00001-of-00001.safetensors"),
    )
    .unwrap();
    let index_seed = serde_json::json!({
        "metadata": {"total_size": 1},
        "weight_map": {"model.embed_tokens.weight": "model-00001-of-00001.safetensors"}
    })
    .to_string()
    .into_bytes();
    // A family checkpoint's config and tokenizer config, fuzzed beside its real files so a parse
    // that passes goes on to load the weights or the tokenizer.
    let families = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families");
    let family_dir = |name: &str, variant: &str, skip: &str| {
        let d = work.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(families.join(variant)).unwrap() {
            let e = e.unwrap();
            if e.file_name() != skip {
                std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
            }
        }
        d
    };
    let neox_cfg = family_dir("neox-config", "pythia-parallel", "config.json");
    let olmo2_cfg = family_dir("olmo2-config", "olmo2", "config.json");
    let neox_tok = family_dir("neox-tokcfg", "olmo-tied", "tokenizer_config.json");
    let family_config = |p: &Path| {
        if k2_model::Arch::from_hf_json(p).is_ok() {
            let _ = k2_model::load_decoder(
                p.parent().unwrap(),
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
            );
        }
    };
    // The Hub's answers, served raw by a local server from the fuzzed file: a JSON listing (refs,
    // then a revision's file list) after fixed headers, and a whole response head (status line and
    // headers) for the HEAD request that resolves a file.
    let listing_file = at("hub-listing", "listing.json");
    let head_file = at("hub-head", "response-head.txt");
    let dataset_listing_file = at("hub-dataset-listing", "listing.json");
    let listing_url = raw_server(listing_file.clone(), false);
    let dataset_listing_url = raw_server(dataset_listing_file.clone(), false);
    let head_url = raw_server(head_file.clone(), true);
    let hub_cache = work.join("hub-cache");
    let client = move |url: &str| {
        let mut c = k2_archive::hub::HubClient::new(
            url,
            None,
            k2_archive::hub::cache::HubCache::new(hub_cache.clone()),
        )
        .unwrap();
        c.retries = 0;
        c.backoff = std::time::Duration::ZERO;
        c
    };
    let listing_client = client.clone();
    let dataset_client = client.clone();
    // A dataset repository's listing: the split's files are chosen from it (config folders, the
    // parquet export's layouts), then fetched (the raw server answers the HEAD with JSON too).
    let dataset_listing_seed = serde_json::json!({
        "id": "allenai/ai2_arc", "sha": "0123456789abcdef0123456789abcdef01234567",
        "siblings": [
            {"rfilename": "README.md", "size": 9, "blobId": "bb"},
            {"rfilename": "ARC-Easy/test-00000-of-00001.parquet", "size": 12, "blobId": "aa",
             "lfs": {"sha256": "ab".repeat(32), "size": 12}},
            {"rfilename": "ARC-Easy/train/0000.parquet", "size": 12, "blobId": "ac",
             "lfs": {"sha256": "ac".repeat(32), "size": 12}}
        ]
    })
    .to_string()
    .into_bytes();
    let listing_seed = serde_json::json!({
        "branches": [{"name": "step1000", "ref": "refs/heads/step1000",
                      "targetCommit": "0123456789abcdef0123456789abcdef01234567"}],
        "tags": [], "converts": [],
        "id": "org/m", "sha": "0123456789abcdef0123456789abcdef01234567",
        "siblings": [{"rfilename": "model.safetensors", "size": 12,
                      "blobId": "aa", "lfs": {"sha256": "ab".repeat(32), "size": 12}}]
    })
    .to_string()
    .into_bytes();
    let head_seed = format!(
        "HTTP/1.1 302 Found\r\nLocation: /cdn/{}\r\nX-Repo-Commit: {}\r\n\
         X-Linked-Etag: \"{}\"\r\nX-Linked-Size: 12\r\nETag: \"aa\"\r\nContent-Length: 0\r\n",
        "ab".repeat(32),
        "01".repeat(20),
        "ab".repeat(32)
    )
    .into_bytes();
    vec![
        Target {
            name: "Hub JSON listings",
            seed: listing_seed,
            file: listing_file,
            parse: Box::new(move |_| {
                let c = listing_client(&listing_url);
                let _ = c.refs("org/m");
                let _ = c.revision_info("org/m", "step1000");
            }),
        },
        Target {
            name: "Hub dataset listings",
            seed: dataset_listing_seed,
            file: dataset_listing_file,
            parse: Box::new(move |_| {
                let c = dataset_client(&dataset_listing_url)
                    .for_kind(k2_archive::hub::RepoKind::Dataset);
                for split in ["test", "train"] {
                    let s = k2_archive::hub::SplitRef {
                        repo: "allenai/ai2_arc".into(),
                        config: Some("ARC-Easy".into()),
                        split: split.into(),
                    };
                    let _ = k2_archive::hub::pull_split(&c, &s, "main");
                }
            }),
        },
        Target {
            name: "Hub HTTP headers",
            seed: head_seed,
            file: head_file,
            parse: Box::new(move |_| {
                let _ = client(&head_url).file_meta("org/m", "step1000", "model.safetensors");
            }),
        },
        Target {
            name: "config.json (gpt_neox)",
            seed: read(&families.join("pythia-parallel/config.json")),
            file: neox_cfg.join("config.json"),
            parse: Box::new(family_config),
        },
        Target {
            name: "config.json (olmo2)",
            seed: read(&families.join("olmo2/config.json")),
            file: olmo2_cfg.join("config.json"),
            parse: Box::new(family_config),
        },
        Target {
            name: "tokenizer_config.json (GPTNeoXTokenizer)",
            seed: read(&families.join("olmo-tied/tokenizer_config.json")),
            file: neox_tok.join("tokenizer_config.json"),
            parse: Box::new(|p| {
                if let Ok(t) = k2_model::CheckpointTokenizer::load(p.parent().unwrap()) {
                    let _ = t.encode("The cat sat.", true);
                }
            }),
        },
        Target {
            name: "config TOML",
            seed: read(&run.join("config.toml")),
            file: at("config", "config.toml"),
            parse: Box::new(|p| {
                let _ = k2_trainer::TrainConfig::load(p);
            }),
        },
        Target {
            name: "manifest",
            seed: read(&run.join("checkpoints.toml")),
            file: at("manifest", "checkpoints.toml"),
            parse: Box::new(|p| {
                let _ = k2_archive::Manifest::load(p);
            }),
        },
        Target {
            name: "chunk order",
            seed: read(&run.join("chunk_order.toml")),
            file: at("order", "chunk_order.toml"),
            parse: Box::new(|p| {
                let _ = k2_archive::ChunkOrder::load(p);
            }),
        },
        Target {
            name: "metrics.jsonl",
            seed: read(&run.join("metrics.jsonl")),
            file: at("metrics", "metrics.jsonl"),
            parse: Box::new(|p| {
                let _ = k2_archive::metrics_log::read_metrics_log(p);
            }),
        },
        Target {
            name: "lm-eval results (k2, v0.4)",
            seed: read(&k2_results),
            file: at("results4", "k2_facts.json"),
            parse: Box::new(|p| {
                let _ = k2_analysis::inputs::read_results_file(p);
                let _ = k2_eval::results::stored_key(p);
            }),
        },
        Target {
            name: "lm-eval results (Pythia, v0.3)",
            seed: read(&pythia),
            file: at("results3", "70m-deduped_step32.json"),
            parse: Box::new(|p| {
                let _ = k2_analysis::inputs::read_results_file(p);
            }),
        },
        Target {
            name: "safetensors",
            seed: read(&stories.join("model.safetensors")),
            file: at("safetensors", "model.safetensors"),
            parse: Box::new(|p| {
                let mut out = std::collections::BTreeMap::new();
                let _ = k2_model::weights::load_file(
                    p,
                    candle_core::DType::F32,
                    &candle_core::Device::Cpu,
                    &mut out,
                );
            }),
        },
        Target {
            name: "safetensors index JSON",
            seed: index_seed,
            file: index_dir.join("model.safetensors.index.json"),
            parse: Box::new(|p| {
                let dir = p.parent().unwrap();
                if let Ok(files) = k2_model::weight_files(dir) {
                    assert!(files.iter().all(|f| f.starts_with(dir)), "{files:?}");
                }
            }),
        },
        Target {
            name: "tokenizer.json",
            seed: read(&stories.join("tokenizer.json")),
            file: at("tokenizer", "tokenizer.json"),
            parse: Box::new(|p| {
                let _ = k2_model::load_tokenizer(p);
            }),
        },
        Target {
            name: "SentencePiece model",
            seed: read(&fixtures().join("models/stories260K/tok512.model")),
            file: at("sp", "tokenizer.model"),
            parse: Box::new(|p| {
                let _ = k2_eval::sp_tokenizer::tokenizer_json(p);
            }),
        },
    ]
}

/// A local HTTP server that answers every request from `file` as it is at that moment: with
/// `head`, the file is the response head (status line and headers) and the body is empty; else it
/// is a JSON body after a fixed 200 head. Each connection is answered once and closed.
fn raw_server(file: PathBuf, head: bool) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let bytes = std::fs::read(&file).unwrap_or_default();
            let mut out = Vec::new();
            if head {
                out.extend_from_slice(&bytes);
                out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
            } else {
                out.extend_from_slice(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&bytes);
            }
            let _ = conn.write_all(&out);
        }
    });
    url
}

/// A `--data` folder for `task` holding a copy of its dataset repository from the Hub-schema
/// fixtures (`fixtures/datasets/<repo>`); `file` (inside the repository) is the one fuzzed: the
/// parquet reader (footer, page headers, snappy and zstd pages, nested columns) and the row
/// accessors see every mutation.
fn task_target(work: &Path, task: &'static str, repo_id: &str, file: &str) -> Target {
    let root = work.join(format!("data-{task}"));
    let mut stack = vec![PathBuf::from(repo_id)];
    while let Some(rel) = stack.pop() {
        let from = repo().join("fixtures/datasets").join(&rel);
        let to = root.join(&rel);
        if from.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for e in std::fs::read_dir(&from).unwrap().flatten() {
                stack.push(rel.join(e.file_name()));
            }
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let build = |root: &Path| {
        let data = k2_eval::datasets::DataSource::Local(root.to_path_buf());
        k2_eval::registry::build(task, &data, true, 8)
    };
    // The unmutated seed is a valid data set: mutations start from something that parses.
    if let Err(e) = build(&root) {
        panic!("{task}: the seed data does not load: {e}");
    }
    let path = root.join(repo_id).join(file);
    Target {
        name: task,
        seed: std::fs::read(&path).unwrap(),
        file: path,
        parse: Box::new(move |p| {
            let root = p
                .ancestors()
                .find(|a| a.ends_with(format!("data-{task}")))
                .unwrap();
            if let Ok(t) = build(root) {
                for doc in 0..t.num_docs().min(3) {
                    let _ = t.requests(doc, 0);
                    if t.max_shots().unwrap_or(0) >= 1 {
                        let _ = t.requests(doc, 1);
                    }
                }
            }
        }),
    }
}

#[test]
fn parsers_of_outside_input_never_panic_on_mutated_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    ok(k2()
        .args([
            "eval",
            "--quiet",
            "--tasks",
            "k2_facts",
            "--probe-docs",
            "8",
            "--run",
        ])
        .arg(&run));
    let work = tmp.path().join("fuzz");
    let mut all = targets(&run, &work);
    for (task, dir, file) in [
        (
            "arc_easy",
            "allenai/ai2_arc",
            "ARC-Easy/test-00000-of-00001.parquet",
        ),
        (
            "hellaswag",
            "Rowan/hellaswag",
            "default/validation/0000.parquet",
        ),
        (
            "piqa",
            "baber/piqa",
            "data/validation-00000-of-00001.parquet",
        ),
        (
            "winogrande",
            "allenai/winogrande",
            "winogrande_xl/train-00000-of-00001.parquet",
        ),
        (
            "boolq",
            "aps/super_glue",
            "boolq/validation-00000-of-00001.parquet",
        ),
        (
            "openbookqa",
            "allenai/openbookqa",
            "main/test-00000-of-00001.parquet",
        ),
        ("gsm8k", "openai/gsm8k", "main/test-00000-of-00001.parquet"),
        (
            "lambada_openai",
            "EleutherAI/lambada_openai",
            "default/test/0000.parquet",
        ),
        (
            "truthfulqa_mc2",
            "truthfulqa/truthful_qa",
            "multiple_choice/validation-00000-of-00001.parquet",
        ),
        (
            "mmlu_anatomy",
            "cais/mmlu",
            "anatomy/dev-00000-of-00001.parquet",
        ),
        (
            "wikitext",
            "EleutherAI/wikitext_document_level",
            "wikitext-2-raw-v1/test/0000.parquet",
        ),
    ] {
        all.push(task_target(&work, task, dir, file));
    }
    let n = iters();
    // Panics are caught and counted, not printed one by one; the first one's message and place
    // are kept for the report.
    static FIRST: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    std::panic::set_hook(Box::new(|info| {
        let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(info.to_string());
        }
    }));
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for t in all {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ t.name.len() as u64);
        let start = Instant::now();
        let mut panics = 0;
        for i in 0..n {
            let input = if i == 0 {
                t.seed.clone()
            } else {
                mutate(&t.seed, &mut rng)
            };
            std::fs::write(&t.file, &input).unwrap();
            if catch_unwind(AssertUnwindSafe(|| (t.parse)(&t.file))).is_err() {
                panics += 1;
                if failures.len() < 5 {
                    let first = FIRST.lock().unwrap_or_else(|e| e.into_inner()).take();
                    failures.push(format!(
                        "{}: iteration {i}: {}",
                        t.name,
                        first.unwrap_or_default()
                    ));
                }
            }
        }
        report.push(format!(
            "{:<32} {n:>8} executions, {panics} panics, {:.1}s",
            t.name,
            start.elapsed().as_secs_f64()
        ));
    }
    let _ = std::panic::take_hook();
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "panics: {failures:?}\n{}",
        report.join("\n")
    );
}

/// The crash the fuzzer found in `Hub HTTP headers`: ureq 2.12 panics reading a header line
/// without a value (`X-Linked-Size` with no colon). k2 must answer with an error naming the URL.
#[test]
fn a_header_line_without_a_value_is_an_error_not_a_crash() {
    let work = tempfile::tempdir().unwrap();
    for head in [
        "HTTP/1.1 200 OK\r\nX-Repo-Commit: 0123\r\nETag: \"aa\"\r\nX-Linked-Size",
        "HTTP/1.1 302 Found\r\nLocation",
        "HTTP/1.1 200 OK\r\nContent-Length",
    ] {
        let file = work.path().join("head.txt");
        std::fs::write(&file, head).unwrap();
        let url = raw_server(file, true);
        let mut c = k2_archive::hub::HubClient::new(
            &url,
            None,
            k2_archive::hub::cache::HubCache::new(work.path().join("cache")),
        )
        .unwrap();
        c.retries = 0;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.file_meta("org/m", "main", "model.safetensors")
        }));
        assert!(r.is_ok(), "{head:?}: k2 panicked");
        if let Ok(Err(e)) = r {
            assert!(e.to_string().contains(&url), "{head:?}: {e}");
        }
    }
}
