//! The decoder of every family against transformers: per-position log-probs of tiny random models
//! (`tests/fixtures/families/<variant>/`, made by `tests/fixtures/gen_family_fixtures.py` with
//! Pythia's and OLMo's real option values) at batch 1 and in one right-padded batch of 8, and the
//! last position's logits, in f32 within 1e-4. The LLaMA path is checked on the real checkpoints of
//! `fixtures/models` with the LLaMA fixtures.

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use k2_model::{load_decoder, Decoder};

const VARIANTS: &[&str] = &[
    "pythia-parallel",
    "pythia-sequential",
    "olmo-tied",
    "olmo-untied",
    "olmo2",
];

const TOLERANCE: f64 = 1e-4;

#[derive(serde::Deserialize)]
struct Reference {
    model_type: String,
    sequences: Vec<Sequence>,
    batch8_next_token_logprobs: Vec<Vec<f64>>,
}

#[derive(serde::Deserialize)]
struct Sequence {
    ids: Vec<u32>,
    next_token_logprobs: Vec<f64>,
    last_logits: Vec<f64>,
}

fn families() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/families")
}

fn reference(variant: &str) -> Reference {
    let p = families().join(format!("{variant}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn logprobs_alone(model: &Decoder, ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let t = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logits = model.forward(&t).unwrap();
    let lp = common::lp_rows(&logits, &t).concat();
    let last = logits.get(0).unwrap().get(ids.len() - 1).unwrap();
    (lp, last.to_vec1().unwrap())
}

/// Log-probs of every row of one right-padded batch, cut to each row's real positions.
fn logprobs_batched(model: &Decoder, rows: &[&[u32]]) -> Vec<Vec<f32>> {
    let t = rows.iter().map(|r| r.len()).max().unwrap();
    let mut flat = Vec::new();
    for r in rows {
        flat.extend_from_slice(r);
        flat.extend(std::iter::repeat_n(0u32, t - r.len()));
    }
    let ids = Tensor::from_vec(flat, (rows.len(), t), &Device::Cpu).unwrap();
    let (h, _) = model.forward_hidden_cached(&ids, None).unwrap();
    let logits = model.lm_head(&h).unwrap();
    let lp: Vec<Vec<f32>> = common::lp_rows(&logits, &ids);
    lp.into_iter()
        .zip(rows)
        .map(|(row, r)| row[..r.len() - 1].to_vec())
        .collect()
}

fn worst(ours: &[f32], theirs: &[f64], what: &str) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    let mut w = 0f64;
    for (j, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let d = (*a as f64 - b).abs();
        assert!(
            d < TOLERANCE,
            "{what} position {j}: {a} vs transformers {b}"
        );
        w = w.max(d);
    }
    w
}

#[test]
fn every_family_matches_transformers_at_batch_1_and_8() {
    println!("family            model_type  batch-1 max|Δ|  batch-8 max|Δ|  last-logits max|Δ|");
    for v in VARIANTS {
        let r = reference(v);
        let model = load_decoder(&families().join(v), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(model.arch().family.model_type(), r.model_type, "{v}");
        let (mut w1, mut w8, mut wl) = (0f64, 0f64, 0f64);
        for (i, s) in r.sequences.iter().enumerate() {
            let (lp, last) = logprobs_alone(&model, &s.ids);
            w1 = w1.max(worst(&lp, &s.next_token_logprobs, &format!("{v} seq {i}")));
            wl = wl.max(worst(&last, &s.last_logits, &format!("{v} seq {i} logits")));
        }
        let rows: Vec<&[u32]> = r.sequences.iter().map(|s| s.ids.as_slice()).collect();
        assert_eq!(rows.len(), 8, "{v}: the batch reference has 8 rows");
        for (i, (ours, theirs)) in logprobs_batched(&model, &rows)
            .iter()
            .zip(&r.batch8_next_token_logprobs)
            .enumerate()
        {
            w8 = w8.max(worst(ours, theirs, &format!("{v} batch row {i}")));
        }
        println!(
            "{v:<17} {:<11} {w1:<15.2e} {w8:<15.2e} {wl:.2e}",
            r.model_type
        );
    }
}

/// The LLaMA decoder against transformers on the real checkpoints.
#[test]
fn llama_decoder_matches_transformers_on_real_checkpoints() {
    for fx in ["stories260K-hf.json", "tiny-random-llama-gqa-sharded.json"] {
        let f = common::fixture(fx);
        let model =
            load_decoder(&common::fixtures().join(&f.model), DType::F32, &Device::Cpu).unwrap();
        let mut w = 0f64;
        for (i, s) in f.sequences.iter().enumerate() {
            let (lp, last) = logprobs_alone(&model, &s.ids);
            w = w.max(worst(&lp, &s.next_token_logprobs, &format!("{fx} seq {i}")));
            worst(&last, &s.last_logits, &format!("{fx} seq {i} logits"));
        }
        println!("{fx}: max |Δ| {w:.2e}");
    }
}

/// A row of a padded batch and the row alone differ only by float32 noise (the matrix products
/// see different row counts); the same bound the eval engine's batch-size test uses.
#[test]
fn rows_of_a_padded_batch_equal_rows_alone() {
    for v in VARIANTS {
        let r = reference(v);
        let model = load_decoder(&families().join(v), DType::F32, &Device::Cpu).unwrap();
        let rows: Vec<&[u32]> = r.sequences.iter().map(|s| s.ids.as_slice()).collect();
        let batched = logprobs_batched(&model, &rows);
        for (i, row) in rows.iter().enumerate() {
            let alone = logprobs_batched(&model, &[row]);
            for (a, b) in alone[0].iter().zip(&batched[i]) {
                assert!((a - b).abs() < 1e-5, "{v} row {i}: {a} vs {b}");
            }
        }
    }
}

/// A weight the config does not account for, or one missing, names the tensor and the directory.
#[test]
fn weights_that_disagree_with_the_config_are_refused_by_name() {
    let src = families().join("pythia-parallel");
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let mut t = k2_model::load_tensors(&src, DType::F32, &Device::Cpu).unwrap();
    t.insert(
        "gpt_neox.layers.0.attention.extra.weight".into(),
        Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
    );
    // A buffer older transformers saved is not a weight and is skipped.
    t.insert(
        "gpt_neox.layers.0.attention.masked_bias".into(),
        Tensor::new(-1e9f32, &Device::Cpu).unwrap(),
    );
    let write = |t: &std::collections::BTreeMap<String, Tensor>| {
        std::fs::write(
            dir.path().join("model.safetensors"),
            k2_model::safetensors_bytes(t).unwrap(),
        )
        .unwrap()
    };
    write(&t);
    let e = load_decoder(dir.path(), DType::F32, &Device::Cpu)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("attention.extra.weight") && e.contains("gpt_neox"),
        "{e}"
    );
    t.remove("gpt_neox.layers.0.attention.extra.weight");
    t.remove("gpt_neox.layers.1.mlp.dense_4h_to_h.bias");
    write(&t);
    let e = load_decoder(dir.path(), DType::F32, &Device::Cpu)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("gpt_neox.layers.1.mlp.dense_4h_to_h.bias"),
        "{e}"
    );
}
