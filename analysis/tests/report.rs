//! End-to-end tests: a fake k2 run with real file formats, real Pythia results files, errors.

use std::fs;
use std::path::{Path, PathBuf};

use k2_analysis::inputs::{
    read_k2_run, read_lm_eval_dir, read_results_file, PYTHIA_TOKENS_PER_STEP,
};
use k2_analysis::tables::checkpoint_task_table;
use k2_analysis::{render_report, ReportOptions};

/// The repository's subset of Pythia's published results (`fixtures/pythia_evals`).
fn pythia_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pythia_evals/pythia-v1")
}

/// (ckpt, step, tokens, stage, sha) of the fake run.
const CKPTS: [(&str, u64, u64, u32, &str); 2] = [
    ("ckpt_0001", 20, 40960, 1, "aa11"),
    ("ckpt_0002", 40, 81920, 2, "bb22"),
];
/// (ckpt, task, acc, acc_norm)
const VALUES: [(&str, &str, f64, f64); 4] = [
    ("ckpt_0001", "k2_agreement", 0.51, 0.485),
    ("ckpt_0001", "k2_copy", 0.125, 0.1625),
    ("ckpt_0002", "k2_agreement", 0.645, 0.555),
    ("ckpt_0002", "k2_copy", 0.2, 0.2175),
];

/// Report options for the run in `run`, rendered under `out` as report `r`.
fn run_opts(run: &Path, out: &Path) -> ReportOptions {
    ReportOptions {
        run: Some(run.to_path_buf()),
        lm_eval_results: None,
        published_results: None,
        out: out.to_path_buf(),
        name: "r".into(),
        log_x: false,
    }
}

