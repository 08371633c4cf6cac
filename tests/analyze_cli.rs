//! The longitudinal analyses at the command line, on a real tiny run with a rolled-back loss
//! spike (`tests/fixtures/tiny_spike.toml`) evaluated by `k2 eval --all-checkpoints`:
//!
//! * `k2 analyze items`: its JSON agrees with the samples files read independently here
//!   (correctness, forgetting events, age of acquisition, flips between consecutive checkpoints);
//! * `k2 compare`: flip counts and the exact McNemar p-value recomputed here from the samples
//!   files; table, `--json` and `--html`; bad arguments exit non-zero naming what is wrong;
//! * `k2 analyze gallery`: one results file per `ok` and `spike` checkpoint, a rerun that skips
//!   them, a changed prompts file that recomputes, errors naming the field, and the report's
//!   section with the spike checkpoint marked.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const TASKS: &str = "k2_facts,k2_code_brackets";

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// `acc,none` per doc of one samples file.
fn accs(path: &Path) -> Vec<bool> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: Vec<(u64, bool)> = text
        .lines()
        .map(|l| {
            let r = json(l);
            (
                r["doc_id"].as_u64().unwrap(),
                r["metrics"]["acc,none"].as_f64().unwrap() == 1.0,
            )
        })
        .collect();
    v.sort_by_key(|x| x.0);
    v.into_iter().map(|x| x.1).collect()
}

/// The exact two-sided McNemar p-value, by hand: 2 * P(X <= min(b, c)), X ~ Bin(b + c, 1/2).
fn mcnemar(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    let mut sum = 0.0;
    let mut choose = 1.0f64;
    for i in 0..=k {
        if i > 0 {
            choose = choose * (n - i + 1) as f64 / i as f64;
        }
        sum += choose;
    }
    (2.0 * sum / 2f64.powi(n as i32)).min(1.0)
}

fn spike_run(tmp: &Path) -> std::path::PathBuf {
    let d = tmp.join("run");
    ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(repo().join("tests/fixtures/tiny_spike.toml"))
        .arg("--out")
        .arg(&d));
    ok(k2()
        .args([
            "eval",
            "--all-checkpoints",
            "--quiet",
            "--limit",
            "60",
            "--run",
        ])
        .arg(&d)
        .args(["--tasks", TASKS]));
    d
}

fn gallery(run: &Path, prompts: Option<&Path>) -> Command {
    let mut c = k2();
    c.args(["analyze", "gallery", "--quiet", "--run"]).arg(run);
    if let Some(p) = prompts {
        c.arg("--prompts").arg(p);
    }
    c
}

