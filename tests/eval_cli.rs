//! `k2 eval` at the boundary a user touches: results files on disk, resumption after SIGKILL,
//! corrupt checkpoints, batch-size invariance on real benchmark data.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// (checkpoint/task file) -> bytes, for every results and samples file under `dir`.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for ck in std::fs::read_dir(dir).unwrap() {
        let ck = ck.unwrap();
        if !ck.path().is_dir() {
            continue; // the sweep's summary
        }
        for f in std::fs::read_dir(ck.path()).unwrap() {
            let f = f.unwrap();
            let name = f.file_name().to_string_lossy().to_string();
            assert!(
                !name.starts_with('.'),
                "temporary file left: {}",
                f.path().display()
            );
            out.insert(
                format!("{}/{}", ck.file_name().to_string_lossy(), name),
                std::fs::read(f.path()).unwrap(),
            );
        }
    }
    out
}

/// Finished files so far (temporary ones excluded) while a sweep runs.
fn count_done(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|c| std::fs::read_dir(c.ok()?.path()).ok())
        .flat_map(|f| f.filter_map(|e| e.ok()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

fn eval_args(run: &Path) -> Vec<String> {
    vec![
        "eval".into(),
        "--all-checkpoints".into(),
        "--quiet".into(),
        "--probe-docs".into(),
        "60".into(),
        "--run".into(),
        run.display().to_string(),
    ]
}

#[test]
fn sweep_writes_lm_eval_results_and_resumes_after_sigkill_with_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    let out = ok(k2().args(eval_args(&run)));
    assert!(
        out.contains("30 evaluated, 0 already done, 0 duplicate checkpoints, 0 checkpoints failed"),
        "{out}"
    );
    let clean = files(&run.join("eval"));
    assert_eq!(clean.len(), 6 * 5 * 2);
    let r: serde_json::Value = serde_json::from_slice(&clean["ckpt_0003/k2_facts.json"]).unwrap();
    assert!(r["results"]["k2_facts"]["acc,none"].as_f64().is_some());
    assert!(r["results"]["k2_facts"]["acc_norm_stderr,none"]
        .as_f64()
        .is_some());
    assert_eq!(r["n-shot"]["k2_facts"], 0);
    assert_eq!(r["config"]["model_revision"], "ckpt_0003");
    assert_eq!(r["k2"]["step"], 24);
    let m = k2_archive::Manifest::load(&run.join("checkpoints.toml")).unwrap();
    assert_eq!(
        r["config"]["model_sha"].as_str(),
        m.get("ckpt_0003")
            .unwrap()
            .files
            .get("model.safetensors")
            .map(|s| s.as_str())
    );
    let samples = String::from_utf8(clean["ckpt_0003/k2_facts.samples.jsonl"].clone()).unwrap();
    assert_eq!(samples.lines().count(), 60);
    let s0: serde_json::Value = serde_json::from_str(samples.lines().next().unwrap()).unwrap();
    assert_eq!(
        s0["arguments"].as_array().unwrap().len(),
        s0["resps"].as_array().unwrap().len()
    );

    // A rerun finds everything done.
    let again = ok(k2().args(eval_args(&run)));
    assert!(again.contains("0 evaluated, 30 already done"), "{again}");

    // Kill a fresh sweep mid-way (several times), then finish it: same bytes, nothing partial.
    std::fs::remove_dir_all(run.join("eval")).unwrap();
    for wait_files in [4usize, 25] {
        let mut child = k2().args(eval_args(&run)).spawn().unwrap();
        let t0 = Instant::now();
        loop {
            let n = count_done(&run.join("eval"));
            if n >= wait_files {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "sweep ended before it could be killed"
            );
            assert!(t0.elapsed() < Duration::from_secs(120));
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let out = ok(k2().args(eval_args(&run)));
    assert!(out.contains("already done"), "{out}");
    assert_eq!(files(&run.join("eval")), clean);
}

/// Temp and claim files left anywhere under `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name.ends_with(".claim") {
                out.push(e.path().display().to_string());
            } else if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn sigkill_at_ten_seeded_random_points_then_a_rerun_gives_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    let t0 = Instant::now();
    ok(k2().args(eval_args(&run)));
    let full = t0.elapsed();
    let clean = files(&run.join("eval"));
    // xorshift64 from a fixed seed: the same kill points on every run of the test.
    let mut x: u64 = 0x6b32_6576_616c_2121;
    let (mut tried, mut landed) = (0, 0);
    for _ in 0..10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_micros(x % (full.as_micros() as u64).max(1));
        std::fs::remove_dir_all(run.join("eval")).unwrap();
        let mut child = k2().args(eval_args(&run)).spawn().unwrap();
        std::thread::sleep(delay);
        tried += 1;
        if child.try_wait().unwrap().is_none() {
            landed += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
        ok(k2().args(eval_args(&run)));
        assert_eq!(files(&run.join("eval")), clean, "kill after {delay:?}");
        assert!(leftovers(&run.join("eval")).is_empty());
    }
    println!("eval kills: {landed} of {tried} landed while the sweep ran (full sweep {full:?})");
    // The kill points are seeded, but where they land depends on the machine's load.
    assert!(landed >= 3, "{landed} of {tried} kills landed");

    // Two sweeps at once on the same run, without --claim: both do all the work, and the files
    // are still whole and identical to one sweep's (atomic renames of identical bytes; neither
    // removes the other's in-flight temp files).
    std::fs::remove_dir_all(run.join("eval")).unwrap();
    let both: Vec<_> = (0..2)
        .map(|_| {
            k2().args(eval_args(&run))
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in both {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(files(&run.join("eval")), clean);
    assert!(leftovers(&run.join("eval")).is_empty());
}

#[test]
fn a_corrupt_checkpoint_is_reported_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    let p = run.join("ckpt_0002/model.safetensors");
    let mut b = std::fs::read(&p).unwrap();
    let n = b.len();
    b[n - 1] ^= 1;
    std::fs::write(&p, b).unwrap();
    let out = run_cmd(k2().args(eval_args(&run)));
    assert_eq!(out.status.code(), Some(1), "a checkpoint failed its check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ckpt_0002") && stderr.contains("model.safetensors"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("25 evaluated") && stdout.contains("1 checkpoints failed"),
        "{stdout}"
    );
    assert!(!run.join("eval/ckpt_0002").exists());
    assert!(run.join("eval/ckpt_0006/k2_copy.json").exists());
}

#[test]
fn batch_size_changes_no_loglikelihood_beyond_1e_5_on_real_arc() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/stories260K-hf");
    let mut accs = Vec::new();
    let mut all = Vec::new();
    for bs in ["1", "8"] {
        let out = tmp.path().join(format!("bs{bs}"));
        let text = ok(k2()
            .args([
                "eval",
                "--quiet",
                "--tasks",
                "arc_easy",
                "--limit",
                "40",
                "--batch-size",
                bs,
                "--model",
            ])
            .arg(&model)
            .arg("--data")
            .arg(datasets())
            .arg("--output")
            .arg(&out));
        assert!(text.contains("acc_norm,none"), "{text}");
        let r = k2_eval::results::read_metrics(&out.join("arc_easy.json")).unwrap();
        accs.push((r["acc,none"], r["acc_norm,none"]));
        all.push(sample_lls(&out.join("arc_easy.samples.jsonl")));
    }
    assert_eq!(accs[0], accs[1]);
    assert_eq!(all[0].len(), 96); // the fixture's 24 ARC-Easy rows, 4 choices each
    let worst = all[0]
        .iter()
        .zip(&all[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0f64, f64::max);
    assert!(worst <= 1e-5, "max |ll(bs 1) - ll(bs 8)| = {worst}");
}

#[test]
fn unknown_tasks_and_malformed_data_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/stories260K-hf");
    let err = fails(
        k2().args(["eval", "--tasks", "arc_medium", "--model"])
            .arg(&model),
    );
    assert!(
        err.contains("arc_medium") && err.contains("arc_easy"),
        "{err}"
    );
    // A --data folder whose ARC-Easy test file (JSON Lines, laid out like the Hub) has a broken
    // line 3.
    let data = tmp.path().join("data");
    let dir = data.join("allenai/ai2_arc/ARC-Easy");
    std::fs::create_dir_all(&dir).unwrap();
    let good = r#"{"id": "a", "question": "q", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answerKey": "B"}"#;
    let lines = [
        good,
        good,
        "{\"question\": \"broken\", \"choices\": [\"a\"]",
        good,
    ];
    std::fs::write(dir.join("test.jsonl"), lines.join("\n")).unwrap();
    let err = fails(
        k2().args([
            "eval",
            "--tasks",
            "arc_easy",
            "--shots",
            "arc_easy=0",
            "--model",
        ])
        .arg(&model)
        .arg("--data")
        .arg(&data),
    );
    assert!(err.contains("test.jsonl:3:"), "{err}");
    // Without HOME or HF_HOME there is no Hugging Face cache: the built-in probes still run, and
    // a benchmark says why it cannot be fetched.
    let out = tmp.path().join("no-home");
    ok(k2()
        .env_remove("HOME")
        .env_remove("HF_HOME")
        .env_remove("HF_HUB_CACHE")
        .args([
            "eval",
            "--quiet",
            "--tasks",
            "k2_facts",
            "--probe-docs",
            "4",
            "--model",
        ])
        .arg(&model)
        .arg("--output")
        .arg(&out));
    let err = fails(
        k2().env_remove("HOME")
            .env_remove("HF_HOME")
            .env_remove("HF_HUB_CACHE")
            .args(["eval", "--tasks", "arc_easy", "--model"])
            .arg(&model),
    );
    assert!(
        err.contains("allenai/ai2_arc") && err.contains("HF_HOME"),
        "{err}"
    );
    // A --data folder without the dataset, and one that does not exist.
    let err = fails(
        k2().args(["eval", "--tasks", "piqa", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(&data),
    );
    assert!(err.contains("baber/piqa"), "{err}");
    let err = fails(
        k2().args(["eval", "--tasks", "piqa", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(tmp.path().join("nowhere")),
    );
    assert!(
        err.contains("nowhere") && err.contains("no such directory"),
        "{err}"
    );
}

/// `k2 train` of the tiny config with ten times the steps per checkpoint, started in the
/// background (long enough to watch, kill or race it).
fn slow_training(dir: &Path, run: &Path) -> std::process::Child {
    let cfg = tiny_config_with(
        dir,
        "cfg.toml",
        "steps_per_checkpoint = 8",
        "steps_per_checkpoint = 80",
    );
    k2().args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(run)
        .spawn()
        .unwrap()
}

#[test]
fn watch_evaluates_checkpoints_as_training_writes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut train = slow_training(tmp.path(), &run);
    let t0 = Instant::now();
    while !run.join("checkpoints.toml").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "training never set up its run"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut args = eval_args(&run);
    args.push("--watch".into());
    let eval = k2()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(train.wait().unwrap().success());
    let out = eval.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("30 evaluated"), "{text}");
    // The first checkpoints were evaluated while training was still running.
    let first = std::fs::metadata(run.join("eval/ckpt_0001/k2_facts.json"))
        .unwrap()
        .modified()
        .unwrap();
    let last_ckpt = std::fs::metadata(run.join("ckpt_0006/model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(
        first < last_ckpt,
        "ckpt_0001 was only evaluated after training ended"
    );
}

#[test]
fn a_second_trainer_is_refused_and_watch_gives_up_when_training_dies() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut train = slow_training(tmp.path(), &run);
    let t0 = Instant::now();
    while !run.join("ckpt_0001").exists() {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The run's trainer holds its lock: a second trainer is refused, naming it.
    let err = fails(
        k2().args(["train", "--quiet", "--resume", "--out"])
            .arg(&run),
    );
    assert!(
        err.contains("another trainer") && err.contains(&format!("pid {}", train.id())),
        "{err}"
    );
    // Training dies: --watch evaluates what is there, then gives up instead of polling forever.
    train.kill().unwrap();
    train.wait().unwrap();
    let mut args = eval_args(&run);
    args.push("--watch".into());
    let t1 = Instant::now();
    let err = fails(k2().args(args));
    assert!(
        err.contains("training stopped with") && err.contains("of 6 checkpoints"),
        "{err}"
    );
    assert!(t1.elapsed() < Duration::from_secs(60));
    // The dead trainer's lock is stale: resuming takes it over and finishes the run.
    ok(k2()
        .args(["train", "--quiet", "--resume", "--out"])
        .arg(&run));
    assert!(
        !run.join(".trainer.lock").exists(),
        "the lock is released at the end"
    );
}

#[test]
fn report_renders_figures_and_tables_from_a_run_and_from_lm_eval_results() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    ok(k2().args(eval_args(&run)));
    let out = tmp.path().join("reports");
    let text = ok(k2()
        .args(["report", "--run"])
        .arg(&run)
        .arg("--out")
        .arg(&out)
        .args(["--name", "tiny"]));
    assert!(
        text.contains("reports/tiny/README.md") || text.contains("tiny/README.md"),
        "{text}"
    );
    let readme = std::fs::read_to_string(out.join("tiny/README.md")).unwrap();
    // The table shows the headline value of a results file, and the manifest's weight hash.
    let r = k2_eval::results::read_metrics(&run.join("eval/ckpt_0006/k2_facts.json")).unwrap();
    assert!(
        readme.contains(&format!("{:.3}", r["acc_norm,none"])),
        "table lacks ckpt_0006 k2_facts"
    );
    let m = k2_archive::Manifest::load(&run.join("checkpoints.toml")).unwrap();
    assert!(readme.contains(&m.checkpoints[0].files["model.safetensors"]));
    let cfg = k2_model::LlamaConfig::from_hf_json(&run.join("ckpt_0006/config.json")).unwrap();
    assert!(
        readme.contains(&format!("**{} parameters**", cfg.num_params())),
        "no parameter count"
    );
    assert!(
        readme.contains("steps_per_checkpoint = 8"),
        "no training config"
    );
    assert!(out.join("tiny/index.html").exists());
    for f in [
        "capability_0shot.png",
        "capability_0shot.svg",
        "training.png",
        "training.svg",
    ] {
        let len = std::fs::metadata(out.join("tiny/figures").join(f))
            .unwrap()
            .len();
        assert!(len > 1000, "{f}: {len} bytes");
    }
    // Pythia's published lm-eval (v0.3) results (the 4 models of fixtures/pythia_evals, two of
    // them with five-shot files too): one line per model.
    let text = ok(k2()
        .args(["report", "--log-x", "--name", "pythia", "--lm-eval-results"])
        .arg(fixtures().join("pythia_evals"))
        .arg("--out")
        .arg(&out));
    assert!(text.contains("4 series"), "{text}");
    assert!(out.join("pythia/figures/capability_0shot.png").exists());
    assert!(out.join("pythia/figures/capability_5shot.png").exists());
}
