//! `k2 analyze memorization` on a real tiny run: one file per checkpoint with rates in 0..=1 and n
//! per chunk, training labels that follow the chunk order, a rerun that skips finished
//! checkpoints, new settings that recompute, clear errors (sequences too short for the window, a
//! missing run directory, a tampered checkpoint) with a non-zero exit, and the report's heat maps.

mod common;

use std::path::Path;

use common::*;

fn read(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn analyze(run: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = k2();
    c.args(["analyze", "memorization", "--quiet", "--run"])
        .arg(run)
        .args(extra);
    c
}

#[test]
fn memorization_files_rerun_skip_errors_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("run");
    train_tiny(&d);
    let short = [
        "--prompt-len",
        "16",
        "--continuation-len",
        "16",
        "--samples",
        "8",
    ];

    // The tiny run's stage-1 sequences have 48 tokens: 32 + 32 does not fit.
    let e = fails(&mut analyze(&d, &[]));
    assert!(
        e.contains("data/index.json") && e.contains("48-token sequences"),
        "{e}"
    );

    let out = ok(&mut analyze(&d, &short));
    assert!(
        out.contains("6 measured, 0 already done, 0 duplicate checkpoints, 0 checkpoints failed"),
        "{out}"
    );
    assert!(
        out.contains("just trained") && out.contains("ckpt_0006"),
        "{out}"
    );
    let mem = d.join("memorization");
    for i in 1..=6u32 {
        let f = read(&mem.join(format!("ckpt_{i:04}.json")));
        assert_eq!(f["checkpoint"], format!("ckpt_{i:04}"));
        assert_eq!(f["status"], "ok");
        assert_eq!(f["settings"]["samples_per_chunk"], 8);
        assert_eq!(f["settings"]["continuation_len"], 16);
        assert_eq!(f["weights_sha256"].as_str().unwrap().len(), 64);
        let chunks = f["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), 6);
        for (pos, c) in chunks.iter().enumerate() {
            assert_eq!(c["position"], pos as u64);
            assert_eq!(c["n"], 8);
            assert_eq!(c["sample_indices"].as_array().unwrap().len(), 8);
            let matched = c["matched_tokens"].as_array().unwrap();
            assert!(matched.iter().all(|m| m.as_u64().unwrap() <= 16));
            for k in ["exact_match", "token_match"] {
                let v = c[k].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&v), "{k} {v}");
            }
            let mean = matched.iter().map(|m| m.as_f64().unwrap()).sum::<f64>() / (8.0 * 16.0);
            assert!((c["token_match"].as_f64().unwrap() - mean).abs() < 1e-12);
            // identity chunk order: checkpoint i was trained on chunks 0..i
            let trained = (pos as u32) < i;
            assert_eq!(c["trained"], trained, "ckpt {i} chunk {pos}");
            if trained {
                assert_eq!(c["trained_at"], format!("ckpt_{:04}", pos + 1));
            }
        }
    }
    let before = std::fs::read(mem.join("ckpt_0004.json")).unwrap();

    // Rerun: nothing recomputed, files unchanged.
    let out = ok(&mut analyze(&d, &short));
    assert!(out.contains("0 measured, 6 already done"), "{out}");
    assert_eq!(std::fs::read(mem.join("ckpt_0004.json")).unwrap(), before);

    // The report draws both heat maps.
    let rep = tmp.path().join("reports");
    ok(k2()
        .args(["report", "--run"])
        .arg(&d)
        .arg("--out")
        .arg(&rep));
    let readme = std::fs::read_to_string(rep.join("run/README.md")).unwrap();
    assert!(readme.contains("## Memorization"), "{readme}");
    for f in ["memorization_exact_match", "memorization_token_match"] {
        for ext in ["png", "svg"] {
            let p = rep.join(format!("run/figures/{f}.{ext}"));
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }

    // A tampered checkpoint is reported by name and file, the others are kept, exit non-zero.
    let w = d.join("ckpt_0002/model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x55;
    std::fs::write(&w, bytes).unwrap();
    std::fs::remove_file(mem.join("ckpt_0002.json")).unwrap();
    let out = run_cmd(&mut analyze(&d, &short));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ckpt_0002") && err.contains("model.safetensors"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("0 measured, 5 already done, 0 duplicate checkpoints, 1 checkpoints failed"));

    // Other settings recompute (the tampered checkpoint still fails).
    let out = run_cmd(&mut analyze(
        &d,
        &[
            "--prompt-len",
            "8",
            "--continuation-len",
            "8",
            "--samples",
            "2",
        ],
    ));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("5 measured, 0 already done, 0 duplicate checkpoints, 1 checkpoints failed"));
    assert_eq!(read(&mem.join("ckpt_0004.json"))["chunks"][0]["n"], 2);

    // A missing run directory: named, non-zero exit.
    let missing = tmp.path().join("no_such_run");
    let e = fails(&mut analyze(&missing, &short));
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("does not exist"),
        "{e}"
    );
}

#[test]
fn memorization_help_has_examples() {
    let help = ok(k2().args(["analyze", "memorization", "--help"]));
    assert!(
        help.contains("Examples:") && help.contains("--prompt-len"),
        "{help}"
    );
}

#[test]
fn memorization_spike_checkpoints_are_measured_and_labelled() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("run");
    ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(repo().join("tests/fixtures/tiny_spike.toml"))
        .arg("--out")
        .arg(&d));
    let m = k2_archive::Manifest::load(&d.join("checkpoints.toml")).unwrap();
    use k2_archive::CheckpointStatus::{Ok as Good, Spike};
    assert!(m.checkpoints.iter().any(|c| c.status == Spike));
    ok(&mut analyze(
        &d,
        &[
            "--prompt-len",
            "8",
            "--continuation-len",
            "8",
            "--samples",
            "4",
        ],
    ));
    for c in m
        .checkpoints
        .iter()
        .filter(|c| matches!(c.status, Good | Spike))
    {
        let f = read(&d.join(format!("memorization/{}.json", c.name)));
        assert_eq!(f["status"], c.status.to_string());
        let trained: Vec<u64> = f["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["trained"] == true)
            .map(|x| x["chunk"].as_u64().unwrap())
            .collect();
        // every chunk of the checkpoint's own interval is trained
        for k in &c.chunks {
            assert!(trained.contains(&(*k as u64)), "{}: chunk {k}", c.name);
        }
        if c.status == Good {
            // exactly the chunks of the ok checkpoints up to its step: no spike branch
            let mut expect: Vec<u64> = m
                .checkpoints
                .iter()
                .filter(|o| o.status == Good && o.step <= c.step)
                .flat_map(|o| o.chunks.iter().map(|&k| k as u64))
                .collect();
            expect.sort();
            expect.dedup();
            let mut got = trained.clone();
            got.sort();
            assert_eq!(got, expect, "{}", c.name);
        }
    }
}
