//! Mixed-precision training as K2 trained (bf16 compute; f32 master weights, moments, norms,
//! softmax and loss) through the CLI: it follows the f32 run's loss, is deterministic, replays bit
//! for bit with `k2 verify`, and keeps the archive contract (f32 HF checkpoints, hashed).

mod common;

use std::path::Path;

use common::*;

fn losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["loss"].as_f64())
        .collect()
}

fn hashes(dir: &Path) -> Vec<(String, Vec<(String, String)>)> {
    k2_archive::Manifest::load(&dir.join("checkpoints.toml"))
        .unwrap()
        .checkpoints
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.files
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn bf16_training_follows_f32_is_deterministic_and_replays_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("f32"),
        tmp.path().join("bf16"),
        tmp.path().join("bf16-again"),
    );
    train_tiny(&a);
    for out in [&b, &c] {
        ok(k2()
            .args([
                "train", "--quiet", "--device", "cpu", "--dtype", "bf16", "--config",
            ])
            .arg(tiny_config())
            .arg("--out")
            .arg(out));
    }
    // The run's config records the compute dtype; an f32 run's config does not mention it.
    let cfg_b = std::fs::read_to_string(b.join("config.toml")).unwrap();
    assert!(cfg_b.contains("dtype = \"bf16\""), "{cfg_b}");
    assert!(!std::fs::read_to_string(a.join("config.toml"))
        .unwrap()
        .contains("dtype"));

    let (la, lb) = (losses(&a), losses(&b));
    assert_eq!(la.len(), lb.len());
    assert_ne!(la, lb, "bf16 compute must change the numbers");
    let (fa, fb) = (la[la.len() - 1], lb[lb.len() - 1]);
    let rel = (fb - fa).abs() / fa;
    eprintln!(
        "tiny run, {} steps: final loss f32 {fa:.5}, bf16 {fb:.5} ({:.3}%)",
        la.len(),
        rel * 100.0
    );
    assert!(rel < 0.02, "final loss f32 {fa} vs bf16 {fb}");
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        assert!(
            (x - y).abs() / x < 0.05,
            "step {}: f32 {x} vs bf16 {y}",
            i + 1
        );
    }

    // Two bf16 runs write the same bytes.
    assert_eq!(hashes(&b), hashes(&c));

    // Checkpoints hold the f32 master weights as a valid HF model.
    let ck = b.join("ckpt_0003");
    let dt = k2_model::config_torch_dtype(&ck.join("config.json")).unwrap();
    assert_eq!(dt, Some(candle_core::DType::F32));
    let w =
        k2_model::load_tensors(&ck, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    assert!(w.values().all(|t| t.dtype() == candle_core::DType::F32));

    // The replay runs in the run's dtype and reproduces every step and file.
    let out = ok(k2()
        .args([
            "verify",
            "--from",
            "ckpt_0002",
            "--to",
            "ckpt_0004",
            "--run",
        ])
        .arg(&b));
    assert!(out.contains("bit for bit"), "{out}");
    let err = fails(
        k2().args([
            "verify",
            "--dtype",
            "f32",
            "--from",
            "ckpt_0002",
            "--to",
            "ckpt_0003",
            "--run",
        ])
        .arg(&b),
    );
    assert!(
        err.contains("--dtype f32") && err.contains("train.dtype bf16"),
        "{err}"
    );

    // Resuming with another dtype is refused before anything is written.
    let before = hashes(&b);
    let err = fails(
        k2().args(["train", "--quiet", "--resume", "--dtype", "f32", "--out"])
            .arg(&b),
    );
    assert!(
        err.contains("--dtype f32") && err.contains("train.dtype bf16"),
        "{err}"
    );
    assert_eq!(hashes(&b), before);
}

#[test]
fn bad_device_and_dtype_values_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = fails(
        k2().args(["train", "--quiet", "--dtype", "int8", "--out"])
            .arg(tmp.path().join("x")),
    );
    assert!(err.contains("int8") && err.contains("bf16"), "{err}");
    let err = fails(
        k2().args(["train", "--quiet", "--device", "tpu", "--out"])
            .arg(tmp.path().join("x")),
    );
    assert!(err.contains("tpu") && err.contains("cuda:N"), "{err}");
    if !k2_model::device::cuda_built() {
        let err = fails(
            k2().args(["train", "--quiet", "--device", "cuda", "--config"])
                .arg(tiny_config())
                .arg("--out")
                .arg(tmp.path().join("y")),
        );
        assert!(err.contains("built without CUDA"), "{err}");
    }
    let cfg = tiny_config_with(
        tmp.path(),
        "bad.toml",
        "threads = 2",
        "threads = 2\ndtype = \"fp8\"",
    );
    let err = fails(
        k2().args(["train", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(tmp.path().join("z")),
    );
    assert!(err.contains("train.dtype") && err.contains("fp8"), "{err}");
    assert!(!tmp.path().join("z").exists());
}

/// A checkpoint whose state says another device kind trained it resumes with a warning that the
/// continuation is not bit-exact (the state records `device` only when it is not the CPU).
#[test]
fn a_checkpoint_from_another_device_kind_is_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    let rel = "trainer_state/state.json";
    let state_path = run.join("ckpt_0002").join(rel);
    let text = std::fs::read_to_string(&state_path).unwrap();
    assert!(
        !text.contains("\"device\""),
        "CPU states do not name the device"
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["device"] = serde_json::json!("cuda");
    let mut text = serde_json::to_string_pretty(&v).unwrap();
    text.push('\n');
    std::fs::write(&state_path, &text).unwrap();
    let mpath = run.join("checkpoints.toml");
    let mut m = k2_archive::Manifest::load(&mpath).unwrap();
    let e = m
        .checkpoints
        .iter_mut()
        .find(|c| c.name == "ckpt_0002")
        .unwrap();
    e.files
        .insert(rel.into(), k2_archive::sha256_bytes(text.as_bytes()));
    m.save_atomic(&mpath).unwrap();
    let out = run_cmd(
        k2().args([
            "verify",
            "--from",
            "ckpt_0002",
            "--to",
            "ckpt_0003",
            "--run",
        ])
        .arg(&run),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ckpt_0002 was trained on cuda") && err.contains("not bit-exact"),
        "{err}"
    );
}
