//! A task YAML whose `data_files` are `hf://datasets/<org>/<name>[@rev]/<path>`, against a real
//! HTTP server on 127.0.0.1 answering the Hub's routes (tests/hub_server): the files are pulled
//! into the HF cache, the results record the repository and the commit they resolved to, a pinned
//! `@rev` reads that revision, and a rerun with HF_HUB_OFFLINE=1 reads the cache only and writes
//! the same results.

mod common;
mod hub_server;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::*;
use hub_server::*;

fn rows(words: &[&str]) -> Arc<Vec<u8>> {
    let text: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            format!("{{\"sentence_good\": \"the {w} runs {i}\", \"sentence_bad\": \"the {w} run {i}\"}}\n")
        })
        .collect();
    Arc::new(text.into_bytes())
}

fn task_yaml(dir: &Path, name: &str, data_file: &str) {
    let yaml = format!(
        "task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {data_file}\n\
         validation_split: train\noutput_type: multiple_choice\ndoc_to_text: \"\"\ndoc_to_target: 0\n\
         doc_to_choice: \"{{{{[sentence_good, sentence_bad]}}}}\"\nmetric_list:\n  - metric: acc\n"
    );
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
}

#[test]
fn hf_data_files_are_pulled_recorded_and_read_offline() {
    let id = "k2-test/pairs";
    let main = revision(
        id,
        "main",
        BTreeMap::from([(
            "data/pairs.jsonl".to_string(),
            rows(&["dog", "cat", "bird"]),
        )]),
    );
    let v1 = revision(
        id,
        "v1",
        BTreeMap::from([("data/pairs.jsonl".to_string(), rows(&["fox"]))]),
    );
    let mut repos = tiny_repos();
    repos.insert(
        format!("datasets/{id}"),
        Repo {
            branches: BTreeMap::from([("main".into(), main.clone()), ("v1".into(), v1.clone())]),
            token: None,
        },
    );
    let server = Server::start(repos);
    let home = tempfile::tempdir().unwrap();
    let tasks = home.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    task_yaml(
        &tasks,
        "pairs_hub",
        "hf://datasets/k2-test/pairs/data/pairs.jsonl",
    );
    task_yaml(
        &tasks,
        "pairs_v1",
        "hf://datasets/k2-test/pairs@v1/data/pairs.jsonl",
    );

    let eval = |out: &Path, offline: bool| {
        let mut c = server.k2(home.path());
        c.args([
            "eval",
            "--quiet",
            "--model",
            "k2-test/tiny",
            "--revision",
            "ckpt_000",
        ])
        .args(["--tasks", "pairs_hub,pairs_v1", "--include-path"])
        .arg(&tasks)
        .arg("--output")
        .arg(out);
        if offline {
            c.env("HF_HUB_OFFLINE", "1");
        }
        ok(&mut c);
    };
    let online = home.path().join("online");
    eval(&online, false);
    let result = |out: &Path, task: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(format!("{task}.json"))).unwrap()).unwrap()
    };
    for (task, rev, docs) in [("pairs_hub", &main, 3), ("pairs_v1", &v1, 1)] {
        let r = result(&online, task);
        let ds = &r["k2"]["datasets"][0];
        assert_eq!(ds["repo"], id, "{task}: {ds}");
        assert_eq!(ds["commit"], rev.commit.as_str(), "{task}: {ds}");
        let n = std::fs::read_to_string(online.join(format!("{task}.samples.jsonl")))
            .unwrap()
            .lines()
            .count();
        assert_eq!(n, docs, "{task} reads its revision's rows");
    }
    let cached = home.path().join("hub").join("datasets--k2-test--pairs");
    assert!(cached
        .join("snapshots")
        .join(&main.commit)
        .join("data/pairs.jsonl")
        .is_file());

    // Offline: the cache only, the same results.
    let offline = home.path().join("offline");
    server.clear_log();
    eval(&offline, true);
    assert!(
        server.log().is_empty(),
        "offline makes no request: {:?}",
        server.log()
    );
    for task in ["pairs_hub", "pairs_v1"] {
        assert_eq!(
            result(&online, task)["results"],
            result(&offline, task)["results"],
            "{task}"
        );
    }
}
