//! Helpers for the CLI tests: run the real `k2` binary on real files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn k2() -> Command {
    Command::new(env!("CARGO_BIN_EXE_k2"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tiny_config() -> PathBuf {
    repo().join("tests/fixtures/tiny.toml")
}

/// The tiny config with some text replaced, written to `dir/name`.
pub fn tiny_config_with(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(tiny_config()).unwrap();
    assert!(text.contains(from), "tiny.toml has no `{from}`");
    let p = dir.join(name);
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    p
}

pub fn run_cmd(cmd: &mut Command) -> Output {
    cmd.output().expect("k2 runs")
}

pub fn ok(cmd: &mut Command) -> String {
    let out = run_cmd(cmd);
    assert!(
        out.status.success(),
        "k2 failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs `cmd`, expecting a usage, config or input error (exit status 2); returns stderr.
pub fn fails(cmd: &mut Command) -> String {
    fails_with(cmd, 2)
}

/// Runs `cmd`, expecting exit status `code` (1: a check failed; 2: a usage, config or input
/// error); returns stderr.
pub fn fails_with(cmd: &mut Command, code: i32) -> String {
    let out = run_cmd(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    stderr
}

pub fn train_tiny(out: &Path) {
    ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(tiny_config())
        .arg("--out")
        .arg(out));
}

/// The Hub-schema benchmark fixtures, a `--data` folder (`fixtures/datasets/<org>/<name>/`).
pub fn datasets() -> PathBuf {
    repo().join("fixtures/datasets")
}

/// The repository's `fixtures/`: the tiny real models (`models/`) and a subset of Pythia's
/// published lm-eval results (`pythia_evals/`), committed so the tests need nothing beside it.
pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// Every loglikelihood response of an eval samples file (`<task>.samples.jsonl`), in order.
pub fn sample_lls(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .flat_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["resps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["ll"].as_f64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every file under `dir` (a results tree) except the sweep summaries, which each worker writes
/// for itself: relative path -> bytes.
pub fn results_tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if !rel.starts_with("sweep-summary") {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
