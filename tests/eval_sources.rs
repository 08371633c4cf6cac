//! One sweep over every checkpoint source, at the CLI: a directory of HF checkpoints named in
//! each trainer's scheme (`--dir`), shards (`--shard I/N`) and claim files (`--claim`) writing
//! exactly what one process writes, and `--status`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

const TASKS: [&str; 4] = ["--tasks", "k2_facts,k2_agreement", "--probe-docs", "16"];

/// The same files with the same bytes (names only in the message).
fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (name, bytes) in want {
        assert!(&got[name] == bytes, "{what}: {name} differs");
    }
}

/// Moves a finished sweep's results aside so the next sweep over the same run starts afresh
/// (results name the run directory, so every sweep runs on the same one).
fn reset(run: &Path) {
    std::fs::remove_dir_all(run.join("eval")).unwrap();
}

fn eval_run(run: &Path) -> std::process::Command {
    let mut c = k2();
    c.args(["eval", "--all-checkpoints", "--quiet", "--run"])
        .arg(run)
        .args(TASKS);
    c
}

fn summary(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_directory_of_checkpoints_is_evaluated_in_training_order_for_every_naming_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    let ckpts = ["ckpt_0001", "ckpt_0002", "ckpt_0003"];
    // (folder, names in training order): the names sort differently as strings.
    let schemes: [(&str, [&str; 3]); 5] = [
        (
            "hf-trainer",
            ["checkpoint-500", "checkpoint-1000", "checkpoint-10000"],
        ),
        ("megatron", ["iter_0000100", "iter_0001000", "iter_0020000"]),
        ("pythia", ["step512", "step1000", "step13000"]),
        (
            "olmo",
            [
                "step1000-tokens4B",
                "step10000-tokens42B",
                "stage2-step2000-tokens8B",
            ],
        ),
        ("llm360", ["ckpt_9", "ckpt_10", "ckpt_100"]),
    ];
    for (folder, names) in schemes {
        let dir = tmp.path().join(folder);
        // A folder that is not a checkpoint is ignored; names are shuffled on disk.
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        for (i, name) in names.iter().enumerate().rev() {
            copy_dir(&run.join(ckpts[i]), &dir.join(name));
        }
        let res = tmp.path().join("results");
        let out = ok(k2()
            .args(["eval", "--all-checkpoints", "--quiet", "--dir"])
            .arg(&dir)
            .arg("--output")
            .arg(&res)
            .args(TASKS));
        assert!(
            out.contains("6 evaluated, 0 already done, 0 duplicate checkpoints"),
            "{folder}: {out}"
        );
        let recs = summary(&res.join(folder).join("sweep-summary.jsonl"));
        let order: Vec<&str> = recs
            .iter()
            .map(|r| r["revision"].as_str().unwrap())
            .collect();
        assert_eq!(order, names, "{folder}");
        for (i, name) in names.iter().enumerate() {
            let r: serde_json::Value = serde_json::from_slice(
                &std::fs::read(res.join(folder).join(name).join("k2_facts.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(r["config"]["model_revision"], *name);
            // The same weights as the run's checkpoint, so the same scores.
            let from_run = tmp.path().join("from-run");
            if i == 0 && folder == "hf-trainer" {
                ok(k2()
                    .args(["eval", "--quiet", "--model"])
                    .arg(run.join(ckpts[0]))
                    .arg("--output")
                    .arg(&from_run)
                    .args(TASKS));
            }
            if i == 0 {
                let a: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(from_run.join("k2_facts.json")).unwrap())
                        .unwrap();
                assert_eq!(r["results"], a["results"], "{folder}");
                assert_eq!(r["config"]["model_sha"], a["config"]["model_sha"]);
            }
        }
        if folder == "olmo" {
            let r: serde_json::Value = serde_json::from_slice(
                &std::fs::read(res.join("olmo/step10000-tokens42B/k2_facts.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(r["k2"]["tokens"], 42_000_000_000u64);
            assert_eq!(r["k2"]["step"], 10000);
        }
        // A rerun finds every pair done.
        let again = ok(k2()
            .args(["eval", "--quiet", "--dir"])
            .arg(&dir)
            .arg("--output")
            .arg(&res)
            .args(TASKS));
        assert!(again.contains("0 evaluated, 6 already done"), "{again}");
    }
    // --watch follows a run in training; a directory cannot say what is to come.
    let err = fails(
        k2().args(["eval", "--quiet", "--watch", "--dir"])
            .arg(tmp.path().join("megatron"))
            .args(TASKS),
    );
    assert!(err.contains("--watch"), "{err}");
    // A directory without checkpoints is an error naming it.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = fails(
        k2().args(["eval", "--quiet", "--dir"])
            .arg(&empty)
            .args(TASKS),
    );
    assert!(
        err.contains("empty") && err.contains("no checkpoint directories"),
        "{err}"
    );
}

#[test]
fn shards_and_claiming_workers_write_exactly_what_one_process_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train_tiny(&run);
    ok(&mut eval_run(&run));
    let want = results_tree(&run.join("eval"));
    assert_eq!(want.len(), 6 * 2 * 2, "{:?}", want.keys());

    // Three static shards, one after another.
    reset(&run);
    let mut total = 0;
    for i in 0..3 {
        let out = ok(eval_run(&run).args(["--shard", &format!("{i}/3")]));
        let n: usize = out
            .lines()
            .find_map(|l| l.split(" evaluated,").next()?.trim().parse().ok())
            .unwrap();
        assert_eq!(n, 4, "shard {i} takes a third of the 12 pairs: {out}");
        total += n;
    }
    assert_eq!(total, 12);
    assert_same(&results_tree(&run.join("eval")), &want, "3 shards");
    assert!(run.join("eval/sweep-summary.shard-2-of-3.jsonl").exists());

    // Three claiming workers started together share the work: each pair is evaluated once.
    reset(&run);
    let workers: Vec<_> = (0..3)
        .map(|_| {
            eval_run(&run)
                .arg("--claim")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut evaluated = 0;
    for w in workers {
        let out = w.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}");
        evaluated += text
            .lines()
            .find_map(|l| l.split(" evaluated,").next()?.trim().parse::<usize>().ok())
            .unwrap();
    }
    assert_eq!(evaluated, 12, "every pair evaluated exactly once");
    assert_same(
        &results_tree(&run.join("eval")),
        &want,
        "3 claiming workers (no claim left)",
    );

    // A claim left by a process that died is stale: a new worker takes it over. A live claim of
    // another host is left alone, and --status shows it.
    reset(&run);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::create_dir_all(run.join("eval/ckpt_0001")).unwrap();
    std::fs::create_dir_all(run.join("eval/ckpt_0002")).unwrap();
    std::fs::write(
        run.join("eval/ckpt_0001/k2_facts.claim"),
        format!("{{\"host\":\"{host}\",\"pid\":4000000000,\"time\":{now}}}"),
    )
    .unwrap();
    std::fs::write(
        run.join("eval/ckpt_0002/k2_facts.claim"),
        format!("{{\"host\":\"elsewhere\",\"pid\":1,\"time\":{now}}}"),
    )
    .unwrap();
    let status = || {
        ok(k2()
            .args(["eval", "--status", "--run"])
            .arg(&run)
            .args(TASKS))
    };
    let st = status();
    assert!(st.contains("stale claim by"), "{st}");
    assert!(st.contains("claimed by elsewhere:1"), "{st}");
    assert!(
        st.contains("12 pairs: 0 done, 1 claimed, 1 stale claims, 0 failed, 10 pending"),
        "{st}"
    );
    let out = ok(eval_run(&run).arg("--claim"));
    assert!(
        out.contains("11 evaluated") && out.contains("1 claimed by other workers"),
        "{out}"
    );
    let st = status();
    assert!(
        st.contains("11 done, 1 claimed, 0 stale claims, 0 failed, 0 pending"),
        "{st}"
    );
    // Once the other host's claim is gone, a rerun finishes the sweep: the same files as one
    // process.
    std::fs::remove_file(run.join("eval/ckpt_0002/k2_facts.claim")).unwrap();
    ok(eval_run(&run).arg("--claim"));
    assert_same(
        &results_tree(&run.join("eval")),
        &want,
        "after a stale and a foreign claim",
    );

    // Bad shard specs are usage errors.
    for bad in ["3/3", "1", "a/2", "0/0"] {
        let err = fails(eval_run(&run).args(["--shard", bad]));
        assert!(err.contains("--shard"), "{bad}: {err}");
    }
}

#[test]
fn a_tokenizer_with_ids_beyond_the_models_vocabulary_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m");
    copy_dir(&fixtures().join("models/stories260K-hf"), &model);
    let p = model.join("tokenizer.json");
    let mut t: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    t["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": 600, "content": "<extra>", "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }));
    std::fs::write(&p, t.to_string()).unwrap();
    let err = fails_with(
        k2().args(["eval", "--quiet", "--model"])
            .arg(&model)
            .arg("--output")
            .arg(tmp.path().join("out"))
            .args(TASKS),
        1,
    );
    assert!(
        err.contains("tokenizer.json")
            && err.contains("token ids go up to")
            && err.contains("vocab_size is 512"),
        "{err}"
    );
}
