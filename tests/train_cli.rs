//! `k2 train`, `k2 ckpt`, `k2 data` at the boundary a user touches: files on disk and exit codes.

mod common;

use common::*;

#[test]
fn no_arguments_prints_help_listing_the_commands() {
    let out = run_cmd(&mut k2());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    for cmd in ["train", "data", "ckpt", "model", "bench"] {
        assert!(text.contains(cmd), "{text}");
    }
    let help = ok(k2().args(["train", "--help"]));
    assert!(
        help.contains("Examples:") && help.contains("--resume"),
        "{help}"
    );
}

#[test]
fn checkpoints_are_hf_dirs_listed_with_hashes_and_verify_catches_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("run");
    train_tiny(&d);
    let m = k2_archive::Manifest::load(&d.join("checkpoints.toml")).unwrap();
    assert_eq!(m.checkpoints.len(), 6);
    let stages: Vec<u32> = m.checkpoints.iter().map(|c| c.stage).collect();
    assert_eq!(stages, vec![1, 1, 1, 1, 2, 2]);
    let steps: Vec<u64> = m.checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(steps, vec![8, 16, 24, 32, 40, 48]);
    // tokens: 4 stage-1 intervals of 8 steps x 4 x 48, then 96-token samples.
    assert_eq!(m.checkpoints[3].tokens, 4 * 8 * 4 * 48);
    assert_eq!(m.checkpoints[5].tokens, 4 * 8 * 4 * 48 + 2 * 8 * 4 * 96);
    for c in &m.checkpoints {
        for f in [
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "trainer_state/state.json",
            "trainer_state/optimizer.safetensors",
        ] {
            assert!(c.files.contains_key(f), "{}: {f} not listed", c.name);
        }
    }
    // Stage 2 changes the context and RoPE theta in config.json.
    let c5: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("ckpt_0005/config.json")).unwrap())
            .unwrap();
    assert_eq!(c5["rope_theta"], 500000.0);
    assert_eq!(c5["max_position_embeddings"], 96);
    assert_eq!(c5["num_key_value_heads"], 2);

    let list = ok(k2().args(["ckpt", "list", "--run"]).arg(&d));
    assert!(list.contains("ckpt_0006") && list.contains("ok"), "{list}");
    let v = ok(k2().args(["ckpt", "verify", "--run"]).arg(&d));
    assert!(v.contains("6 checkpoints verified, 0 with problems"), "{v}");

    // Flip one byte in a weight file: verify names the checkpoint and file, exits non-zero.
    let p = d.join("ckpt_0003/model.safetensors");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&p, bytes).unwrap();
    std::fs::remove_file(d.join("ckpt_0005/tokenizer.json")).unwrap();
    let out = run_cmd(k2().args(["ckpt", "verify", "--run"]).arg(&d));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ckpt_0003") && text.contains("model.safetensors"),
        "{text}"
    );
    assert!(
        text.contains("ckpt_0005") && text.contains("tokenizer.json"),
        "{text}"
    );
    assert!(text.contains("2 with problems"), "{text}");
}

#[test]
fn an_existing_run_is_never_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("run");
    train_tiny(&d);
    let manifest = std::fs::read(d.join("checkpoints.toml")).unwrap();
    let weights = std::fs::read(d.join("ckpt_0001/model.safetensors")).unwrap();
    let err = fails(
        k2().args(["train", "--quiet", "--config"])
            .arg(tiny_config())
            .arg("--out")
            .arg(&d),
    );
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(manifest, std::fs::read(d.join("checkpoints.toml")).unwrap());
    assert_eq!(
        weights,
        std::fs::read(d.join("ckpt_0001/model.safetensors")).unwrap()
    );
    // --force replaces it; same config and seed give the same bytes.
    ok(k2()
        .args(["train", "--quiet", "--force", "--config"])
        .arg(tiny_config())
        .arg("--out")
        .arg(&d));
    assert_eq!(
        weights,
        std::fs::read(d.join("ckpt_0001/model.safetensors")).unwrap()
    );
}

