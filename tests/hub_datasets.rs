//! Benchmarks and a model by Hub id, end to end against a real HTTP server on 127.0.0.1 that
//! answers the Hub's routes for model and dataset repositories (tests/hub_server, serving the
//! repository's fixtures): `k2 eval --model ORG/NAME --tasks <all eleven>` lists, downloads,
//! caches, reads and scores; a rerun with HF_HUB_OFFLINE=1 writes byte-identical results; the
//! HF cache holds the datasets as `huggingface_hub` lays them out; bad names, gated repositories,
//! a dropped download and an empty offline cache give clear errors.

mod common;
mod hub_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hub_server::*;

const TASKS: &str =
    "arc_easy,hellaswag,piqa,winogrande,boolq,openbookqa,lambada_openai,mmlu,gsm8k,truthfulqa_mc2,wikitext";

struct Env {
    server: Server,
    repos: BTreeMap<String, Repo>,
    home: tempfile::TempDir,
}

impl Env {
    fn start(edit: impl FnOnce(&mut BTreeMap<String, Repo>)) -> Env {
        let mut repos = tiny_repos();
        repos.extend(dataset_repos());
        edit(&mut repos);
        Env {
            server: Server::start(repos.clone()),
            repos,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn k2(&self) -> Command {
        self.server.k2(self.home.path())
    }

    fn eval(&self, tasks: &str, out: &Path) -> Command {
        let mut c = self.k2();
        c.args(["eval", "--quiet", "--model", "k2-test/tiny", "--revision"])
            .args(["ckpt_000", "--tasks", tasks, "--limit", "20", "--output"])
            .arg(out);
        c
    }

    fn dataset_dir(&self, repo: &str) -> PathBuf {
        self.home
            .path()
            .join("hub")
            .join(format!("datasets--{}", repo.replace('/', "--")))
    }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.insert(
            e.file_name().to_string_lossy().to_string(),
            std::fs::read(e.path()).unwrap(),
        );
    }
    out
}

#[test]
fn eleven_benchmarks_and_a_model_from_the_hub_then_offline_byte_identical() {
    let env = Env::start(|_| {});
    let out1 = env.home.path().join("online");
    let text = ok(&mut env.eval(TASKS, &out1));
    assert!(
        text.contains("wikitext") && text.contains("mmlu_anatomy"),
        "{text}"
    );

    // Results name the model by its id and revision, and pin every split to its commit.
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out1.join("arc_easy.json")).unwrap()).unwrap();
    assert_eq!(r["config"]["model_revision"], "ckpt_000");
    assert!(r["config"]["model_args"]
        .as_str()
        .unwrap()
        .contains("pretrained=k2-test/tiny"));
    let ds = &r["k2"]["datasets"][0];
    assert_eq!(ds["repo"], "allenai/ai2_arc");
    assert_eq!(ds["config"], "ARC-Easy");
    assert_eq!(ds["split"], "test");
    assert_eq!(ds["revision"], "main");
    assert_eq!(
        ds["commit"],
        commit(&env.repos, "datasets/allenai/ai2_arc", "main")
    );
    // A loading-script repository is read from the parquet export.
    let h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out1.join("hellaswag.json")).unwrap()).unwrap();
    let ds = &h["k2"]["datasets"];
    assert_eq!(ds[0]["revision"], "refs/convert/parquet");
    assert_eq!(ds[0]["split"], "validation");
    assert_eq!(ds[1]["split"], "train", "10-shot reads the train split");
    assert_eq!(h["n-shot"]["hellaswag"], 10);

    // The cache is laid out as huggingface_hub lays it out.
    let arc = env.dataset_dir("allenai/ai2_arc");
    let main = std::fs::read_to_string(arc.join("refs/main")).unwrap();
    let link = arc
        .join("snapshots")
        .join(main.trim())
        .join("ARC-Easy/test-00000-of-00001.parquet");
    let target = std::fs::read_link(&link).unwrap();
    assert!(target.starts_with("../../../blobs"), "{}", target.display());
    assert_eq!(
        std::fs::read(&link).unwrap(),
        std::fs::read(
            repo().join("fixtures/datasets/allenai/ai2_arc/ARC-Easy/test-00000-of-00001.parquet")
        )
        .unwrap()
    );
    let export = env.dataset_dir("Rowan/hellaswag");
    assert!(export.join("refs/refs/convert/parquet").is_file());

    // Offline: the cache alone, byte-identical results and samples, no request.
    env.server.clear_log();
    let out2 = env.home.path().join("offline");
    ok(env.eval(TASKS, &out2).env("HF_HUB_OFFLINE", "1"));
    assert!(env.server.log().is_empty(), "{:?}", env.server.log());
    let (a, b) = (files(&out1), files(&out2));
    assert_eq!(a.len(), b.len());
    assert!(a.len() >= 2 * (10 + 57), "{}", a.len());
    for (name, bytes) in &a {
        assert!(b.get(name) == Some(bytes), "{name} differs offline");
    }

    // No network at all (nothing listens at the endpoint): the cache answers too.
    let out3 = env.home.path().join("unreachable");
    ok(env
        .eval(TASKS, &out3)
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("K2_HUB_RETRIES", "0"));
    assert_eq!(files(&out3), a);
}

