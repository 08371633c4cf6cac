//! Pythia (GPT-NeoX) and OLMo / OLMo-2 suites swept end to end against the local Hub server, which
//! serves tiny transformers-made models of those families (tests/fixtures/families) under the
//! suites' real branch names: every revision pulled, evaluated in training order with tokens from
//! `tokens_per_step` or from the name, byte-identical weights reported as a duplicate, a
//! `pytorch_model.bin`-only revision evaluated through a safetensors view, and each score equal to
//! `k2 eval --model` on the same weights.

mod common;
mod hub_server;

use std::path::Path;

use common::*;
use hub_server::*;

const SUITES: &str = "format = 1\n\n\
    [[suite]]\nname = \"pythia-tiny\"\nkind = \"hub\"\nrepo = \"k2-test/pythia-tiny\"\n\
    revision_pattern = \"step{}\"\nnumbers = [\"0\", \"1000..=3000/1000\"]\n\
    tokens_per_step = 2097152\nstage = 1\n\n\
    [[suite]]\nname = \"olmo-tiny\"\nkind = \"hub\"\nrepo = \"k2-test/olmo-tiny\"\nstage = 1\n\n\
    [[suite]]\nname = \"olmo2-tiny\"\nkind = \"hub\"\nrepo = \"k2-test/olmo2-tiny\"\n";

fn sweep(server: &Server, home: &Path, out: &Path, suite: &str) -> std::process::Command {
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
            "arc_easy,lambada_openai",
            "--limit",
            "6",
            "--quiet",
            "--data",
        ])
        .arg(shared())
        .arg("--output")
        .arg(out);
    c
}

fn result(dir: &Path, task: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{task}.json"))).unwrap()).unwrap()
}

/// `k2 eval --model DIR` on the same tasks, for comparison with a swept revision.
fn direct(dir: &Path, out: &Path) -> (f64, f64) {
    ok(k2()
        .args(["eval", "--model"])
        .arg(dir)
        .args([
            "--tasks",
            "arc_easy,lambada_openai",
            "--limit",
            "6",
            "--quiet",
        ])
        .arg("--data")
        .arg(shared())
        .arg("--output")
        .arg(out));
    (
        result(out, "arc_easy")["results"]["arc_easy"]["acc,none"]
            .as_f64()
            .unwrap(),
        result(out, "lambada_openai")["results"]["lambada_openai"]["perplexity,none"]
            .as_f64()
            .unwrap(),
    )
}

fn scores(dir: &Path) -> (f64, f64) {
    (
        result(dir, "arc_easy")["results"]["arc_easy"]["acc,none"]
            .as_f64()
            .unwrap(),
        result(dir, "lambada_openai")["results"]["lambada_openai"]["perplexity,none"]
            .as_f64()
            .unwrap(),
    )
}

#[test]
fn pythia_suite_sweeps_with_duplicates_and_a_pytorch_only_revision() {
    let repos = tiny_repos();
    let server = Server::start(repos.clone());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("checkpoints.toml"), SUITES).unwrap();
    let res = home.path().join("results");
    let out = ok(&mut sweep(&server, home.path(), &res, "pythia-tiny"));
    println!("{out}");
    assert!(
        out.contains("6 evaluated, 0 already done, 1 duplicate checkpoints, 0 checkpoints failed"),
        "{out}"
    );
    let dup = out.lines().find(|l| l.starts_with("step2000")).unwrap();
    assert!(dup.contains("(= step1000)"), "{out}");
    let suite = res.join("pythia-tiny");
    for (rev, step) in [("step0", 0u64), ("step1000", 1000), ("step3000", 3000)] {
        let r = result(&suite.join(rev), "arc_easy");
        assert_eq!(r["k2"]["tokens"], step * 2_097_152, "{rev}");
        assert_eq!(
            r["config"]["model_args"],
            format!("pretrained=k2-test/pythia-tiny,revision={rev}")
        );
    }
    // The released weights score as they do loaded directly.
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/families/pythia-parallel");
    assert_eq!(
        scores(&suite.join("step0")),
        direct(&fixture, &home.path().join("direct"))
    );
    // A rerun is all done from the listings.
    server.clear_log();
    let again = ok(&mut sweep(&server, home.path(), &res, "pythia-tiny"));
    assert!(again.contains("0 evaluated, 6 already done"), "{again}");
    assert!(!server.log().iter().any(|l| l.contains("/cdn/")));
}

