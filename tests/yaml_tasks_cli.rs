//! `k2 eval --include-path DIR --tasks <a YAML group>` over every checkpoint of a run, the group
//! rendered by `k2 report`, `--list-tasks`, and a bad YAML refused before anything is written.

mod common;

use std::path::Path;

use common::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(
        dir.join(name),
        text.replace("{dir}", &dir.display().to_string()),
    )
    .unwrap();
}

fn yamls(dir: &Path) {
    let rows: String = (0..12)
        .map(|i| {
            let good = [
                "the cat sits",
                "the dogs run",
                "a bird sings",
                "the men walk",
            ][i % 4];
            let bad = [
                "the cat sit",
                "the dogs runs",
                "a bird sing",
                "the men walks",
            ][i % 4];
            format!("{{\"sentence_good\": \"{good} {i}\", \"sentence_bad\": \"{bad} {i}\"}}\n")
        })
        .collect();
    std::fs::write(dir.join("pairs.jsonl"), rows).unwrap();
    write(
        dir,
        "_pairs_template",
        r#"dataset_path: json
output_type: multiple_choice
validation_split: train
doc_to_text: ""
doc_to_target: 0
doc_to_choice: "{{[sentence_good, sentence_bad]}}"
num_fewshot: 0
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"#,
    );
    write(dir, "pairs_a.yaml", "include: _pairs_template\ntask: pairs_a\ndataset_kwargs:\n  data_files:\n    train: {dir}/pairs.jsonl\n");
    write(dir, "pairs_b.yaml", "include: _pairs_template\ntask: pairs_b\ndoc_to_choice: \"{{[sentence_good.upper(), sentence_bad.upper()]}}\"\ndataset_kwargs:\n  data_files:\n    train: {dir}/pairs.jsonl\n");
    write(dir, "group.yaml", "group: pairs\ntask: [pairs_a, pairs_b]\naggregate_metric_list:\n  - metric: acc\n    weight_by_size: true\nmetadata:\n  version: 1.0\n");
    write(
        dir,
        "hooked.yaml",
        "include: pairs_a.yaml\ntask: hooked\nprocess_docs: !function utils.process_docs\n",
    );
}

#[test]
fn a_yaml_group_over_every_checkpoint_renders_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let tasks = tmp.path().join("tasks");
    std::fs::create_dir(&tasks).unwrap();
    yamls(&tasks);
    let run = tmp.path().join("run");
    train_tiny(&run);

    let listing = ok(k2()
        .args(["eval", "--list-tasks", "--verbose", "--include-path"])
        .arg(&tasks));
    assert!(listing.contains("k2 runs 2 of the 3 tasks"), "{listing}");
    assert!(
        listing.contains("a Python hook (!function)")
            && listing.contains("hooked: process_docs: !function utils.process_docs"),
        "{listing}"
    );

    // `k2 eval --all-checkpoints` of `task` over the run.
    let sweep = |task: &str| {
        let mut c = k2();
        c.args([
            "eval",
            "--all-checkpoints",
            "--quiet",
            "--tasks",
            task,
            "--include-path",
        ])
        .arg(&tasks)
        .arg("--run")
        .arg(&run);
        c
    };
    let out = ok(&mut sweep("pairs"));
    assert!(out.contains("pairs_a") && out.contains("pairs"), "{out}");
    let ckpts: Vec<_> = std::fs::read_dir(run.join("eval"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(ckpts.len() >= 2, "every checkpoint is scored");
    for c in &ckpts {
        let m =
            |t: &str| k2_eval::results::read_metrics(&c.path().join(format!("{t}.json"))).unwrap();
        let (a, b, g) = (m("pairs_a"), m("pairs_b"), m("pairs"));
        // Equal sizes: the size-weighted mean is the plain mean.
        assert!(
            (g["acc,none"] - (a["acc,none"] + b["acc,none"]) / 2.0).abs() < 1e-12,
            "{g:?}"
        );
        assert!(g.contains_key("acc_stderr,none"));
    }

    let report = tmp.path().join("reports");
    ok(k2()
        .args(["report", "--run"])
        .arg(&run)
        .arg("--out")
        .arg(&report)
        .args(["--name", "tiny"]));
    let readme = std::fs::read_to_string(report.join("tiny/README.md")).unwrap();
    assert!(
        readme.contains("pairs"),
        "the group is a column of the report"
    );

    // Resumed: nothing to do. A change to the file both tasks include re-scores both.
    let n = ckpts.len();
    let again = ok(&mut sweep("pairs"));
    assert!(
        again.contains(&format!("0 evaluated, {} already done", 2 * n)),
        "{again}"
    );
    let template = tasks.join("_pairs_template");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(
        &template,
        text.replace(
            "doc_to_text: \"\"",
            "doc_to_text: \"Which is grammatical?\"",
        ),
    )
    .unwrap();
    let changed = ok(&mut sweep("pairs"));
    assert!(
        changed.contains(&format!("{} evaluated, 0 already done", 2 * n)),
        "{changed}"
    );

    // A YAML that names a field lm-eval's tasks do not have: an error naming file and field,
    // and no results written.
    write(
        &tasks,
        "broken.yaml",
        "include: pairs_a.yaml\ntask: broken\nnum_fewshots: 3\n",
    );
    let before = results_tree(&run.join("eval"));
    let e = fails(&mut sweep("broken"));
    assert!(
        e.contains("broken.yaml") && e.contains("field `num_fewshots`"),
        "{e}"
    );
    assert_eq!(
        results_tree(&run.join("eval")),
        before,
        "nothing written or changed"
    );
}