#[test]
fn scores_from_the_hub_equal_scores_from_the_same_files_on_disk() {
    let env = Env::start(|_| {});
    let hub = env.home.path().join("hub-res");
    ok(&mut env.eval("piqa,boolq", &hub));
    let local = env.home.path().join("local-res");
    ok(env
        .eval("piqa,boolq", &local)
        .arg("--data")
        .arg(repo().join("fixtures/datasets")));
    for t in ["piqa", "boolq"] {
        assert_eq!(
            sample_lls(&hub.join(format!("{t}.samples.jsonl"))),
            sample_lls(&local.join(format!("{t}.samples.jsonl"))),
            "{t}"
        );
    }
}

#[test]
fn pins_resumes_and_clear_errors() {
    let env = Env::start(|repos| {
        repos.remove("datasets/baber/piqa");
        let gated = repos.get_mut("datasets/aps/super_glue").unwrap();
        gated.token = Some("secret-token".into());
    });
    let out = env.home.path().join("res");

    // Offline with nothing cached: says what is missing.
    let err = fails(env.eval("arc_easy", &out).env("HF_HUB_OFFLINE", "1"));
    assert!(
        err.contains("allenai/ai2_arc") && err.contains("not in the cache"),
        "{err}"
    );
    // A dataset repository the Hub does not have.
    let err = fails(&mut env.eval("piqa", &out));
    assert!(err.contains("baber/piqa") && err.contains("404"), "{err}");
    // A gated one without a token, then with it.
    let err = fails(&mut env.eval("boolq", &out));
    assert!(
        err.contains("aps/super_glue") && err.contains("HF_TOKEN"),
        "{err}"
    );
    ok(env.eval("boolq", &out).env("HF_TOKEN", "secret-token"));
    // A revision pin that does not exist, then the commit of main.
    let err = fails(
        env.eval("arc_easy", &out)
            .args(["--dataset-revision", "arc_easy=v9"]),
    );
    assert!(err.contains("v9"), "{err}");
    let sha = commit(&env.repos, "datasets/allenai/ai2_arc", "main");
    ok(env
        .eval("arc_easy", &out)
        .arg("--dataset-revision")
        .arg(format!("arc_easy={sha}")));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("arc_easy.json")).unwrap()).unwrap();
    assert_eq!(r["k2"]["datasets"][0]["revision"], sha);
    assert_eq!(r["k2"]["datasets"][0]["commit"], sha);

    // A download dropped halfway resumes with a Range request and is verified.
    let bytes = std::fs::read(
        repo().join("fixtures/datasets/allenai/openbookqa/main/test-00000-of-00001.parquet"),
    )
    .unwrap();
    let sha = sha256_of(&bytes);
    env.server.drop_after(&sha, bytes.len() / 2);
    env.server.clear_log();
    ok(&mut env.eval("openbookqa", &out));
    assert!(
        env.server
            .log()
            .iter()
            .any(|l| l.contains(&format!("/cdn/{sha}")) && l.contains("bytes=")),
        "{:?}",
        env.server.log()
    );
    let snap = env
        .dataset_dir("allenai/openbookqa")
        .join("blobs")
        .join(&sha);
    assert_eq!(std::fs::read(snap).unwrap(), bytes);
}

#[test]
fn a_local_directory_wins_over_a_repository_id_and_bad_model_names_are_clear() {
    let env = Env::start(|_| {});
    // `k2-test/tiny` exists as a folder in the working directory: it is the model evaluated.
    let local = env.home.path().join("k2-test/tiny");
    std::fs::create_dir_all(&local).unwrap();
    for (name, bytes) in files(&repo().join("fixtures/models/stories260K-hf")) {
        std::fs::write(local.join(name), bytes).unwrap();
    }
    let out = env.home.path().join("res");
    ok(env
        .k2()
        .args(["eval", "--quiet", "--model", "k2-test/tiny", "--tasks"])
        .args(["k2_facts", "--probe-docs", "4", "--output"])
        .arg(&out));
    assert!(env.server.log().iter().all(|l| !l.contains("/api/models/")));
    let err = fails(
        env.k2()
            .args(["eval", "--model", "k2-test/tiny", "--revision", "main"])
            .args(["--tasks", "k2_facts"]),
    );
    assert!(err.contains("local directory"), "{err}");
    let err = fails(
        env.k2()
            .args(["eval", "--model", "no-such-dir", "--tasks", "k2_facts"]),
    );
    assert!(
        err.contains("no-such-dir") && err.contains("ORG/NAME"),
        "{err}"
    );
    let err = fails(
        env.k2()
            .args(["eval", "--model", "k2-test/absent", "--tasks", "k2_facts"]),
    );
    assert!(
        err.contains("k2-test/absent") && err.contains("404"),
        "{err}"
    );
}
