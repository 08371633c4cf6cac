//! Crash safety across a whole run that includes a loss-spike rollback: SIGKILL at twelve seeded
//! random points (and aborts at the three steps of the rollback commit) followed by `--resume`
//! always ends bit-identical to the uninterrupted run, and the manifest and chunk order parse
//! after every kill.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use k2_archive::{ChunkOrder, Manifest};

fn spike_config() -> PathBuf {
    repo().join("tests/fixtures/tiny_spike.toml")
}

fn lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Metrics without the wall-clock field.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("tokens_per_s");
            v
        })
        .collect()
}

fn train_cmd(out: &Path) -> std::process::Command {
    let mut cmd = k2();
    cmd.args(["train", "--quiet", "--config"])
        .arg(spike_config())
        .arg("--out")
        .arg(out);
    if out.join("checkpoints.toml").exists() {
        cmd.arg("--resume");
    }
    cmd
}

/// Everything that must be bit-identical: each checkpoint's name, status, step, chunks and file
/// hashes, the spike events, the chunk order, and the metrics (less timings).
fn assert_same_run(a: &Path, b: &Path) {
    let (ma, mb) = (
        Manifest::load(&a.join("checkpoints.toml")).unwrap(),
        Manifest::load(&b.join("checkpoints.toml")).unwrap(),
    );
    let key = |m: &Manifest| -> Vec<_> {
        m.checkpoints
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.status,
                    c.step,
                    c.chunks.clone(),
                    c.files.clone(),
                )
            })
            .collect()
    };
    assert_eq!(key(&ma), key(&mb));
    assert_eq!(ma.spikes, mb.spikes);
    assert_eq!(
        ChunkOrder::load(&a.join("chunk_order.toml")).unwrap(),
        ChunkOrder::load(&b.join("chunk_order.toml")).unwrap()
    );
    assert_eq!(metrics(a), metrics(b));
    assert!(k2_archive::verify_run(b)
        .unwrap()
        .iter()
        .all(|(_, p)| p.is_empty()));
    let mut names: Vec<String> = std::fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "leftovers: {names:?}"
    );
}

fn reference(tmp: &Path) -> PathBuf {
    let a = tmp.join("reference");
    ok(&mut train_cmd(&a));
    let m = Manifest::load(&a.join("checkpoints.toml")).unwrap();
    assert_eq!(m.rollbacks(), 1, "the fixture's spike must be rolled back");
    a
}

#[test]
fn twelve_random_sigkills_then_resume_are_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let a = reference(tmp.path());
    let total = lines(&a);
    // Seeded kill points: metrics line counts across the whole run (both attempts), plus a
    // random 0-4 ms delay so kills also land between a step and a checkpoint commit.
    let mut state = 0x6b32_u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut targets: Vec<(usize, u64)> = (0..12)
        .map(|_| (1 + next() % (total - 1), (next() % 5) as u64))
        .collect();
    targets.sort();
    eprintln!("kill points (metrics lines, extra ms): {targets:?}");
    let b = tmp.path().join("killed");
    let mut kills = 0;
    for (target, extra_ms) in targets {
        let mut child = train_cmd(&b).spawn().unwrap();
        let t0 = Instant::now();
        let killed = loop {
            if child.try_wait().unwrap().is_some() {
                break false; // finished before this point: the later points still apply
            }
            if lines(&b) >= target {
                std::thread::sleep(Duration::from_millis(extra_ms));
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break true;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(1));
        };
        kills += killed as usize;
        if b.join("checkpoints.toml").exists() {
            // Never half-written: both files parse and every listed checkpoint is intact.
            Manifest::load(&b.join("checkpoints.toml")).unwrap();
            ChunkOrder::load(&b.join("chunk_order.toml")).unwrap();
        }
    }
    eprintln!("training kills: {kills} of 12 landed while training ran");
    assert!(kills >= 10, "only {kills} kills landed");
    ok(&mut train_cmd(&b));
    assert_same_run(&a, &b);
}

#[test]
fn crash_inside_the_rollback_commit_is_finished_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let a = reference(tmp.path());
    for point in [
        "rollback-spike-ckpt-written",
        "rollback-manifest-committed",
        "rollback-order-saved",
    ] {
        let b = tmp.path().join(point);
        let out = run_cmd(train_cmd(&b).env("K2_FAILPOINT", point));
        assert!(!out.status.success(), "{point}: the failpoint did not fire");
        Manifest::load(&b.join("checkpoints.toml")).unwrap();
        ChunkOrder::load(&b.join("chunk_order.toml")).unwrap();
        ok(&mut train_cmd(&b));
        assert_same_run(&a, &b);
    }
}
