//! The loss-spike path end to end at the CLI, on real run directories: a reproducible malignant
//! spike (tests/fixtures/tiny_spike.toml) is detected, classified, rolled back, its chunk
//! deferred, the diverged checkpoints kept as `spike_ckpt_N`, and training recovers; `k2 verify`
//! replays the surviving lineage bit for bit and names the tensor of a tampered checkpoint.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use k2_archive::{CheckpointStatus, ChunkOrder, Manifest, SpikeKind};

fn spike_config() -> PathBuf {
    repo().join("tests/fixtures/tiny_spike.toml")
}

fn train_spike(out: &Path) -> String {
    ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(spike_config())
        .arg("--out")
        .arg(out))
}

/// Trains `dir/run` from tiny_spike.toml with each `(from, to)` replaced (each must occur);
/// returns the run directory and k2's stdout.
fn train_variant(dir: &Path, edits: &[(&str, &str)]) -> (PathBuf, String) {
    let mut text = std::fs::read_to_string(spike_config()).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "tiny_spike.toml has no `{from}`");
        text = text.replace(from, to);
    }
    let cfg = dir.join("variant.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let out = ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run));
    (run, out)
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn malignant_spike_is_rolled_back_deferred_and_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = train_spike(&run);
    assert!(
        out.contains("malignant loss spike") && out.contains("rolled back to ckpt_0002"),
        "{out}"
    );

    let m = Manifest::load(&run.join("checkpoints.toml")).unwrap();
    let malignant: Vec<_> = m
        .spikes
        .iter()
        .filter(|e| e.kind == SpikeKind::Malignant)
        .collect();
    assert_eq!(malignant.len(), 1, "{:#?}", m.spikes);
    let ev = malignant[0];
    // The surge hits steps 34-36 (interval 3 = steps 25-36); the 6-step window ends in interval 4.
    assert!((34..=36).contains(&ev.start_step), "{ev:?}");
    assert_eq!(ev.end_step, ev.start_step + 6);
    assert_eq!((ev.chunk, ev.position, ev.attempt), (2, 2, 0));
    assert!(ev.peak_loss > 2.0 * ev.baseline_loss, "{ev:?}");
    assert_eq!(ev.action, "rollback");
    assert_eq!(ev.rollback_to.as_deref(), Some("ckpt_0002"));
    assert_eq!(
        (ev.deferred_chunk, ev.deferred_from_position),
        (Some(2), Some(2))
    );
    assert_eq!(ev.spike_checkpoints, ["spike_ckpt_0003", "spike_ckpt_0004"]);

    // The diverged checkpoints stay beside their normal twins, with status `spike`.
    for (name, twin) in [
        ("spike_ckpt_0003", "ckpt_0003"),
        ("spike_ckpt_0004", "ckpt_0004"),
    ] {
        let e = m.get(name).unwrap();
        assert_eq!(e.status, CheckpointStatus::Spike, "{name}");
        assert_eq!(m.get(twin).unwrap().status, CheckpointStatus::Ok, "{twin}");
        assert!(run.join(name).join("model.safetensors").is_file());
        assert_ne!(
            e.files["model.safetensors"],
            m.get(twin).unwrap().files["model.safetensors"]
        );
    }
    assert_eq!(m.get("spike_ckpt_0003").unwrap().step, 36);
    // Each spike checkpoint lists the chunk of its own interval.
    assert_eq!(m.get("spike_ckpt_0003").unwrap().chunks, [2]);
    assert_eq!(m.get("spike_ckpt_0004").unwrap().chunks, [3]);
    assert_eq!(m.get("spike_ckpt_0004").unwrap().step, ev.end_step);
    assert_eq!(m.ok_checkpoints().len(), 6);
    // `k2 ckpt verify` checks spike checkpoints too.
    ok(k2().args(["ckpt", "verify", "--run"]).arg(&run));

    // Chunk 2 moved to the end of stage 1 (positions 0-3); the ok lineage trains chunk 3 at 2.
    let order = ChunkOrder::load(&run.join("chunk_order.toml")).unwrap();
    assert_eq!(order.order, [0, 1, 3, 2, 4, 5]);
    assert_eq!(order.deferrals.len(), 1);
    assert_eq!(order.deferrals[0].to_position, Some(3));
    assert_eq!(m.get("ckpt_0003").unwrap().chunks, [3]);
    assert_eq!(m.get("ckpt_0004").unwrap().chunks, [2]);

    // metrics.jsonl keeps the diverged attempt and the retrained one, plus the event lines.
    let lines = metrics(&run);
    let events: Vec<_> = lines.iter().filter(|v| v["event"] == "spike").collect();
    assert!(events
        .iter()
        .any(|v| v["kind"] == "malignant" && v["action"] == "rollback"));
    let attempt = |a: u64| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|v| v.get("event").is_none() && v["attempt"].as_u64() == Some(a))
            .collect()
    };
    let (first, second) = (attempt(0), attempt(1));
    assert_eq!(first.last().unwrap()["step"].as_u64(), Some(ev.end_step));
    assert_eq!(second.first().unwrap()["step"].as_u64(), Some(25));
    assert_eq!(second.last().unwrap()["step"].as_u64(), Some(72));
    // Recovery: the retrained steps of the spike's range are back near the baseline, far
    // below the diverged ones.
    let loss_at = |rows: &[&serde_json::Value], s: u64| {
        rows.iter().find(|v| v["step"].as_u64() == Some(s)).unwrap()["loss"]
            .as_f64()
            .unwrap()
    };
    let s = ev.end_step;
    assert!(loss_at(&first, s) > 1.3 * ev.baseline_loss);
    assert!(loss_at(&second, s) < 1.15 * ev.baseline_loss, "no recovery");

    // The surviving lineage replays bit for bit across the rollback.
    let v = ok(k2().args(["verify", "--run"]).arg(&run));
    assert!(
        v.contains("verified: 72 steps from init to ckpt_0006"),
        "{v}"
    );
    // The report shows the spike: a table row and the rolled-back attempt in the figure.
    let reports = tmp.path().join("reports");
    ok(k2()
        .args(["report", "--run"])
        .arg(&run)
        .arg("--out")
        .arg(&reports)
        .args(["--name", "spike"]));
    let md = std::fs::read_to_string(reports.join("spike/README.md")).unwrap();
    assert!(md.contains("### Loss spikes"), "{md}");
    assert!(
        md.contains("rolled back to `ckpt_0002`, chunk 2 deferred; kept `spike_ckpt_0003`, `spike_ckpt_0004`"),
        "{md}"
    );
    let svg = std::fs::read_to_string(reports.join("spike/figures/training.svg")).unwrap();
    assert!(
        svg.contains("rolled-back attempt") && svg.contains("spike: malignant, steps"),
        "svg"
    );
}

