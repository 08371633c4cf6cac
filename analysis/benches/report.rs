//! Benchmark (plain `std::time`, no criterion): renders the full report of a synthetic k2 run
//! with 380 checkpoints x 20 tasks (manifest, metrics.jsonl, data index, one eval file per
//! checkpoint and task; some checkpoints marked spike / rolled back) and prints the seconds.
//! Budget from issue 4: under 10 s. Run: `cargo bench -p k2-analysis --bench report`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

const CHECKPOINTS: u64 = 380;
const TASKS: usize = 20;
const STEPS_PER_CKPT: u64 = 10;
const TOKENS_PER_STEP: u64 = 4096;

fn synthetic_run(dir: &Path) {
    let mut m = String::from("format = 1\nrun = \"bench\"\nconfig_hash = \"00\"\n");
    let stage_of = |i: u64| if i < 340 { 1 } else { 2 };
    for i in 0..CHECKPOINTS {
        let step = (i + 1) * STEPS_PER_CKPT;
        let status = match i {
            150 => "spike",
            151 => "rolled_back",
            _ => "ok",
        };
        let _ = write!(
            m,
            "\n[[checkpoint]]\nname = \"ckpt_{:04}\"\nstep = {step}\ntokens = {}\nchunks = [{i}]\nstage = {}\nstatus = \"{status}\"\nwall_time_s = 1.0\n\n[checkpoint.files]\n\"model.safetensors\" = \"{i:064x}\"\n",
            i + 1,
            step * TOKENS_PER_STEP,
            stage_of(i),
        );
    }
    fs::write(dir.join("checkpoints.toml"), m).unwrap();
    let mut metrics = String::new();
    for step in 1..=CHECKPOINTS * STEPS_PER_CKPT {
        let x = step as f64;
        let _ = writeln!(
            metrics,
            "{{\"step\":{step},\"loss\":{},\"lr\":{},\"grad_norm\":{},\"tokens_seen\":{},\"stage\":{}}}",
            2.0 + 5.0 / (1.0 + x / 50.0) + 0.05 * (x * 0.7).sin(),
            3e-4 * (1.0 - x / 4000.0).max(0.05),
            0.5 + 0.3 * (x * 0.13).cos().abs(),
            step * TOKENS_PER_STEP,
            stage_of((step - 1) / STEPS_PER_CKPT) - 1
        );
    }
    fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    let chunks: Vec<serde_json::Value> = (0..CHECKPOINTS)
        .map(|i| {
            let n = STEPS_PER_CKPT * TOKENS_PER_STEP;
            let tbs = if stage_of(i) == 1 {
                serde_json::json!({"stories": n / 2, "code": n / 4, "facts": n / 4})
            } else {
                serde_json::json!({"stories": n / 4, "math_long": n / 2, "code_long": n / 4})
            };
            serde_json::json!({"chunk": i, "stage": stage_of(i) - 1, "seq_len": 128,
                "samples": 320, "tokens_by_source": tbs, "sha256": "00"})
        })
        .collect();
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(
        dir.join("data/index.json"),
        serde_json::json!({"format": 1, "chunks": chunks}).to_string(),
    )
    .unwrap();
    let order: Vec<String> = (0..CHECKPOINTS).map(|i| i.to_string()).collect();
    fs::write(
        dir.join("chunk_order.toml"),
        format!("format = 1\norder = [{}]\n", order.join(", ")),
    )
    .unwrap();
    for i in 0..CHECKPOINTS {
        let ckpt = format!("ckpt_{:04}", i + 1);
        let step = (i + 1) * STEPS_PER_CKPT;
        let d = dir.join("eval").join(&ckpt);
        fs::create_dir_all(&d).unwrap();
        for t in 0..TASKS {
            let task = format!("k2_task{t:02}");
            let acc = 0.25 + 0.5 * (1.0 - (-(i as f64) / (50.0 + 10.0 * t as f64)).exp());
            let json = serde_json::json!({
                "config": {"model": "k2", "model_args": format!("pretrained=x,revision={ckpt}")},
                "k2": {"checkpoint": ckpt, "step": step, "tokens": step * TOKENS_PER_STEP},
                "n-shot": {&task: 0},
                "results": {&task: {"acc,none": acc, "acc_stderr,none": 0.02,
                    "acc_norm,none": acc * 0.98, "acc_norm_stderr,none": 0.02, "alias": &task}},
                "versions": {&task: 1.0}
            });
            fs::write(d.join(format!("{task}.json")), json.to_string()).unwrap();
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special: both run once.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    fs::create_dir_all(&run).unwrap();
    let t = Instant::now();
    synthetic_run(&run);
    let gen = t.elapsed().as_secs_f64();
    let opts = k2_analysis::ReportOptions {
        run: Some(run),
        lm_eval_results: None,
        published_results: None,
        // K2_BENCH_OUT=<dir> keeps the rendered report for a look
        out: std::env::var_os("K2_BENCH_OUT")
            .map(Into::into)
            .unwrap_or_else(|| tmp.path().join("reports")),
        name: "bench".into(),
        log_x: false,
    };
    let t = Instant::now();
    let s = k2_analysis::render_report(&opts).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(s.tasks.len(), TASKS);
    println!(
        "synthetic inputs: {gen:.2} s; render_report ({CHECKPOINTS} checkpoints x {TASKS} tasks, {} values, {} figure files): {secs:.2} s (budget 10 s: {})",
        s.points,
        s.figures.len(),
        if secs < 10.0 { "ok" } else { "OVER" }
    );
}
