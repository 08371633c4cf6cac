//! Knowledge injection end to end at the CLI, on real run directories: `[[inject_facts]]` puts
//! fictional facts into the chunk files with provenance, `chunk_order.toml` and the manifest
//! record them, a spike rollback that defers the chunk moves the injection along, `k2 data batch`
//! shows the decoded facts, `k2 verify` replays across the injection bit for bit, the trainer's
//! dense probe scores cover the injection's window, and `k2 analyze acquisition` (and `k2 analyze
//! tokens`) measure every checkpoint once (a rerun finds them done).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use k2_archive::{read_dense, ChunkOrder, Manifest, RunLayout};
use k2_corpus::injection::fictional_facts;

const INJECTION: &str = "[[inject_facts]]\nname = \"dup\"\nseed = 5\nfacts = 2\nchunk = 2\n\
                         mode = \"duplicate\"\nk = 2\ndense_steps = 6\n\n[[stage]]";

/// tiny_spike.toml (chunk 2 spikes, is rolled back and deferred) with an injection in chunk 2.
fn config(dir: &Path, injection: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/tiny_spike.toml")).unwrap();
    let text = text.replacen("[[stage]]", injection, 1);
    let p = dir.join("inject.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn train(cfg: &Path, out: &Path) -> String {
    ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(out))
}

#[test]
fn an_injection_is_recorded_moves_with_its_deferred_chunk_and_replays_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train(&config(tmp.path(), INJECTION), &run);
    let layout = RunLayout::new(&run);

    // chunk_order.toml records the injection and the deferral of its chunk.
    let order = ChunkOrder::load(&layout.chunk_order_path()).unwrap();
    assert_eq!(order.injections.len(), 1);
    let rec = &order.injections[0];
    assert_eq!(
        (rec.name.as_str(), rec.chunk, rec.k, rec.facts),
        ("dup", 2, 2, 2)
    );
    assert_eq!(order.deferrals.len(), 1, "{order:?}");
    assert_eq!(order.deferrals[0].chunk, 2);
    let pos = order.order.iter().position(|&c| c == 2).unwrap() as u64;
    assert_eq!(pos, 3, "chunk 2 deferred to the end of stage 1");

    // The surviving checkpoint of chunk 2 records the steps at its new position (12 per interval).
    let m = Manifest::load(&layout.manifest_path()).unwrap();
    let entry = m
        .checkpoints
        .iter()
        .find(|c| c.chunks == [2] && c.status == k2_archive::CheckpointStatus::Ok)
        .unwrap();
    assert_eq!(entry.injected.len(), 1);
    assert_eq!(
        (entry.injected[0].first_step, entry.injected[0].last_step),
        (pos * 12 + 1, pos * 12 + 2)
    );
    assert!(m
        .checkpoints
        .iter()
        .filter(|c| c.chunks != [2])
        .all(|c| c.injected.is_empty()));

    // The chunk file carries the facts: samples 0,1 (step 0) and 4,5 (step 1) of 4 per step.
    let facts = fictional_facts(5, 2);
    let text = std::fs::read_to_string(layout.data_dir().join("chunk_0002.jsonl")).unwrap();
    let samples: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (slot, fact, rep) in [(0, 0, 0), (1, 1, 0), (4, 0, 1), (5, 1, 1)] {
        let s = &samples[slot];
        assert_eq!(s["source"], "inject:dup", "sample {slot}");
        assert_eq!(
            (s["doc"].as_u64(), s["offset"].as_u64()),
            (Some(fact), Some(rep))
        );
        assert!(s["spliced"]["at"].as_u64().unwrap() > 0);
        assert_eq!(s["token_ids"].as_array().unwrap().len(), 48);
    }
    assert!(samples
        .iter()
        .enumerate()
        .filter(|(i, _)| ![0, 1, 4, 5].contains(i))
        .all(|(_, s)| !s["source"].as_str().unwrap().starts_with("inject:")));

    // `k2 data batch` shows the decoded fact at the step where it is trained.
    let out = ok(k2()
        .args(["data", "batch", "--run"])
        .arg(&run)
        .args(["--step", &(pos * 12 + 2).to_string()]));
    assert!(out.contains("inject:dup"), "{out}");
    assert!(
        out.contains(&format!(
            "{} was born in {}.",
            facts[0].person,
            facts[0].country_name()
        )),
        "{out}"
    );
    let json = ok(k2()
        .args(["data", "batch", "--json", "--run"])
        .arg(&run)
        .args(["--step", &(pos * 12 + 1).to_string()]));
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert!(first["text"]
        .as_str()
        .unwrap()
        .starts_with(&facts[0].person));

    // Dense probe scores: the window of the injection's final position, 3 probes x 2 facts plus
    // the control's, after every step from the one before the injection on.
    let dense = read_dense(&layout.dense_probes_path()).unwrap();
    let first_step = pos * 12 + 1;
    for step in first_step - 1..=first_step - 1 + 6 {
        let line = dense
            .iter()
            .find(|l| l.step == step)
            .unwrap_or_else(|| panic!("no dense line for step {step}"));
        assert_eq!(line.scores.len(), 12, "step {step}");
        assert!(line
            .scores
            .iter()
            .all(|s| s.logprob < 0.0 && s.logprob.is_finite()));
    }

    // The whole surviving lineage, injection included, replays bit for bit.
    let out = ok(k2().args(["verify", "--run"]).arg(&run));
    assert!(out.contains("bit"), "{out}");

    // Acquisition: every ok and spike checkpoint measured, then found done.
    let out = ok(k2()
        .args(["analyze", "acquisition", "--quiet", "--run"])
        .arg(&run));
    assert!(
        out.contains("| dup ") && out.contains("memorization"),
        "{out}"
    );
    let files = std::fs::read_dir(layout.acquisition_dir())
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().ends_with(".json")
        })
        .count();
    assert_eq!(files, m.checkpoints.len());
    let again = ok(k2()
        .args(["analyze", "acquisition", "--quiet", "--run"])
        .arg(&run));
    assert!(
        again.contains(&format!("0 measured, {files} already done")),
        "{again}"
    );
    let json = ok(k2()
        .args(["analyze", "acquisition", "--quiet", "--json", "--run"])
        .arg(&run));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["trajectories"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_injections_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for (injection, field) in [
        (
            INJECTION.replace("facts = 2", "facts = 5"),
            "inject_facts[0].facts",
        ),
        (
            INJECTION.replace("mode = \"duplicate\"", "mode = \"once\""),
            "inject_facts[0].k",
        ),
        (
            INJECTION.replace("\nk = 2", "\nk = 13"),
            "inject_facts[0].k",
        ),
        (
            INJECTION.replace("chunk = 2", "chunk = 9"),
            "inject_facts[0].chunk",
        ),
        (
            INJECTION.replace("name = \"dup\"", "name = \"a/b\""),
            "inject_facts[0].name",
        ),
        (
            INJECTION.replace(
                "[[stage]]",
                &INJECTION.replace("\nk = 2", "\nk = 1\noffset = 1"),
            ),
            "inject_facts[1]",
        ),
        (INJECTION.replace("duplicate", "twice"), "mode"),
    ] {
        let cfg = config(tmp.path(), &injection);
        let out = tmp.path().join("never");
        let err = fails(
            k2().args(["train", "--quiet", "--config"])
                .arg(&cfg)
                .arg("--out")
                .arg(&out),
        );
        assert!(err.contains(field), "{field}: {err}");
        assert!(
            !out.exists(),
            "{field}: a refused config wrote {}",
            out.display()
        );
    }
}

