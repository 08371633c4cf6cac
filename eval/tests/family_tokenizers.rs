//! Request token ids for each family's tokenizer equal lm-evaluation-harness's own (`HFLM`'s
//! `_encode_pair`, `tok_encode` and `prefix_token_id`, recorded by
//! `tests/fixtures/gen_family_fixtures.py`), and greedy continuations equal transformers'
//! `generate`.

use std::path::PathBuf;

use candle_core::{DType, Device};
use k2_eval::encode::{encode, encode_pair, prefix_token};
use k2_eval::greedy::greedy_continuations;
use k2_model::CheckpointTokenizer;

const VARIANTS: &[&str] = &[
    "pythia-parallel",
    "pythia-sequential",
    "olmo-tied",
    "olmo-untied",
    "olmo2",
];

#[derive(serde::Deserialize)]
struct Reference {
    sequences: Vec<Sequence>,
    requests: Vec<Request>,
    prefix_token_id: u32,
    rolling: Vec<Rolling>,
}

#[derive(serde::Deserialize)]
struct Sequence {
    ids: Vec<u32>,
    greedy: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Request {
    context: String,
    continuation: String,
    context_ids: Vec<u32>,
    continuation_ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Rolling {
    text: String,
    token_ids: Vec<u32>,
}

fn families() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/families")
}

fn reference(variant: &str) -> Reference {
    let p = families().join(format!("{variant}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

#[test]
fn request_token_ids_equal_lm_evals_for_every_family() {
    for v in VARIANTS {
        let r = reference(v);
        let tok = CheckpointTokenizer::load(&families().join(v)).unwrap();
        assert_eq!(
            prefix_token(&tok),
            Some(r.prefix_token_id),
            "{v}: prefix token"
        );
        for q in &r.requests {
            let p = encode_pair(&tok, &q.context, &q.continuation).unwrap();
            assert_eq!(
                (p.context, p.continuation),
                (q.context_ids.clone(), q.continuation_ids.clone()),
                "{v}: {:?} + {:?}",
                q.context,
                q.continuation
            );
        }
        for q in &r.rolling {
            assert_eq!(
                encode(&tok, &q.text).unwrap(),
                q.token_ids,
                "{v}: {:?}",
                q.text
            );
        }
        for s in &r.sequences {
            assert!(!s.ids.is_empty());
        }
        println!(
            "{v}: {} requests and {} documents tokenized as lm-eval does",
            r.requests.len(),
            r.rolling.len()
        );
    }
}

#[test]
fn greedy_continuations_equal_transformers_generate() {
    for v in VARIANTS {
        let r = reference(v);
        let model = k2_model::load_decoder(&families().join(v), DType::F32, &Device::Cpu).unwrap();
        let prompts: Vec<Vec<u32>> = r.sequences.iter().map(|s| s.ids.clone()).collect();
        let n = r.sequences[0].greedy.len();
        for batch in [1, 8] {
            let ours = greedy_continuations(&model, &prompts, n, batch, &mut |_| {}).unwrap();
            for (i, s) in r.sequences.iter().enumerate() {
                assert_eq!(ours[i], s.greedy, "{v} prompt {i}, batch {batch}");
            }
        }
    }
}
