//! lm-eval's context/continuation split on a real tokenizer (stories260K's LLaMA SentencePiece-BPE,
//! which prepends BOS as lm-eval's default tokenization does).

mod common;

use k2_eval::encode::{encode, encode_pair};

fn tok() -> k2_model::CheckpointTokenizer {
    k2_model::CheckpointTokenizer::load(&common::stories260k_hf()).unwrap()
}

#[test]
fn continuation_tokens_follow_the_context_tokens_of_the_whole_string() {
    let t = tok();
    let p = encode_pair(&t, "Question: Who is Lily?\nAnswer:", " a girl").unwrap();
    assert_eq!(
        p.context,
        encode(&t, "Question: Who is Lily?\nAnswer:").unwrap()
    );
    assert_eq!(p.context[0], 1, "BOS first");
    let whole = encode(&t, "Question: Who is Lily?\nAnswer: a girl").unwrap();
    assert_eq!(whole[p.context.len()..], p.continuation[..]);
}

#[test]
fn trailing_whitespace_moves_to_the_continuation_like_python_rstrip() {
    let t = tok();
    for (ctx, trimmed, moved) in [
        ("Answer: ", "Answer:", " "),
        ("Answer:\n", "Answer:", "\n"),
        ("Answer:\t \n", "Answer:", "\t \n"),
    ] {
        let p = encode_pair(&t, ctx, "yes").unwrap();
        assert_eq!(p.context, encode(&t, trimmed).unwrap(), "{ctx:?}");
        let whole = encode(&t, &format!("{trimmed}{moved}yes")).unwrap();
        assert_eq!(p.continuation, whole[p.context.len()..].to_vec(), "{ctx:?}");
    }
    // An empty context scores the continuation after the BOS prefix token.
    // lm-eval 0.4.13 encodes that continuation without special tokens (no second BOS).
    let p = encode_pair(&t, "", "Once upon a time").unwrap();
    assert_eq!(p.context, vec![1]);
    let plain = t
        .encode("Once upon a time", false)
        .unwrap()
        .get_ids()
        .to_vec();
    assert_eq!(p.continuation, plain);
    assert_ne!(p.continuation[0], 1);
    // A whitespace-only context goes through `_encode_pair`: "" encodes to BOS, and the
    // continuation is the whitespace and text after it.
    let p = encode_pair(&t, "  ", "Once").unwrap();
    assert_eq!(p.context, vec![1]);
    assert_eq!(p.continuation, encode(&t, "  Once").unwrap()[1..].to_vec());
}

#[test]
fn an_empty_continuation_is_refused_as_lm_eval_refuses_it() {
    let t = tok();
    for (ctx, cont) in [("Answer:", ""), ("", "")] {
        let e = encode_pair(&t, ctx, cont).unwrap_err().to_string();
        assert!(e.contains("empty continuation"), "{ctx:?}: {e}");
    }
    // Trailing whitespace of the context becomes the continuation: not empty.
    assert!(!encode_pair(&t, "Answer: ", "")
        .unwrap()
        .continuation
        .is_empty());
}
