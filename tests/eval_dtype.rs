//! `k2 eval --dtype`: a bf16 release is evaluated in bf16 by default (lm-eval's `dtype=auto`),
//! `--dtype f32` upcasts, and results of one dtype are never reused for another.

mod common;

use common::*;

fn results(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("arc_easy.json")).unwrap()).unwrap()
}

#[test]
fn eval_runs_a_checkpoint_in_its_torch_dtype_unless_told_otherwise() {
    let model = fixtures().join("models/tiny-random-llama-gqa-sharded");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("res");
    let eval = |extra: &[&str]| {
        ok(k2()
            .args([
                "eval", "--quiet", "--device", "cpu", "--tasks", "arc_easy", "--limit", "6",
            ])
            .args(extra)
            .arg("--model")
            .arg(&model)
            .arg("--data")
            .arg(datasets())
            .arg("--output")
            .arg(&out))
    };
    eval(&[]);
    let auto = results(&out);
    assert_eq!(auto["config"]["model_dtype"], "bfloat16", "{auto}");
    assert_eq!(auto["config"]["device"], "cpu");
    assert!(auto["k2"].get("dtype").is_none(), "auto is the default key");

    eval(&["--dtype", "f32"]);
    let f32r = results(&out);
    assert_eq!(f32r["config"]["model_dtype"], "float32");
    assert_eq!(f32r["k2"]["dtype"], "f32");
    let modified = std::fs::metadata(out.join("arc_easy.json"))
        .unwrap()
        .modified()
        .unwrap();

    // The same dtype again: nothing is recomputed.
    eval(&["--dtype", "f32"]);
    let again = std::fs::metadata(out.join("arc_easy.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, again);

    // Scores exist in both and the log-likelihoods differ only by rounding.
    let samples = out.join("arc_easy.samples.jsonl");
    let f32_ll = sample_lls(&samples);
    eval(&["--dtype", "bf16"]);
    let bf16_ll = sample_lls(&samples);
    assert_eq!(f32_ll.len(), bf16_ll.len());
    let worst = f32_ll
        .iter()
        .zip(&bf16_ll)
        .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
        .fold(0f64, f64::max);
    eprintln!("arc_easy request log-likelihoods, bf16 vs f32: max relative diff {worst:.4}");
    assert!(worst < 0.05, "{worst}");
}