fn fake_run(dir: &Path) {
    let mut m = String::from(
        "format = 1\nrun = \"fake\"\nconfig_hash = \"6262d5c02508f5a064ff9df3af5f5c77920b68a76a504779dafa61f4dd0c2b97\"\n",
    );
    for (name, step, tokens, stage, sha) in CKPTS {
        let sha = sha.repeat(16);
        m.push_str(&format!(
            "\n[[checkpoint]]\nname = \"{name}\"\nstep = {step}\ntokens = {tokens}\nchunks = [0]\nstage = {stage}\nstatus = \"ok\"\nwall_time_s = 1.5\n\n[checkpoint.files]\n\"model.safetensors\" = \"{sha}\"\n"
        ));
    }
    fs::write(dir.join("checkpoints.toml"), m).unwrap();
    let mut metrics = String::new();
    for step in 1..=40u64 {
        let stage = u64::from(step > 30);
        metrics.push_str(&format!(
            "{{\"step\":{step},\"loss\":{},\"lr\":{},\"grad_norm\":1.5,\"param_norm\":39.7,\"update_norm\":0.1,\"tokens_seen\":{},\"tokens_per_s\":3841.3,\"chunk\":0,\"stage\":{stage}}}\n",
            7.0 - step as f64 * 0.1,
            1e-4 * step as f64,
            step * 2048
        ));
    }
    fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    for (ckpt, task, acc, acc_norm) in VALUES {
        let (_, step, tokens, _, _) = CKPTS.iter().find(|c| c.0 == ckpt).unwrap();
        let d = dir.join("eval").join(ckpt);
        fs::create_dir_all(&d).unwrap();
        let json = serde_json::json!({
            "config": {"model": "k2", "model_args": format!("pretrained={},revision={ckpt}", dir.display())},
            "k2": {"checkpoint": ckpt, "step": step, "tokens": tokens, "harness_version": "k2-eval 0.1.0"},
            "n-shot": {task: 0},
            "results": {task: {
                "acc,none": acc, "acc_stderr,none": 0.03, "acc_norm,none": acc_norm,
                "acc_norm_stderr,none": 0.035, "alias": task
            }},
            "versions": {task: 1.0}
        });
        fs::write(
            d.join(format!("{task}.json")),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
        fs::write(d.join(format!("{task}.samples.jsonl")), "{}\n").unwrap();
    }
}

fn cells(table: &str, first: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| l.split('|').nth(1).map(str::trim) == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{table}"));
    line.split('|')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn k2_run_tables_equal_inputs_and_figures_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    fs::create_dir_all(&run).unwrap();
    fake_run(&run);

    let data = read_k2_run(&run, None).unwrap();
    assert_eq!(data.run_name.as_deref(), Some("fake"));
    assert_eq!(data.checkpoints.len(), 2);
    assert_eq!(data.train.len(), 40);
    assert_eq!(data.points.len(), 8); // 4 files x (acc, acc_norm)
    let tasks = data.tasks();
    let table = checkpoint_task_table(&data.points, "fake", 0, &tasks);
    assert!(table.contains("k2_agreement (acc_norm)"), "{table}");
    for (ckpt, step, tokens, _, _) in CKPTS {
        let row = cells(&table, ckpt);
        assert_eq!(row[1], step.to_string());
        assert!(data
            .points
            .iter()
            .any(|p| p.checkpoint == ckpt && p.tokens == Some(tokens)));
        for (i, task) in tasks.iter().enumerate() {
            let (_, _, _, acc_norm) = VALUES.iter().find(|v| v.0 == ckpt && v.1 == task).unwrap();
            let shown: f64 = row[3 + i].parse().unwrap();
            assert!(
                (shown - acc_norm).abs() < 5e-5,
                "{ckpt} {task}: {shown} vs {acc_norm}"
            );
        }
    }

    let out = tmp.path().join("reports");
    let s = render_report(&ReportOptions {
        run: Some(run.clone()),
        lm_eval_results: None,
        published_results: None,
        out: out.clone(),
        name: "fake-report".into(),
        log_x: false,
    })
    .unwrap();
    let md = fs::read_to_string(&s.readme).unwrap();
    assert!(
        md.contains(&"bb22".repeat(16)),
        "sha256 of model.safetensors listed"
    );
    assert!(md.contains("![training dynamics](figures/training.png)"));
    assert!(md.contains("0.5550") && md.contains("0.2175"));
    for f in [
        "training.png",
        "training.svg",
        "capability_0shot.png",
        "capability_0shot.svg",
    ] {
        let p = out.join("fake-report/figures").join(f);
        assert!(
            fs::metadata(&p).map(|m| m.len() > 1000).unwrap_or(false),
            "{} written",
            p.display()
        );
        assert!(s.figures.contains(&p));
    }
    let png = fs::read(out.join("fake-report/figures/training.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}

#[test]
fn real_pythia_files_parse_to_known_values() {
    let zero = pythia_dir().join("pythia-160m/zero-shot/160m_step143000.json");
    let five = pythia_dir().join("pythia-160m/five-shot/160m-5shot_step143000.json");
    let pts = read_results_file(&zero).unwrap();
    let get = |task: &str, metric: &str| {
        pts.iter()
            .find(|p| p.task == task && p.metric == metric)
            .unwrap()
    };
    let lam = get("lambada_openai", "acc");
    assert_eq!(lam.value, 0.3283524160683097);
    assert_eq!(lam.stderr, Some(0.006542638265686499));
    assert_eq!(get("lambada_openai", "ppl").value, 38.064877017771195);
    assert_eq!(get("piqa", "acc").value, 0.6273122959738846);
    assert_eq!(lam.series, "pythia-160m");
    assert_eq!(lam.step, 143000);
    assert_eq!(lam.tokens, Some(143000 * PYTHIA_TOKENS_PER_STEP));
    assert_eq!(lam.shots, 0);
    let five_pts = read_results_file(&five).unwrap();
    assert!(five_pts.iter().all(|p| p.shots == 5 && p.step == 143000));

    // through a directory and the report's tables
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("evals/pythia-160m");
    fs::create_dir_all(&d).unwrap();
    fs::copy(&zero, d.join("160m_step143000.json")).unwrap();
    fs::copy(
        pythia_dir().join("pythia-160m/zero-shot/160m_step0.json"),
        d.join("160m_step0.json"),
    )
    .unwrap();
    let data = read_lm_eval_dir(&tmp.path().join("evals")).unwrap();
    assert_eq!(data.series(), vec!["pythia-160m".to_string()]);
    let s = render_report(&ReportOptions {
        run: None,
        lm_eval_results: Some(tmp.path().join("evals")),
        published_results: None,
        out: tmp.path().join("out"),
        name: "pythia".into(),
        log_x: true,
    })
    .unwrap();
    let md = fs::read_to_string(&s.readme).unwrap();
    // final-checkpoint row: lambada acc 0.3284, piqa acc_norm 0.6164
    let row = cells(&md, "pythia-160m");
    assert_eq!(row[1], "143000");
    assert!(
        row.contains(&"0.3284".to_string()) && row.contains(&"0.6164".to_string()),
        "{row:?}"
    );
    assert!(s.tasks.iter().any(|t| t == "mmlu (mean of 57)"));
    assert!(
        fs::metadata(tmp.path().join("out/pythia/figures/capability_0shot.png"))
            .unwrap()
            .len()
            > 1000
    );
}

#[test]
fn malformed_results_file_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("model/broken_step10.json");
    fs::create_dir_all(bad.parent().unwrap()).unwrap();
    fs::write(&bad, "{\"results\": {\"piqa\": ").unwrap();
    let e = format!("{:#}", read_lm_eval_dir(tmp.path()).unwrap_err());
    assert!(e.contains("broken_step10.json"), "{e}");
    fs::write(&bad, "{\"config\": {}}").unwrap();
    let e = format!("{:#}", read_lm_eval_dir(tmp.path()).unwrap_err());
    assert!(
        e.contains("broken_step10.json") && e.contains("results"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        render_report(&ReportOptions {
            run: Some(tmp.path().join("no-run")),
            lm_eval_results: None,
            published_results: None,
            out: tmp.path().join("o"),
            name: "x".into(),
            log_x: false
        })
        .unwrap_err()
    );
    assert!(e.contains("checkpoints.toml"), "{e}");
}

#[test]
fn lm_eval_v04_layout_without_k2_block() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("org__model-1b/step2000");
    fs::create_dir_all(&d).unwrap();
    let json = serde_json::json!({
        "results": {
            "hellaswag": {"alias": "hellaswag", "acc,none": 0.31, "acc_stderr,none": 0.004,
                          "acc_norm,none": 0.36, "acc_norm_stderr,none": 0.005},
            "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.02,
                      "exact_match_stderr,strict-match": 0.004, "exact_match,flexible-extract": 0.03,
                      "exact_match_stderr,flexible-extract": "N/A"}
        },
        "n-shot": {"hellaswag": 10, "gsm8k": 5},
        "config": {"model": "hf", "model_args": "pretrained=org/model-1b,revision=step2000,dtype=bfloat16"}
    });
    let f = d.join("results_2024-01-01T00-00-00.json");
    fs::write(&f, serde_json::to_string(&json).unwrap()).unwrap();
    let pts = read_results_file(&f).unwrap();
    let hs = pts
        .iter()
        .find(|p| p.task == "hellaswag" && p.metric == "acc_norm")
        .unwrap();
    assert_eq!(
        (hs.value, hs.stderr, hs.step, hs.shots),
        (0.36, Some(0.005), 2000, 10)
    );
    assert_eq!(hs.series, "model-1b");
    assert_eq!(hs.tokens, None);
    let em = pts
        .iter()
        .find(|p| p.metric == "exact_match,flexible-extract")
        .unwrap();
    assert_eq!((em.value, em.stderr, em.shots), (0.03, None, 5));
    assert_eq!(
        k2_analysis::inputs::headline_metric(&pts, "gsm8k").as_deref(),
        Some("exact_match,flexible-extract")
    );
    // the report renders with step on the x axis
    let s = render_report(&ReportOptions {
        run: None,
        lm_eval_results: Some(tmp.path().to_path_buf()),
        published_results: None,
        out: tmp.path().join("out"),
        name: "v04".into(),
        log_x: false,
    })
    .unwrap();
    assert_eq!(s.figures.len(), 8); // 5-shot and 10-shot capability figures and heat maps, PNG + SVG
    let md = fs::read_to_string(&s.readme).unwrap();
    assert!(md.contains("0.3600"), "{md}");
}

#[test]
fn heatmap_matches_inputs_and_is_written() {
    let dir = tempfile::tempdir().unwrap();
    fake_run(dir.path());
    let out = tempfile::tempdir().unwrap();
    let s = render_report(&run_opts(dir.path(), out.path())).unwrap();
    assert!(s.dir.join("figures/heatmap_0shot.png").exists());
    assert!(s.dir.join("figures/heatmap_0shot.svg").exists());
    // the fake run's two checkpoints are in stages 1 and 2: the boundary is drawn and named
    let md = fs::read_to_string(&s.readme).unwrap();
    assert!(
        md.contains("Black horizontal line: stage boundary."),
        "{md}"
    );
    let data = k2_analysis::report::load_inputs(&run_opts(dir.path(), out.path())).unwrap();
    let tasks = data.tasks();
    let (hm, left_out) =
        k2_analysis::report::heatmap_for(&data.points, "fake", &tasks, "t".into()).unwrap();
    assert!(left_out.is_empty());
    assert_eq!(hm.rows.len(), CKPTS.len());
    for (ckpt, task, _acc, acc_norm) in VALUES {
        let i = CKPTS.iter().position(|c| c.0 == ckpt).unwrap();
        let j = tasks.iter().position(|t| t == task).unwrap();
        assert!(hm.rows[i].starts_with(ckpt));
        assert_eq!(hm.cols[j], format!("{task} (acc_norm)"));
        assert_eq!(hm.values[i][j], Some(acc_norm));
    }
    assert!(hm.vmin <= 0.1625 && hm.vmax >= 0.555);
}

#[test]
fn heatmap_series_picks_largest_model() {
    let s: Vec<String> = [
        "pythia-70m",
        "pythia-12b",
        "pythia-12b-deduped",
        "pythia-1.4b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        k2_analysis::report::heatmap_series(&s, None).as_deref(),
        Some("pythia-12b")
    );
    assert_eq!(
        k2_analysis::report::heatmap_series(&s, Some("pythia-70m")).as_deref(),
        Some("pythia-70m")
    );
}

#[test]
fn data_mix_follows_chunk_order_and_marks_stage() {
    let dir = tempfile::tempdir().unwrap();
    fake_run(dir.path());
    fs::create_dir_all(dir.path().join("data")).unwrap();
    let index = serde_json::json!({"format": 1, "chunks": [
        {"chunk": 0, "stage": 0, "seq_len": 128, "samples": 4, "tokens_by_source": {"stories": 300, "code": 100}, "sha256": "x"},
        {"chunk": 1, "stage": 0, "seq_len": 128, "samples": 4, "tokens_by_source": {"stories": 200, "code": 200}, "sha256": "y"},
        {"chunk": 2, "stage": 1, "seq_len": 256, "samples": 4, "tokens_by_source": {"math_long": 800}, "sha256": "z"}
    ]});
    fs::write(dir.path().join("data/index.json"), index.to_string()).unwrap();
    fs::write(
        dir.path().join("chunk_order.toml"),
        "format = 1\norder = [1, 0, 2]\ndeferrals = []\n",
    )
    .unwrap();
    let chunks = k2_analysis::inputs::read_data_mix(dir.path()).unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.chunk).collect::<Vec<_>>(),
        [1, 0, 2]
    );
    let srcs = k2_analysis::datamix::sources(&chunks);
    assert_eq!(srcs, ["math_long", "stories", "code"]);
    let cum = k2_analysis::datamix::cumulative(&chunks, &srcs);
    assert_eq!(cum[1], (400, vec![0, 200, 200]));
    assert_eq!(cum[3], (1600, vec![800, 500, 300]));
    assert_eq!(k2_analysis::datamix::stage_starts(&chunks), [(800, 2)]);
    let table = k2_analysis::report::data_mix_table(&chunks);
    assert!(table.contains("| 1     | 2      | 800    | –"), "{table}");
    assert!(table.contains("500 (62.5 %)"), "{table}");
    let out = tempfile::tempdir().unwrap();
    let s = render_report(&run_opts(dir.path(), out.path())).unwrap();
    assert!(s.dir.join("figures/data.png").exists());
    let md = fs::read_to_string(&s.readme).unwrap();
    assert!(md.contains("## Data"));
    // a chunk missing from the index is an error naming both files
    fs::write(
        dir.path().join("chunk_order.toml"),
        "format = 1\norder = [0, 1, 3, 2]\n",
    )
    .unwrap();
    let e = k2_analysis::inputs::read_data_mix(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("chunk 3") && e.contains("index.json") && e.contains("chunk_order.toml"),
        "{e}"
    );
    // a chunk order that is not k2's schema is an error naming the file and field
    fs::write(dir.path().join("chunk_order.toml"), "order = [0, 7]\n").unwrap();
    let e = k2_analysis::inputs::read_data_mix(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("chunk_order.toml") && e.contains("format"),
        "{e}"
    );
}

