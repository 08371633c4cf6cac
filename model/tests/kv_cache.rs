//! The cached forward gives the same logits as the full forward: a prefix run once, then
//! continuations from its cache (batched, right-padded), and token-by-token extension.

mod common;

use candle_core::{DType, Device, Tensor};
use k2_model::load_decoder;

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn cached_prefix_then_continuation_equals_full_forward() {
    let dir = common::fixtures().join("models/tiny-random-llama-gqa-sharded");
    let llama = common::load_training(&dir, DType::F32);
    let model = load_decoder(&dir, DType::F32, &Device::Cpu).unwrap();
    let dev = Device::Cpu;
    let full: Vec<u32> = (0..30u32).map(|i| (i * 31 + 7) % 500 + 3).collect();
    let ids = Tensor::new(full.as_slice(), &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let reference = llama.forward(&ids).unwrap();

    // Prefix of 18 in a right-padded batch of 2 (the other row longer), then 12 continuation tokens.
    let other: Vec<u32> = (0..25u32).map(|i| (i * 17 + 1) % 500).collect();
    let mut batch = full[..18].to_vec();
    batch.extend(std::iter::repeat_n(0u32, 7));
    batch.extend_from_slice(&other);
    let batch = Tensor::from_vec(batch, (2, 25), &dev).unwrap();
    let (h, cache) = model.forward_hidden_cached(&batch, None).unwrap();
    let prefix_logits = model
        .lm_head(&h.get(0).unwrap().narrow(0, 0, 18).unwrap())
        .unwrap();
    assert!(
        max_diff(
            &prefix_logits,
            &reference.get(0).unwrap().narrow(0, 0, 18).unwrap()
        ) < 1e-4
    );
    let row = cache.row(0, 18).unwrap().expand(3).unwrap();
    let cont = Tensor::new(&full[18..], &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
        .repeat((3, 1))
        .unwrap();
    let (h2, _) = model.forward_hidden_cached(&cont, Some(&row)).unwrap();
    let logits = model.lm_head(&h2).unwrap();
    for r in 0..3 {
        let d = max_diff(
            &logits.get(r).unwrap(),
            &reference.get(0).unwrap().narrow(0, 18, 12).unwrap(),
        );
        assert!(d < 1e-4, "row {r}: {d}");
    }
    // One token at a time.
    let (_, mut c) = model
        .forward_hidden_cached(
            &Tensor::new(&full[..1], &dev).unwrap().unsqueeze(0).unwrap(),
            None,
        )
        .unwrap();
    for (i, &t) in full.iter().enumerate().skip(1) {
        let (h, c2) = model
            .forward_hidden_cached(
                &Tensor::new(&[t], &dev).unwrap().unsqueeze(0).unwrap(),
                Some(&c),
            )
            .unwrap();
        c = c2;
        let d = max_diff(
            &model.lm_head(&h).unwrap().get(0).unwrap().get(0).unwrap(),
            &reference.get(0).unwrap().get(i).unwrap(),
        );
        assert!(d < 1e-4, "pos {i}: {d}");
    }
}

/// One sequence of token ids as a (1, n) tensor.
fn row(dev: &Device, ids: &[u32]) -> Tensor {
    Tensor::new(ids, dev).unwrap().unsqueeze(0).unwrap()
}

/// The f32 values of `t` as bit patterns, for exact comparisons.
fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

/// Where the decoder promises it (f32 on a CPU with k2's product), a cached prefix changes no bit:
/// a right-padded batch of prefixes, continuations from a row's cache, and token-by-token
/// extension all give the logits of the whole sequence run alone, exactly. LLaMA with GQA, and
/// GPT-NeoX (fused per-head q/k/v, partial RoPE, parallel residual).
#[test]
fn a_cached_prefix_changes_no_bit_where_the_decoder_says_so() {
    let dev = Device::Cpu;
    let dirs = [
        common::fixtures().join("models/tiny-random-llama-gqa-sharded"),
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/families/pythia-parallel"),
    ];
    for dir in dirs {
        let model = load_decoder(&dir, DType::F32, &dev).unwrap();
        if !model.prefix_reuse_is_exact() {
            println!("skipped: this CPU has no AVX2+FMA, so k2's fused attention does not run");
            return;
        }
        let vocab = model.arch().vocab_size as u32;
        let full: Vec<u32> = (0..29u32).map(|i| (i * 31 + 7) % vocab).collect();
        let (h, _) = model
            .forward_hidden_cached(&row(&dev, &full), None)
            .unwrap();
        let whole = model.lm_head(&h).unwrap().get(0).unwrap();
        let at = |a: usize, n: usize| bits(&whole.narrow(0, a, n).unwrap());

        for split in [1, 11, 28] {
            // The prefix in a right-padded batch beside a longer row.
            let other: Vec<u32> = (0..split as u32 + 5)
                .map(|i| (i * 17 + 1) % vocab)
                .collect();
            let mut flat = full[..split].to_vec();
            flat.extend(std::iter::repeat_n(0u32, other.len() - split));
            flat.extend_from_slice(&other);
            let batch = Tensor::from_vec(flat, (2, other.len()), &dev).unwrap();
            let (h, cache) = model.forward_hidden_cached(&batch, None).unwrap();
            let lp = model.lm_head(&h.get(0).unwrap()).unwrap();
            assert_eq!(bits(&lp.narrow(0, 0, split).unwrap()), at(0, split));
            // The rest after the row's cache, three times in one batch.
            let rest = full.len() - split;
            let cached = cache.row(0, split).unwrap().expand(3).unwrap();
            let cont = row(&dev, &full[split..]).repeat((3, 1)).unwrap();
            let h2 = model.hidden_after(&cont, &cached).unwrap();
            let logits = model.lm_head(&h2).unwrap();
            for r in 0..3 {
                assert_eq!(
                    bits(&logits.get(r).unwrap()),
                    at(split, rest),
                    "{dir:?}, split {split}, row {r}"
                );
            }
        }
        // One token at a time.
        let (_, mut c) = model
            .forward_hidden_cached(&row(&dev, &full[..1]), None)
            .unwrap();
        for (i, &t) in full.iter().enumerate().skip(1) {
            let (h, c2) = model
                .forward_hidden_cached(&row(&dev, &[t]), Some(&c))
                .unwrap();
            c = c2;
            assert_eq!(
                bits(&model.lm_head(&h).unwrap()),
                at(i, 1),
                "{dir:?}, pos {i}"
            );
        }
    }
}

/// The LLaMA (GQA) and GPT-NeoX test models the packed forwards run on, or `None` (said) where
/// this CPU cannot run k2's fused attention.
fn packing_models(dev: &Device) -> Option<Vec<(std::path::PathBuf, k2_model::Decoder)>> {
    let mut out = Vec::new();
    for dir in [
        common::fixtures().join("models/tiny-random-llama-gqa-sharded"),
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/families/pythia-parallel"),
    ] {
        let model = load_decoder(&dir, DType::F32, dev).unwrap();
        if !model.prefix_reuse_is_exact() {
            println!("skipped: this CPU has no AVX2+FMA, so k2's fused attention does not run");
            return None;
        }
        out.push((dir, model));
    }
    Some(out)
}

/// Sequences one after another in one row, and each one's (start, len) in it.
fn pack<'a>(seqs: impl IntoIterator<Item = &'a Vec<u32>>) -> (Vec<u32>, Vec<(usize, usize)>) {
    let mut flat = Vec::new();
    let mut segs = Vec::new();
    for s in seqs {
        segs.push((flat.len(), s.len()));
        flat.extend_from_slice(s);
    }
    (flat, segs)
}

/// Sequences packed into one row after a shared cached prefix (or none) get exactly the bits they
/// get alone after it, and a sequence's cache cut from the packed one continues exactly.
#[test]
fn packed_sequences_get_the_bits_they_get_alone() {
    let dev = Device::Cpu;
    let Some(models) = packing_models(&dev) else {
        return;
    };
    for (dir, model) in models {
        let vocab = model.arch().vocab_size as u32;
        let toks = |n: u32, seed: u32| -> Vec<u32> {
            (0..n).map(|i| (i * 31 + seed * 7 + 3) % vocab).collect()
        };
        // The long one runs its queries in several blocks (the attention keeps a block's
        // probabilities in cache), with and without a long prefix.
        let seqs = [toks(7, 1), toks(1, 2), toks(12, 3), toks(400, 6)];
        let tail = toks(4, 4);
        for prefix_len in [0u32, 9, 300] {
            let prefix = toks(prefix_len, 5);
            let cache = (prefix_len > 0).then(|| {
                model
                    .forward_hidden_cached(&row(&dev, &prefix), None)
                    .unwrap()
                    .1
            });
            let (flat, segs) = pack(&seqs);
            let (h, packed) = model
                .forward_packed(&row(&dev, &flat), &segs, cache.as_ref(), true)
                .unwrap();
            let packed = packed.unwrap();
            for (s, &(start, len)) in seqs.iter().zip(&segs) {
                let whole: Vec<u32> = prefix.iter().chain(s).copied().collect();
                let (alone, _) = model
                    .forward_hidden_cached(&row(&dev, &whole), None)
                    .unwrap();
                let p = prefix.len();
                assert_eq!(
                    bits(&h.narrow(1, start, len).unwrap()),
                    bits(&alone.narrow(1, p, len).unwrap()),
                    "{dir:?}, prefix {prefix_len}, segment at {start}"
                );
                // Continue from the sequence's cut cache.
                let own = packed.packed_row(cache.as_ref(), start, len).unwrap();
                let next = model.hidden_after(&row(&dev, &tail), &own).unwrap();
                let longer: Vec<u32> = whole.iter().chain(&tail).copied().collect();
                let (ref_h, _) = model
                    .forward_hidden_cached(&row(&dev, &longer), None)
                    .unwrap();
                assert_eq!(
                    bits(&next),
                    bits(&ref_h.narrow(1, whole.len(), tail.len()).unwrap())
                );
            }
        }
    }
}

/// Continuations of several contexts packed into one row, each after the shared prefix and its own
/// context's keys from the contexts' packed cache, get exactly the bits each gets run alone after
/// prefix + context; a span of the wrong size is an error.
#[test]
fn continuations_packed_after_their_contexts_get_the_bits_they_get_alone() {
    let dev = Device::Cpu;
    let Some(models) = packing_models(&dev) else {
        return;
    };
    for (dir, model) in models {
        let vocab = model.arch().vocab_size as u32;
        let toks = |n: u32, seed: u32| -> Vec<u32> {
            (0..n).map(|i| (i * 37 + seed * 11 + 5) % vocab).collect()
        };
        let ctxs = [toks(6, 1), toks(1, 2), toks(13, 3)];
        // (context, continuation): two of the first context, none of the second's, one long.
        let conts = [
            (0usize, toks(3, 4)),
            (2, toks(1, 5)),
            (0, toks(5, 6)),
            (2, toks(9, 7)),
        ];
        for prefix_len in [0u32, 8] {
            let prefix = toks(prefix_len, 9);
            let cache = (prefix_len > 0).then(|| {
                model
                    .forward_hidden_cached(&row(&dev, &prefix), None)
                    .unwrap()
                    .1
            });
            let (flat, ctx_segs) = pack(&ctxs);
            let (_, middle) = model
                .forward_packed(&row(&dev, &flat), &ctx_segs, cache.as_ref(), true)
                .unwrap();
            let middle = middle.unwrap();
            let (flat, segs) = pack(conts.iter().map(|(_, c)| c));
            let spans: Vec<(usize, usize)> = conts.iter().map(|(c, _)| ctx_segs[*c]).collect();
            let h = model
                .forward_packed_after(&row(&dev, &flat), &segs, cache.as_ref(), &middle, &spans)
                .unwrap();
            for ((ci, cont), &(start, len)) in conts.iter().zip(&segs) {
                let whole: Vec<u32> = prefix
                    .iter()
                    .chain(&ctxs[*ci])
                    .chain(cont)
                    .copied()
                    .collect();
                let (alone, _) = model
                    .forward_hidden_cached(&row(&dev, &whole), None)
                    .unwrap();
                assert_eq!(
                    bits(&h.narrow(1, start, len).unwrap()),
                    bits(&alone.narrow(1, whole.len() - len, len).unwrap()),
                    "{dir:?}, prefix {prefix_len}, continuation at {start} after context {ci}"
                );
            }
            let mut bad = spans.clone();
            bad[0].1 = middle.len + 1;
            assert!(model
                .forward_packed_after(&row(&dev, &flat), &segs, cache.as_ref(), &middle, &bad)
                .is_err());
            assert!(model
                .forward_packed_after(
                    &row(&dev, &flat),
                    &segs,
                    cache.as_ref(),
                    &middle,
                    &spans[1..]
                )
                .is_err());
        }
    }
}

/// Finishing only each packed sequence's last position gives exactly those rows of the full packed
/// forward, and the same kept keys and values; an empty sequence is an error.
#[test]
fn last_positions_only_get_the_bits_of_the_full_packed_forward() {
    let dev = Device::Cpu;
    let Some(models) = packing_models(&dev) else {
        return;
    };
    for (dir, model) in models {
        let vocab = model.arch().vocab_size as u32;
        let toks = |n: u32, seed: u32| -> Vec<u32> {
            (0..n).map(|i| (i * 29 + seed * 13 + 1) % vocab).collect()
        };
        let seqs = [toks(5, 1), toks(1, 2), toks(14, 3), toks(2, 4)];
        let (flat, segs) = pack(&seqs);
        for prefix_len in [0u32, 7] {
            let cache = (prefix_len > 0).then(|| {
                model
                    .forward_hidden_cached(&row(&dev, &toks(prefix_len, 9)), None)
                    .unwrap()
                    .1
            });
            let (full, full_kv) = model
                .forward_packed(&row(&dev, &flat), &segs, cache.as_ref(), true)
                .unwrap();
            let (last, last_kv) = model
                .forward_packed_last(&row(&dev, &flat), &segs, cache.as_ref(), true)
                .unwrap();
            assert_eq!(last.dims(), &[1, segs.len(), full.dim(2).unwrap()]);
            for (i, &(a, n)) in segs.iter().enumerate() {
                assert_eq!(
                    bits(&last.narrow(1, i, 1).unwrap()),
                    bits(&full.narrow(1, a + n - 1, 1).unwrap()),
                    "{dir:?}, prefix {prefix_len}, sequence {i}"
                );
            }
            for ((fk, fv), (lk, lv)) in full_kv.unwrap().layers.iter().zip(&last_kv.unwrap().layers)
            {
                assert_eq!(bits(fk), bits(lk));
                assert_eq!(bits(fv), bits(lv));
            }
        }
        let mut empty = segs.clone();
        empty.push((flat.len(), 0));
        assert!(model
            .forward_packed_last(&row(&dev, &flat), &empty, None, false)
            .is_err());
    }
}

/// Appending in place ([`k2_model::KvCache::with_room`], as generation does) gives every step the
/// bits of concatenating the cache anew, on k2's kernels (f32) and candle's (bf16), for one row and
/// for a batch, including steps past the room (which fall back to concatenation).
#[test]
fn appending_in_place_gives_the_bits_of_concatenation() {
    let dev = Device::Cpu;
    let dir = common::fixtures().join("models/tiny-random-llama-gqa-sharded");
    for dtype in [DType::F32, DType::BF16] {
        let model = load_decoder(&dir, dtype, &dev).unwrap();
        let vocab = model.arch().vocab_size as u32;
        for b in [1usize, 2] {
            let prompt: Vec<u32> = (0..7 * b as u32).map(|i| (i * 31 + 7) % vocab).collect();
            let ids = Tensor::from_vec(prompt, (b, 7), &dev).unwrap();
            let (_, base) = model.forward_hidden_cached(&ids, None).unwrap();
            let mut plain = base.clone();
            let mut roomy = base.with_room(3).unwrap();
            for step in 0..5u32 {
                let next: Vec<u32> = (0..b as u32)
                    .map(|r| (step * 13 + r * 5 + 1) % vocab)
                    .collect();
                let x = Tensor::from_vec(next, (b, 1), &dev).unwrap();
                let (h1, c1) = model.forward_hidden_cached(&x, Some(&plain)).unwrap();
                let (h2, c2) = model.forward_hidden_cached(&x, Some(&roomy)).unwrap();
                let f = |t: &Tensor| -> Vec<f64> {
                    t.to_dtype(DType::F64)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap()
                };
                let (a, c) = (f(&h1), f(&h2));
                assert!(
                    a.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{dtype:?} batch {b} step {step}"
                );
                assert_eq!(c1.len, c2.len);
                plain = c1;
                roomy = c2;
            }
        }
    }
}
