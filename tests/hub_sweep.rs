//! `k2 eval --all-checkpoints --suite NAME` on a `kind = "hub"` suite against the local Hub
//! server: every revision pulled, verified and evaluated in training order, byte-identical
//! weights reported as duplicates and not evaluated again, `--keep 1` evicting what the sweep
//! finished, and a rerun that skips finished pairs without downloading anything.

mod common;
mod hub_server;

use std::path::Path;

use common::*;
use hub_server::*;

/// `k2-test/tiny`'s three revisions as the suite `tiny` (ckpt_002 duplicates ckpt_001).
const TINY_SUITE: &str = "format = 1\n\n[[suite]]\nname = \"tiny\"\nkind = \"hub\"\n\
    repo = \"k2-test/tiny\"\nrevision_pattern = \"ckpt_{:03}\"\nnumbers = [\"0..=2\"]\n\
    tokens_per_checkpoint = 1000\nfirst_checkpoint = 0\nstage = 1\n";

fn sweep(server: &Server, home: &Path, out: &Path) -> std::process::Command {
    sweep_suite(server, home, out, "tiny")
}

fn sweep_suite(server: &Server, home: &Path, out: &Path, suite: &str) -> std::process::Command {
    let mut c = k2();
    c.env("HF_ENDPOINT", &server.url)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .env("K2_HUB_BACKOFF_MS", "1")
        .current_dir(home)
        .args([
            "eval",
            "--all-checkpoints",
            "--suite",
            suite,
            "--tasks",
            "arc_easy",
            "--limit",
            "4",
            "--quiet",
            "--keep",
            "1",
            "--data",
        ])
        .arg(shared())
        .arg("--output")
        .arg(out);
    c
}