#[test]
fn reference_table_reads_final_values_and_says_no_shared_tasks() {
    use k2_analysis::inputs::Point;
    use k2_analysis::reference::{reference_section, run_rows, References};
    let refs = References::shipped();
    let p = |task: &str, metric: &str, step: u64, value: f64| Point {
        series: "m-1b".into(),
        shots: 5,
        task: task.into(),
        metric: metric.into(),
        step,
        tokens: None,
        value,
        stderr: None,
        checkpoint: format!("step{step}"),
        source: PathBuf::from("x.json"),
    };
    let pts = vec![
        p("arc_challenge", "acc", 10, 0.20),
        p("arc_challenge", "acc_norm", 10, 0.21),
        p("arc_challenge", "acc", 20, 0.30),
        p("arc_challenge", "acc_norm", 20, 0.3125),
        p("mmlu (mean of 57)", "acc", 20, 0.26),
        p("mmlu (mean of 57)", "acc_norm", 20, 0.27),
        p("piqa", "acc", 20, 0.6),
    ];
    let rows = run_rows(&pts, &refs);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].step, 20);
    assert_eq!(rows[0].values.len(), 2);
    let (v, m) = &rows[0].values["arc_challenge"];
    assert!((v - 31.25).abs() < 1e-9 && m == "acc_norm");
    let (v, m) = &rows[0].values["mmlu"];
    assert!((v - 26.0).abs() < 1e-9 && m == "acc");
    let s = reference_section(&pts, &refs);
    assert_eq!(
        cells(&s, "m-1b (step 20, 5-shot)"),
        [
            "m-1b (step 20, 5-shot)",
            "this report",
            "26.0 (acc)",
            "–",
            "31.2 (acc_norm)",
            "–",
            "–",
            "–"
        ]
    );
    assert!(!s.contains("no shared tasks"));
    // only tasks the references lack: reference rows only
    let s = reference_section(&pts[6..], &refs);
    assert!(s.contains("no shared tasks"), "{s}");
    assert_eq!(
        cells(&s, "K2 (final) (reference)")[2..],
        ["62.6", "83.2", "61.9", "79.5", "40.4", "58.3"]
    );
    assert!(!s.contains("this report |"), "{s}");
    // the fake k2 run (k2_* tasks only) says so in its README
    let dir = tempfile::tempdir().unwrap();
    fake_run(dir.path());
    let out = tempfile::tempdir().unwrap();
    let r = render_report(&run_opts(dir.path(), out.path())).unwrap();
    let md = fs::read_to_string(&r.readme).unwrap();
    assert!(md.contains("## Final checkpoint vs reference models"));
    assert!(md.contains("no shared tasks"));
    assert_eq!(cells(&md, "Llama 2-70B (reference)")[2], "65.4");
}