#[test]
fn olmo_and_olmo2_suites_sweep_with_tokens_from_the_branch_names() {
    let server = Server::start(tiny_repos());
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("checkpoints.toml"), SUITES).unwrap();
    let res = home.path().join("results");
    for (suite, variant, revs) in [
        (
            "olmo-tiny",
            "olmo-tied",
            [
                ("step1000-tokens4B", 4_000_000_000u64),
                ("step2000-tokens8B", 8_000_000_000),
            ],
        ),
        (
            "olmo2-tiny",
            "olmo2",
            [
                ("stage1-step1000-tokens5B", 5_000_000_000),
                ("stage1-step2000-tokens9B", 9_000_000_000),
            ],
        ),
    ] {
        let out = ok(&mut sweep(&server, home.path(), &res, suite));
        println!("{out}");
        assert!(out.contains("4 evaluated, 0 already done"), "{out}");
        for (rev, tokens) in revs {
            let r = result(&res.join(suite).join(rev), "lambada_openai");
            assert_eq!(r["k2"]["tokens"], tokens, "{suite} {rev}");
        }
        // The first revision holds the fixture's weights unchanged.
        let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/families")
            .join(variant);
        assert_eq!(
            scores(&res.join(suite).join(revs[0].0)),
            direct(&fixture, &home.path().join(format!("direct-{suite}")))
        );
    }
}

/// `k2 model info` describes each family, with transformers' parameter count; a config of an
/// architecture or option k2 does not run is refused by `k2 eval`, naming the field, before any
/// weights are read.
#[test]
fn model_info_describes_families_and_unsupported_configs_are_refused_by_field() {
    let families =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families");
    // Parameter counts as transformers' `sum(p.numel() for p in model.parameters())`.
    for (variant, what, params) in [
        ("pythia-parallel", "model_type gpt_neox", 50048),
        ("olmo-tied", "clip_qkv 0.6", 45056),
        ("olmo2", "QK-norm", 55552),
    ] {
        let out = ok(k2().args(["model", "info"]).arg(families.join(variant)));
        assert!(out.contains(what), "{out}");
        assert!(out.contains(&format!("parameters: {params}")), "{out}");
    }
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(families.join("olmo2")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let cfg_path = dir.path().join("config.json");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    for (key, value, expect) in [
        (
            "model_type",
            serde_json::json!("mistral"),
            "`mistral` is not supported",
        ),
        (
            "rope_scaling",
            serde_json::json!({"rope_type": "yarn", "factor": 4.0}),
            "field `rope_scaling`",
        ),
        (
            "attention_bias",
            serde_json::json!(true),
            "field `attention_bias`",
        ),
        (
            "hidden_act",
            serde_json::json!("gelu"),
            "field `hidden_act`",
        ),
    ] {
        let mut c = cfg.clone();
        c[key] = value;
        std::fs::write(&cfg_path, serde_json::to_vec(&c).unwrap()).unwrap();
        // Exit 1: the checkpoint could not be evaluated (README's exit statuses).
        let e = fails_with(
            k2().args(["eval", "--model"])
                .arg(dir.path())
                .args(["--tasks", "arc_easy", "--limit", "2", "--quiet"])
                .arg("--data")
                .arg(shared())
                .arg("--output")
                .arg(dir.path().join("out")),
            1,
        );
        assert!(
            e.contains("config.json") && e.contains(expect),
            "{key}: {e}"
        );
    }
}