#[test]
fn policy_log_records_the_spike_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, out) = train_variant(tmp.path(), &[("policy = \"rollback\"", "policy = \"log\"")]);
    assert!(!out.contains("rolled back"), "{out}");
    let m = Manifest::load(&run.join("checkpoints.toml")).unwrap();
    let ev = m
        .spikes
        .iter()
        .find(|e| e.kind == SpikeKind::Malignant)
        .expect("a malignant spike is recorded");
    assert_eq!(ev.action, "none");
    assert!(m
        .checkpoints
        .iter()
        .all(|c| c.status == CheckpointStatus::Ok));
    assert_eq!(
        ChunkOrder::load(&run.join("chunk_order.toml"))
            .unwrap()
            .deferrals
            .len(),
        0
    );
}

#[test]
fn a_spike_before_the_first_good_checkpoint_rolls_back_to_the_initialisation() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, out) = train_variant(
        tmp.path(),
        &[("chunk = 2\n", "chunk = 0\n"), ("offset = 9", "offset = 7")],
    );
    assert!(out.contains("rolled back to init"), "{out}");
    let m = Manifest::load(&run.join("checkpoints.toml")).unwrap();
    let ev = m.spikes.iter().find(|e| e.is_rollback()).unwrap();
    assert_eq!(ev.rollback_to.as_deref(), Some("init"));
    assert_eq!(
        (ev.deferred_chunk, ev.deferred_from_position),
        (Some(0), Some(0))
    );
    assert_eq!(
        m.get("spike_ckpt_0001").unwrap().status,
        CheckpointStatus::Spike
    );
    assert_eq!(m.get("ckpt_0001").unwrap().chunks, [1]);
    let v = ok(k2().args(["verify", "--run"]).arg(&run));
    assert!(
        v.contains("verified: 72 steps from init to ckpt_0006"),
        "{v}"
    );
}

#[test]
fn lr_factor_lowers_the_peak_after_a_rollback_and_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, _) = train_variant(
        tmp.path(),
        &[(
            "policy = \"rollback\"",
            "policy = \"rollback\"\nlr_factor = 0.5",
        )],
    );
    let m = Manifest::load(&run.join("checkpoints.toml")).unwrap();
    let ev = m.spikes.iter().find(|e| e.is_rollback()).unwrap();
    assert_eq!(ev.peak_lr_after, Some(1.5e-3));
    let lines = metrics(&run);
    let lr = |attempt: u64, step: u64| {
        lines
            .iter()
            .find(|v| v["attempt"].as_u64() == Some(attempt) && v["step"].as_u64() == Some(step))
            .unwrap()["lr"]
            .as_f64()
            .unwrap()
    };
    // Step 25 is the first of the restarted interval; before the spike it ran at the full peak.
    assert!((lr(1, 25) / lr(0, 25) - 0.5).abs() < 1e-12);
    // Steps before the restart point keep the original schedule in the replay too.
    let v = ok(k2().args(["verify", "--run"]).arg(&run));
    assert!(v.contains("verified: 72 steps"), "{v}");
}