#[test]
fn html_page_is_self_contained_with_the_readme_content() {
    let dir = tempfile::tempdir().unwrap();
    fake_run(dir.path());
    let out = tempfile::tempdir().unwrap();
    let s = render_report(&run_opts(dir.path(), out.path())).unwrap();
    let md = fs::read_to_string(&s.readme).unwrap();
    let html = fs::read_to_string(s.dir.join("index.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // every figure of the README is inline as SVG, nothing is loaded from outside
    let images = md.lines().filter(|l| l.starts_with("![")).count();
    assert!(images >= 3);
    assert_eq!(html.matches("<svg").count(), images);
    assert!(!html.contains("<img") && !html.contains("src=") && !html.contains("href=\"figures"));
    assert!(!html.contains("<link"));
    // every table cell of the README is a cell of the page
    for l in md
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|-"))
    {
        for c in l.split('|').map(str::trim).filter(|c| !c.is_empty()) {
            let c = c.trim_matches('`');
            assert!(
                html.contains(&format!("<td>{c}</td>"))
                    || html.contains(&format!("<th>{c}</th>"))
                    || html.contains(&format!("<td><code>{c}</code></td>")),
                "cell {c} missing"
            );
        }
    }
    for (ckpt, _, _, acc_norm) in VALUES {
        assert!(html.contains(ckpt));
        assert!(html.contains(&format!("<td>{acc_norm:.4}</td>")));
    }
}

#[test]
fn spike_and_rollback_marked_from_hand_edited_manifest() {
    let dir = tempfile::tempdir().unwrap();
    fake_run(dir.path());
    let p = dir.path().join("checkpoints.toml");
    let m = fs::read_to_string(&p).unwrap();
    // hand edit: first checkpoint rolled back, second a spike
    let m = m
        .replacen("status = \"ok\"", "status = \"rolled_back\"", 1)
        .replacen("status = \"ok\"", "status = \"spike\"", 1);
    fs::write(&p, m).unwrap();
    let opts = ReportOptions {
        run: Some(dir.path().to_path_buf()),
        lm_eval_results: None,
        published_results: None,
        out: dir.path().join("out"),
        name: "r".into(),
        log_x: false,
    };
    let data = k2_analysis::report::load_inputs(&opts).unwrap();
    let ev = k2_analysis::report::train_events(&data.checkpoints, &data.spikes);
    assert_eq!(
        ev.iter()
            .map(|e| (e.step, e.name.as_str(), e.status.as_str()))
            .collect::<Vec<_>>(),
        [(20, "ckpt_0001", "rolled_back"), (40, "ckpt_0002", "spike")]
    );
    let s = render_report(&opts).unwrap();
    let md = fs::read_to_string(&s.readme).unwrap();
    assert!(
        md.contains("`ckpt_0001` (step 20, rolled_back), `ckpt_0002` (step 40, spike)"),
        "{md}"
    );
    let svg = fs::read_to_string(s.dir.join("figures/training.svg")).unwrap();
    assert!(svg.contains("spike: ckpt_0002"));
    assert!(svg.contains("rolled back: ckpt_0001"));
    assert!(svg.contains("#D62728") && svg.contains("#9467BD"));
    // without events the README says so and the figure has no markers
    fake_run(dir.path());
    let s = render_report(&opts).unwrap();
    let md = fs::read_to_string(&s.readme).unwrap();
    assert!(md.contains("No checkpoint is marked as a loss spike or rolled back"));
    let svg = fs::read_to_string(s.dir.join("figures/training.svg")).unwrap();
    assert!(!svg.contains("spike:"));
}
