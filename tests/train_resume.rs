//! A run killed with SIGKILL mid-interval and resumed ends with checkpoints whose sha256 equal an
//! uninterrupted run's; the manifest and metrics stay consistent.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn manifest(dir: &Path) -> k2_archive::Manifest {
    k2_archive::Manifest::load(&dir.join("checkpoints.toml")).unwrap()
}

fn last_step(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .max()
        .unwrap_or(0)
}

#[test]
fn sigkill_mid_interval_then_resume_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    // Longer intervals than tiny.toml so the kill lands inside one.
    let cfg = tiny_config_with(
        tmp.path(),
        "cfg.toml",
        "steps_per_checkpoint = 8",
        "steps_per_checkpoint = 30",
    );
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&a));

    // Kill at two points: inside interval 2 and inside interval 5 (stage 2).
    let mut kills = 0;
    for target in [45u64, 130] {
        let mut cmd = k2();
        cmd.args(["train", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&b);
        if b.join("checkpoints.toml").exists() {
            cmd.arg("--resume");
        }
        let mut child = cmd.spawn().unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "run ended ({status}) before step {target}; last step {}",
                    last_step(&b)
                );
            }
            if last_step(&b) >= target {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        let killed_at = last_step(&b);
        assert!(
            !killed_at.is_multiple_of(30),
            "kill should land mid-interval (step {killed_at})"
        );
        // The manifest is never half-written and lists only complete checkpoints.
        let m = manifest(&b);
        assert!(m.checkpoints.iter().all(|c| c.step <= killed_at));
        assert!(k2_archive::verify_run(&b)
            .unwrap()
            .iter()
            .all(|(_, p)| p.is_empty()));
    }
    assert_eq!(kills, 2);
    let out = ok(k2().args(["train", "--quiet", "--resume", "--out"]).arg(&b));
    assert!(out.contains("resumed from ckpt_"), "{out}");

    let (ma, mb) = (manifest(&a), manifest(&b));
    assert_eq!(ma.checkpoints.len(), 6);
    assert_eq!(ma.checkpoints.len(), mb.checkpoints.len());
    for (x, y) in ma.checkpoints.iter().zip(&mb.checkpoints) {
        assert_eq!(
            (x.name.as_str(), x.step, x.tokens, &x.chunks, x.stage),
            (y.name.as_str(), y.step, y.tokens, &y.chunks, y.stage)
        );
        assert_eq!(
            x.files, y.files,
            "{}: file hashes differ after kill + resume",
            x.name
        );
    }
    // metrics.jsonl: every step exactly once, in order, losses identical to the uninterrupted run.
    let steps = |d: &Path| -> Vec<(u64, f64)> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("event").is_none())
            .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
            .collect()
    };
    let (sa, sb) = (steps(&a), steps(&b));
    assert_eq!(sa.len(), 180);
    assert_eq!(sa, sb);
    // No temporary files left behind.
    for e in std::fs::read_dir(&b).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!n.starts_with('.'), "leftover {n}");
    }
}

#[test]
fn resume_of_a_finished_run_writes_nothing_new() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("run");
    train_tiny(&d);
    let before = std::fs::read(d.join("checkpoints.toml")).unwrap();
    let out = ok(k2().args(["train", "--quiet", "--resume", "--out"]).arg(&d));
    assert!(out.contains("0 checkpoints"), "{out}");
    assert_eq!(before, std::fs::read(d.join("checkpoints.toml")).unwrap());
}