#[test]
fn suite_sweep_pulls_evaluates_reports_duplicates_and_evicts() {
    let repos = tiny_repos();
    let server = Server::start(repos.clone());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("checkpoints.toml"), TINY_SUITE).unwrap();
    let res = home.path().join("results");
    let out = ok(&mut sweep(&server, home.path(), &res));
    println!("{out}");
    assert!(
        out.contains(
            "2 evaluated, 0 already done, 1 duplicate checkpoints, 0 checkpoints failed, 1 evicted"
        ),
        "{out}"
    );
    let dup = out.lines().find(|l| l.starts_with("ckpt_002")).unwrap();
    assert!(
        dup.contains("duplicate") && dup.contains("(= ckpt_001)"),
        "{out}"
    );

    let suite_dir = res.join("tiny");
    for (rev, tokens) in [("ckpt_000", 1000), ("ckpt_001", 2000)] {
        let r: serde_json::Value = serde_json::from_slice(
            &std::fs::read(suite_dir.join(rev).join("arc_easy.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(r["config"]["model_revision"], rev);
        assert_eq!(
            r["config"]["model_sha"].as_str().unwrap(),
            weights_sha(&repos, "k2-test/tiny", rev)
        );
        assert_eq!(
            r["config"]["model_args"],
            format!("pretrained=k2-test/tiny,revision={rev}")
        );
        assert_eq!(r["k2"]["tokens"], tokens);
        assert!(r["results"]["arc_easy"]["acc,none"].as_f64().is_some());
        assert!(suite_dir.join(rev).join("arc_easy.samples.jsonl").exists());
    }
    assert!(!suite_dir.join("ckpt_002").exists());
    let summary = std::fs::read_to_string(suite_dir.join("sweep-summary.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = summary
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[2]["status"], "duplicate");
    assert_eq!(recs[2]["duplicate_of"], "ckpt_001");
    assert_eq!(recs[0]["evicted"], true);
    assert_eq!(recs[1]["evicted"], false);

    // --keep 1: only ckpt_001's snapshot is left; ckpt_000's weights blob went with it, the
    // blobs both shared (tokenizer, config) stayed.
    let cache = home.path().join("hub/models--k2-test--tiny");
    let snaps: Vec<String> = std::fs::read_dir(cache.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(snaps, [commit(&repos, "k2-test/tiny", "ckpt_001")]);
    let w0 = weights_sha(&repos, "k2-test/tiny", "ckpt_000");
    assert!(!cache.join("blobs").join(&w0).exists());
    let snap = cache.join("snapshots").join(&snaps[0]);
    assert!(snap.join("tokenizer.json").exists() && snap.join("model.safetensors").exists());
    assert!(!cache.join("refs/ckpt_000").exists());

    // A rerun finds every pair done from the listings alone: no weights are downloaded again.
    server.clear_log();
    let again = ok(&mut sweep(&server, home.path(), &res));
    assert!(
        again.contains("0 evaluated, 2 already done, 1 duplicate checkpoints"),
        "{again}"
    );
    assert!(
        !server.log().iter().any(|l| l.contains("/cdn/")),
        "{:?}",
        server.log()
    );

    // Offline, the cache alone answers: ckpt_001 is done; ckpt_000 (evicted) and ckpt_002 (never
    // pulled, so its weights are unknown offline) fail with an error naming the cache.
    server.clear_log();
    let out = run_cmd(sweep(&server, home.path(), &res).env("HF_HUB_OFFLINE", "1"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stdout
            .contains("0 evaluated, 1 already done, 0 duplicate checkpoints, 2 checkpoints failed"),
        "{stdout}"
    );
    assert!(
        stderr.contains("ckpt_000") && stderr.contains("not in the cache"),
        "{stderr}"
    );
    assert!(server.log().is_empty(), "{:?}", server.log());

    // The results are an lm-eval tree `k2 report` reads.
    let rep = ok(k2()
        .args(["report", "--lm-eval-results"])
        .arg(&suite_dir)
        .arg("--out")
        .arg(home.path().join("reports"))
        .args(["--name", "tiny"]));
    assert!(rep.contains("report:"), "{rep}");
}

#[test]
fn a_suite_of_another_architecture_stops_before_downloading_weights() {
    let server = Server::start(tiny_repos());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("checkpoints.toml"),
        "format = 1\n\n[[suite]]\nname = \"falcon\"\nkind = \"hub\"\nrepo = \"k2-test/falcon\"\n\
         tokens_per_step = 2097152\n",
    )
    .unwrap();
    let res = home.path().join("results");
    let err = fails(&mut sweep_suite(&server, home.path(), &res, "falcon"));
    println!("{err}");
    assert!(
        err.contains("k2-test/falcon@step0")
            && err.contains("config.json")
            && err.contains("model_type")
            && err.contains("`falcon` is not supported (supported: llama, gpt_neox, olmo, olmo2)"),
        "{err}"
    );
    assert!(
        !server.log().iter().any(|l| l.contains("/cdn/")),
        "no weights downloaded: {:?}",
        server.log()
    );
}

#[test]
fn checkpoints_with_only_tokenizer_model_or_pytorch_weights_are_evaluated_through_a_view() {
    let server = Server::start(tiny_repos());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("checkpoints.toml"),
        "format = 1\n\n[[suite]]\nname = \"sp\"\nkind = \"hub\"\nrepo = \"k2-test/sp-only\"\n\
         revisions = [\"ckpt_000\"]\n\n[[suite]]\nname = \"tiny\"\nkind = \"hub\"\n\
         repo = \"k2-test/tiny\"\nrevisions = [\"ckpt_000\"]\n\n[[suite]]\nname = \"pt\"\n\
         kind = \"hub\"\nrepo = \"k2-test/pt-only\"\nrevisions = [\"ckpt_000\"]\n",
    )
    .unwrap();
    let res = home.path().join("results");
    let out = ok(&mut sweep_suite(&server, home.path(), &res, "sp"));
    assert!(out.contains("1 evaluated, 0 already done"), "{out}");
    ok(&mut sweep_suite(&server, home.path(), &res, "tiny"));
    let out = ok(&mut sweep_suite(&server, home.path(), &res, "pt"));
    assert!(out.contains("1 evaluated, 0 already done"), "{out}");
    let read = |suite: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(res.join(suite).join("ckpt_000/arc_easy.json")).unwrap(),
        )
        .unwrap()
    };
    // Same weights, and the converted tokenizer equals the shipped one: identical scores.
    assert_eq!(read("sp")["results"], read("tiny")["results"]);
    // PyTorch weights converted to safetensors: identical scores too; model_sha is the .bin's.
    assert_eq!(read("pt")["results"], read("tiny")["results"]);
    let bin = &tiny_repos()["k2-test/pt-only"].branches["ckpt_000"].files["pytorch_model.bin"];
    assert_eq!(read("pt")["config"]["model_sha"], sha256_of(bin));
    let sp_samples = std::fs::read(res.join("sp/ckpt_000/arc_easy.samples.jsonl")).unwrap();
    let tiny_samples = std::fs::read(res.join("tiny/ckpt_000/arc_easy.samples.jsonl")).unwrap();
    assert_eq!(sp_samples, tiny_samples);
    // The HF cache holds only what the Hub served; the view sits beside it; --keep 1 kept it.
    let commit = commit(&tiny_repos(), "k2-test/sp-only", "ckpt_000");
    let snap = home
        .path()
        .join("hub/models--k2-test--sp-only/snapshots")
        .join(&commit);
    assert!(!snap.join("tokenizer.json").exists());
    let view = home
        .path()
        .join("k2-views/models--k2-test--sp-only")
        .join(&commit);
    assert!(view.join("tokenizer.json").exists() && view.join("model.safetensors").exists());
}

/// Every file under `dir`, read as bytes, that contains `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    hits
}