#[test]
fn bad_configs_name_the_field_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("threads = 2", "threads = 2\nthreadz = 3", "threadz"),
        (
            "global_batch = 4",
            "global_batch = \"four\"",
            "global_batch",
        ),
        (
            "num_attention_heads = 4",
            "num_attention_heads = 5",
            "num_attention_heads",
        ),
        ("micro_batch = 2", "micro_batch = 3", "micro_batch"),
        ("name = \"code\"", "name = \"kode\"", "kode"),
        (
            "share = 0.25\nrepeat = 2.0",
            "share = 0.35\nrepeat = 2.0",
            "shares sum",
        ),
    ];
    for (i, (from, to, needle)) in cases.iter().enumerate() {
        let cfg = tiny_config_with(tmp.path(), &format!("bad{i}.toml"), from, to);
        let out = tmp.path().join(format!("run{i}"));
        let err = fails(
            k2().args(["train", "--quiet", "--config"])
                .arg(&cfg)
                .arg("--out")
                .arg(&out),
        );
        assert!(
            err.contains(needle) && err.contains(&format!("bad{i}.toml")),
            "case {i}: {err}"
        );
        assert!(!out.exists(), "case {i}: a run directory was created");
    }
    // Syntax errors and wrong types carry the line.
    let cfg = tiny_config_with(
        tmp.path(),
        "bad_line.toml",
        "global_batch = 4",
        "global_batch = \"four\"",
    );
    let err = fails(
        k2().args(["train", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(tmp.path().join("x")),
    );
    let line = std::fs::read_to_string(&cfg)
        .unwrap()
        .lines()
        .position(|l| l.contains("\"four\""))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("line {line}")), "{err}");
    let err = fails(
        k2().args(["train", "--config"])
            .arg(tmp.path().join("missing.toml")),
    );
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn data_batch_prints_the_exact_samples_with_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("run");
    train_tiny(&d);
    // Step 10 = second step of the second interval: chunk order[1], samples 4..8.
    let out = ok(k2()
        .args(["data", "batch", "--step", "10", "--json", "--run"])
        .arg(&d));
    let samples: Vec<k2_trainer::Sample> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 4);
    let chunk1: Vec<k2_trainer::Sample> = std::fs::read_to_string(d.join("data/chunk_0001.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples, chunk1[4..8].to_vec());
    // Provenance: the tokens are the source document's tokens (+ EOS, then the next documents)
    // starting at the recorded offset.
    let tok = k2_model::load_tokenizer(&d.join("tokenizer.json")).unwrap();
    for s in &samples {
        let src = k2_corpus::source(&s.source).unwrap();
        let mut ids = tok
            .encode(src.document(s.doc), false)
            .unwrap()
            .get_ids()
            .to_vec();
        ids.push(2);
        let tail = &ids[s.offset as usize..];
        let n = tail.len().min(s.token_ids.len());
        assert_eq!(
            &s.token_ids[..n],
            &tail[..n],
            "{} doc {} offset {}",
            s.source,
            s.doc,
            s.offset
        );
    }
    let human = ok(k2()
        .args(["data", "batch", "--step", "10", "--run"])
        .arg(&d));
    assert!(
        human.contains("chunk 1") && human.contains("samples 4..8"),
        "{human}"
    );
    let err = fails(
        k2().args(["data", "batch", "--step", "999", "--run"])
            .arg(&d),
    );
    assert!(err.contains("999") && err.contains("1..=48"), "{err}");
    // A config edited after training (a bigger global batch) no longer matches the data: a clear
    // error naming the chunk file and the config, not a panic.
    let cfg = d.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replacen("global_batch = 4", "global_batch = 40", 1),
    )
    .unwrap();
    let err = fails(
        k2().args(["data", "batch", "--step", "10", "--run"])
            .arg(&d),
    );
    assert!(
        err.contains("chunk_0001.jsonl")
            && err.contains("config.toml")
            && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn model_info_prints_the_k2_65b_parameter_count() {
    let out = ok(k2().args(["model", "info", "k2-65b"]));
    assert!(out.contains("65,286,184,960"), "{out}");
    let err = fails(k2().args(["model", "info", "k3"]));
    assert!(err.contains("k2-65b"), "{err}");
}

/// `k2 bench train --json` on the CPU quotes MFU against the f32 peak it measured there (every
/// thread's vector FMAs), and reports candle's matmul rate beside it.
#[test]
fn bench_train_quotes_mfu_against_the_measured_fma_peak() {
    let out = ok(k2().args([
        "bench",
        "train",
        "--preset",
        "default",
        "--batch",
        "2",
        "--seq",
        "32",
        "--warmup",
        "0",
        "--steps",
        "1",
        "--threads",
        "2",
        "--json",
    ]));
    let line = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).expect(line);
    let achieved = v["achieved_tflops"].as_f64().unwrap();
    let peak = v["peak_tflops"].as_f64().unwrap();
    assert!(v["matmul_peak_tflops"].as_f64().unwrap() > 0.0, "{line}");
    match v["fma_peak_tflops"].as_f64() {
        Some(fma) => {
            assert_eq!(v["peak_source"], "measured FMA peak", "{line}");
            assert_eq!(peak, fma);
            // No model step beats the machine's FMA rate.
            assert!(achieved > 0.0 && achieved < fma, "{line}");
        }
        None => {
            println!("no AVX2+FMA here: MFU against candle's matmul rate");
            assert_eq!(v["peak_source"], "measured matmul", "{line}");
        }
    }
    let mfu = v["mfu"].as_f64().unwrap();
    assert!((mfu - achieved / peak).abs() < 1e-12, "{line}");
}