/// Adds `delta` to one element of `tensor` in a safetensors file (keeping every other byte).
fn tamper(file: &Path, tensor: &str, delta: f32) {
    let dev = candle_core::Device::Cpu;
    let mut t = candle_core::safetensors::load(file, &dev).unwrap();
    let x = &t[tensor];
    let mut v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
    v[7] += delta;
    let shape = x.shape().clone();
    t.insert(
        tensor.to_string(),
        candle_core::Tensor::from_vec(v, shape, &dev).unwrap(),
    );
    candle_core::safetensors::save(&t, file).unwrap();
}

/// Rewrites the manifest's sha256 of `ckpt/file` to match the file on disk.
fn rehash(run: &Path, ckpt: &str, file: &str) {
    let path = run.join("checkpoints.toml");
    let mut m = Manifest::load(&path).unwrap();
    let sha = k2_archive::sha256_file(&run.join(ckpt).join(file)).unwrap();
    let e = m.checkpoints.iter_mut().find(|c| c.name == ckpt).unwrap();
    e.files.insert(file.to_string(), sha);
    m.save_atomic(&path).unwrap();
}

#[test]
fn verify_names_the_tensor_and_step_of_a_tampered_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_spike(&run);
    let v = ok(k2().args(["verify", "--run"]).arg(&run).args([
        "--from",
        "ckpt_0002",
        "--to",
        "ckpt_0004",
    ]));
    assert!(
        v.contains("verified: 24 steps from ckpt_0002 to ckpt_0004"),
        "{v}"
    );

    // A checkpoint whose weights were altered (and its hash updated to hide it): the check fails
    // (exit 1).
    let t1 = tmp.path().join("t1");
    copy_dir(&run, &t1);
    let tensor = "model.layers.1.mlp.down_proj.weight";
    tamper(&t1.join("ckpt_0004/model.safetensors"), tensor, 1e-3);
    rehash(&t1, "ckpt_0004", "model.safetensors");
    let err = fails_with(
        k2().args(["verify", "--run"])
            .arg(&t1)
            .args(["--from", "ckpt_0002", "--to", "ckpt_0005"]),
        1,
    );
    assert!(err.contains("ckpt_0004") && err.contains(tensor), "{err}");
    assert!(err.contains("1 of 4608 elements differ"), "{err}");

    // A tampered starting point: training diverges from the log at the first step after it.
    let t2 = tmp.path().join("t2");
    copy_dir(&run, &t2);
    tamper(
        &t2.join("ckpt_0004/model.safetensors"),
        "model.layers.0.self_attn.q_proj.weight",
        0.5,
    );
    rehash(&t2, "ckpt_0004", "model.safetensors");
    let err = fails_with(
        k2().args(["verify", "--run"])
            .arg(&t2)
            .args(["--from", "ckpt_0004", "--to", "ckpt_0005"]),
        1,
    );
    assert!(err.contains("first differing step 49 (loss"), "{err}");
    assert!(err.contains("ckpt_0005"), "{err}");

    // The same without updating the manifest: the start itself is refused.
    let t3 = tmp.path().join("t3");
    copy_dir(&run, &t3);
    tamper(&t3.join("ckpt_0004/model.safetensors"), tensor, 1e-3);
    let err = fails_with(
        k2().args(["verify", "--run"])
            .arg(&t3)
            .args(["--from", "ckpt_0004", "--to", "ckpt_0005"]),
        1,
    );
    assert!(
        err.contains("starting checkpoint does not match the manifest")
            && err.contains("model.safetensors"),
        "{err}"
    );

    // The replay reproduces the manifest, but the archived checkpoint it vouches for was altered
    // on disk (the manifest left as it was): a mismatch naming the tampered tensor.
    let t4 = tmp.path().join("t4");
    copy_dir(&run, &t4);
    tamper(&t4.join("ckpt_0005/model.safetensors"), tensor, 1e-3);
    let err = fails_with(
        k2().args(["verify", "--run"])
            .arg(&t4)
            .args(["--from", "ckpt_0004", "--to", "ckpt_0005"]),
        1,
    );
    assert!(
        err.contains("ckpt_0005")
            && err.contains(tensor)
            && err.contains("1 of 4608 elements differ"),
        "{err}"
    );

    // Bad names are clear errors.
    let err = fails(k2().args(["verify", "--run"]).arg(&run).args([
        "--from",
        "ckpt_0002",
        "--to",
        "ckpt_0099",
    ]));
    assert!(err.contains("no checkpoint `ckpt_0099`"), "{err}");
    let err = fails(k2().args(["verify", "--run"]).arg(&run).args([
        "--from",
        "spike_ckpt_0003",
        "--to",
        "ckpt_0005",
    ]));
    assert!(err.contains("has status spike"), "{err}");
    // Nothing was written into the run.
    let v = ok(k2().args(["ckpt", "verify", "--run"]).arg(&run));
    assert!(v.contains("8 checkpoints verified, 0 with problems"), "{v}");
}