#[test]
fn items_compare_and_gallery_at_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let d = spike_run(tmp.path());
    let eval = d.join("eval");
    assert!(eval.join("spike_ckpt_0003/k2_facts.samples.jsonl").exists());

    // --- k2 analyze items ---
    let out = ok(k2().args(["analyze", "items", "--run"]).arg(&d));
    assert!(
        out.contains("k2_facts") && out.contains("k2_code_brackets"),
        "{out}"
    );
    let items = json(&ok(k2()
        .args(["analyze", "items", "--json", "--run"])
        .arg(&d)
        .args(["--tasks", "k2_facts"])));
    let tasks = items.as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert_eq!(t["task"], "k2_facts");
    assert_eq!(t["metric"], "acc,none");
    let names: Vec<String> = t["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    // The lineage: ok checkpoints only, in training order.
    assert_eq!(names.first().map(String::as_str), Some("ckpt_0001"));
    assert!(names.iter().all(|n| n.starts_with("ckpt_")), "{names:?}");
    let by_ckpt: Vec<Vec<bool>> = names
        .iter()
        .map(|n| accs(&eval.join(n).join("k2_facts.samples.jsonl")))
        .collect();
    let rows = t["items"].as_array().unwrap();
    assert_eq!(rows.len(), 60);
    for (doc, row) in rows.iter().enumerate() {
        let seq: Vec<bool> = by_ckpt.iter().map(|c| c[doc]).collect();
        let got: Vec<bool> = row["correct"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        assert_eq!(got, seq, "doc {doc}");
        let events = seq.windows(2).filter(|w| w[0] && !w[1]).count();
        assert_eq!(row["forgetting_events"], events as u64, "doc {doc}");
        let aoa = (0..seq.len()).find(|&i| seq[i..].iter().all(|&c| c));
        assert_eq!(
            row["acquired_at"].as_u64(),
            aoa.map(|a| a as u64),
            "doc {doc}"
        );
    }
    for (k, ch) in t["changes"].as_array().unwrap().iter().enumerate() {
        let (a, b) = (&by_ckpt[k], &by_ckpt[k + 1]);
        let learned = a.iter().zip(b).filter(|(x, y)| !**x && **y).count();
        let forgotten = a.iter().zip(b).filter(|(x, y)| **x && !**y).count();
        assert_eq!(ch["learned"], learned as u64);
        assert_eq!(ch["forgotten"], forgotten as u64);
        let p = ch["acc"]["p_value"].as_f64().unwrap();
        assert!((p - mcnemar(learned, forgotten)).abs() < 1e-9, "{p}");
    }
    let e = fails(
        k2().args(["analyze", "items", "--run"])
            .arg(&d)
            .args(["--tasks", "k2_nope"]),
    );
    assert!(e.contains("k2_nope"), "{e}");

    // --- k2 compare ---
    let c = json(&ok(k2()
        .args(["compare", "ckpt_0002", "spike_ckpt_0003", "--json", "--run"])
        .arg(&d)));
    let a = accs(&eval.join("ckpt_0002/k2_code_brackets.samples.jsonl"));
    let b = accs(&eval.join("spike_ckpt_0003/k2_code_brackets.samples.jsonl"));
    let lost = a.iter().zip(&b).filter(|(x, y)| **x && !**y).count();
    let gained = a.iter().zip(&b).filter(|(x, y)| !**x && **y).count();
    let tc = c["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "k2_code_brackets")
        .unwrap();
    assert_eq!(tc["a_only"], lost as u64);
    assert_eq!(tc["b_only"], gained as u64);
    assert_eq!(tc["lost"].as_array().unwrap().len(), lost);
    assert_eq!(tc["gained"].as_array().unwrap().len(), gained);
    let acc = |v: &[bool]| v.iter().filter(|&&x| x).count() as f64 / v.len() as f64;
    assert!((tc["score_a"].as_f64().unwrap() - acc(&a)).abs() < 1e-12);
    assert!((tc["diff"].as_f64().unwrap() - (acc(&b) - acc(&a))).abs() < 1e-12);
    assert!((tc["p_value"].as_f64().unwrap() - mcnemar(lost, gained)).abs() < 1e-9);
    let html = tmp.path().join("cmp.html");
    let table = ok(k2()
        .args(["compare", "ckpt_0002", "spike_ckpt_0003", "--run"])
        .arg(&d)
        .arg("--html")
        .arg(&html));
    assert!(
        table.contains("k2_code_brackets") && table.contains("wrote"),
        "{table}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("spike_ckpt_0003"));
    let e = fails(
        k2().args(["compare", "ckpt_0002", "ckpt_0099", "--run"])
            .arg(&d),
    );
    assert!(e.contains("ckpt_0099"), "{e}");

    // --- k2 analyze gallery ---
    let prompts = tmp.path().join("prompts.toml");
    std::fs::write(
        &prompts,
        "[[prompt]]\nid = \"story\"\ntext = \"Once upon a time\"\nmax_tokens = 8\n\n\
         [[prompt]]\nid = \"code\"\ntext = \"def f(x):\"\nmax_tokens = 6\nstop = [\"\\n\"]\n",
    )
    .unwrap();
    let out = ok(&mut gallery(&d, Some(&prompts)));
    assert!(out.contains("[story] Once upon a time"), "{out}");
    assert!(out.contains("(spike)"), "{out}");
    let manifest = std::fs::read_to_string(d.join("checkpoints.toml")).unwrap();
    let n_measured = manifest.matches("status = \"ok\"").count()
        + manifest.matches("status = \"spike\"").count();
    assert!(
        out.contains(&format!("{n_measured} generated, 0 already done")),
        "{out}"
    );
    let g = d.join("gallery/spike_ckpt_0003/k2_gallery.samples.jsonl");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&g)
        .unwrap()
        .lines()
        .map(json)
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["target"], "code");
    assert!(!lines[1]["prediction"].as_str().unwrap().contains('\n'));
    let again = ok(&mut gallery(&d, Some(&prompts)));
    assert!(
        again.contains(&format!("0 generated, {n_measured} already done")),
        "{again}"
    );
    // The built-in prompts are another gallery: every checkpoint is redone.
    let builtin = ok(&mut gallery(&d, None));
    assert!(
        builtin.contains(&format!("{n_measured} generated, 0 already done")),
        "{builtin}"
    );
    assert!(builtin.contains("[arithmetic]"), "{builtin}");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[prompt]]\nid = \"x\"\ntext = \"t\"\nmax_tokens = 0\n",
    )
    .unwrap();
    let e = fails(&mut gallery(&d, Some(&bad)));
    assert!(
        e.contains("bad.toml") && e.contains("prompt[0].max_tokens"),
        "{e}"
    );
    let e = fails(&mut gallery(&tmp.path().join("nowhere"), None));
    assert!(e.contains("nowhere"), "{e}");

    // --- the report shows the gallery, spike marked, and the items section ---
    let reports = tmp.path().join("reports");
    ok(k2()
        .args(["report", "--run"])
        .arg(&d)
        .arg("--out")
        .arg(&reports));
    let readme = std::fs::read_to_string(reports.join("run/README.md")).unwrap();
    assert!(readme.contains("## Prompt gallery"), "{readme}");
    assert!(readme.contains("spike\\_ckpt\\_0003 **spike**"), "{readme}");
    assert!(readme.contains("## Per-item dynamics"), "{readme}");
}