#[test]
fn hf_token_never_appears_in_output_results_samples_or_summaries() {
    let server = Server::start(tiny_repos());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("checkpoints.toml"),
        "format = 1\n\n[[suite]]\nname = \"gated\"\nkind = \"hub\"\nrepo = \"k2-test/gated\"\n\
         revisions = [\"main\"]\n",
    )
    .unwrap();
    let res = home.path().join("results");
    // The right token (the server's sentinel): a sweep that pulls and evaluates.
    let out =
        run_cmd(sweep_suite(&server, home.path(), &res, "gated").env("HF_TOKEN", "secret-token"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 evaluated"), "{stdout}");
    assert!(!stdout.contains("secret-token") && !stderr.contains("secret-token"));
    assert!(res.join("gated/sweep-summary.jsonl").exists());
    let hits = files_containing(home.path(), "secret-token");
    assert!(hits.is_empty(), "the token was written to {hits:?}");
    // A wrong token: the error says the repository is gated, never the token.
    let wrong = "sentinel-wrong-token-4f2a";
    let out = run_cmd(
        sweep_suite(&server, home.path(), &home.path().join("r2"), "gated").env("HF_TOKEN", wrong),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success() && text.contains("gated"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    let hits = files_containing(home.path(), wrong);
    assert!(hits.is_empty(), "the token was written to {hits:?}");
}

#[test]
fn shards_of_a_hub_suite_mark_the_same_duplicates_as_one_process() {
    let server = Server::start(tiny_repos());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("checkpoints.toml"), TINY_SUITE).unwrap();
    let one = home.path().join("one");
    ok(&mut sweep(&server, home.path(), &one));
    let sharded = home.path().join("sharded");
    for i in 0..3 {
        // ckpt_002 (a duplicate of ckpt_001) is shard 2's; its twin is shard 1's.
        let out = ok(sweep(&server, home.path(), &sharded).args(["--shard", &format!("{i}/3")]));
        if i == 2 {
            assert!(out.contains("1 duplicate checkpoints"), "{out}");
        }
    }
    let list = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d.join("tiny"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with("sweep-summary"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&sharded), list(&one));
    assert!(!sharded.join("tiny/ckpt_002").exists());
    for rev in ["ckpt_000", "ckpt_001"] {
        for f in ["arc_easy.json", "arc_easy.samples.jsonl"] {
            assert_eq!(
                std::fs::read(sharded.join("tiny").join(rev).join(f)).unwrap(),
                std::fs::read(one.join("tiny").join(rev).join(f)).unwrap(),
                "{rev}/{f}"
            );
        }
    }
}
