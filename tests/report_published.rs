//! `k2 report --lm-eval-results <k2's results> --published-results <Pythia's>`: k2's own results for
//! Pythia revisions (swept from the local Hub, which serves a tiny GPT-NeoX model as
//! `EleutherAI/pythia-160m-deduped`) drawn beside Pythia's published numbers for the same
//! revisions (`fixtures/pythia_evals`) in one figure per task, with a legend that says which
//! is which, and a table of both values per step.

mod common;
mod hub_server;

use std::collections::BTreeMap;

use common::*;
use hub_server::*;

#[test]
fn k2_results_are_drawn_beside_pythias_published_ones() {
    let mut repos = BTreeMap::new();
    repos.insert(
        "EleutherAI/pythia-160m-deduped".to_string(),
        tiny_repos()["k2-test/pythia-tiny"].clone(),
    );
    let server = Server::start(repos);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("checkpoints.toml"),
        "format = 1\n\n[[suite]]\nname = \"pythia-160m-deduped\"\nkind = \"hub\"\n\
         repo = \"EleutherAI/pythia-160m-deduped\"\nrevision_pattern = \"step{}\"\n\
         numbers = [\"1000\", \"3000\"]\ntokens_per_step = 2097152\n",
    )
    .unwrap();
    let res = home.path().join("results");
    ok(k2()
        .env("HF_ENDPOINT", &server.url)
        .env("HF_HOME", home.path())
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .current_dir(home.path())
        .args([
            "eval",
            "--all-checkpoints",
            "--suite",
            "pythia-160m-deduped",
        ])
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
        .arg(&res));
    let published = fixtures().join("pythia_evals/pythia-v1/pythia-160m-deduped");
    let out = home.path().join("reports");
    let printed = ok(k2()
        .args(["report", "--lm-eval-results"])
        .arg(res.join("pythia-160m-deduped"))
        .arg("--published-results")
        .arg(&published)
        .args(["--name", "pythia-vs-k2", "--log-x", "--out"])
        .arg(&out));
    assert!(printed.contains("report:"), "{printed}");
    let dir = out.join("pythia-vs-k2");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("## k2 beside the published results"),
        "{readme}"
    );
    // Step 1000: both sides; step 3000: k2 only... and Pythia's 3000 exists too; step 13000:
    // published only (k2 did not evaluate it).
    let rows: Vec<Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| pythia-160m-deduped"))
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    let row = |task: &str, step: &str| {
        rows.iter()
            .find(|r| r[2].starts_with(task) && r[3] == step)
            .unwrap_or_else(|| panic!("no row {task} {step}:\n{readme}"))
            .clone()
    };
    let r = row("arc_easy", "1000");
    assert!(r[4] != "—" && r[5] != "—" && r[6] != "—", "{r:?}");
    let k2_1000: f64 = r[4].parse().unwrap();
    let swept: serde_json::Value = serde_json::from_slice(
        &std::fs::read(res.join("pythia-160m-deduped/step1000/arc_easy.json")).unwrap(),
    )
    .unwrap();
    let metric = if r[2].contains("acc_norm") {
        "acc_norm,none"
    } else {
        "acc,none"
    };
    let v = swept["results"]["arc_easy"][metric].as_f64().unwrap();
    assert!((k2_1000 - v).abs() < 5e-5, "{k2_1000} vs {v}");
    let r = row("arc_easy", "13000");
    assert!(r[4] == "—" && r[5] != "—", "{r:?}");
    // One figure holds both series, and its legend names them.
    let svgs: Vec<String> = std::fs::read_dir(dir.join("figures"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension().is_some_and(|x| x == "svg"))
                .then(|| std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    assert!(
        svgs.iter().any(|s| s.contains("pythia-160m-deduped (k2)")
            && s.contains("pythia-160m-deduped (published)")),
        "no figure with both legend entries"
    );

    // Published results that share no model and task with k2's are an error naming the folder.
    let other = fixtures().join("pythia_evals/pythia-v1/pythia-1.4b");
    let e = fails(
        k2().args(["report", "--lm-eval-results"])
            .arg(res.join("pythia-160m-deduped"))
            .arg("--published-results")
            .arg(&other)
            .args(["--name", "x", "--out"])
            .arg(&out),
    );
    assert!(
        e.contains("pythia-1.4b") && e.contains("no published result"),
        "{e}"
    );
}