#[test]
fn a_run_without_injections_is_told_where_to_find_one() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    let err = fails(
        k2().args(["analyze", "acquisition", "--quiet", "--run"])
            .arg(&run),
    );
    assert!(
        err.contains("no knowledge injections") && err.contains("acquisition.toml"),
        "{err}"
    );

    // Token learning curves work on any run: every ok checkpoint once, then found done.
    let out = ok(k2()
        .args(["analyze", "tokens", "--quiet", "--run"])
        .arg(&run));
    assert!(
        out.contains("held-out tokens") && out.contains("training frequency"),
        "{out}"
    );
    let n = Manifest::load(&RunLayout::new(&run).manifest_path())
        .unwrap()
        .checkpoints
        .len();
    assert!(
        out.contains(&format!("{n} measured, 0 already done")),
        "{out}"
    );
    let again = ok(k2()
        .args(["analyze", "tokens", "--quiet", "--run"])
        .arg(&run));
    assert!(
        again.contains(&format!("0 measured, {n} already done")),
        "{again}"
    );
    let json = ok(k2()
        .args(["analyze", "tokens", "--quiet", "--json", "--run"])
        .arg(&run));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let curves = v["curves"].as_array().unwrap();
    assert!(curves.len() > 100);
    assert!(curves
        .iter()
        .all(|c| c["surprisal"].as_array().unwrap().len() == n));
    let buckets: u64 = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(buckets as usize, curves.len());
}
