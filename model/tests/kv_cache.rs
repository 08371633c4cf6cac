//! The cached forward gives the same logits as the full forward: a prefix run once, then
//! continuations from its cache (batched, right-padded), and token-by-token extension.

mod common;

use candle_core::{DType, Device, Tensor};
use k2_model::{load_decoder, load_model, Mode};

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
    let dir = common::shared_data().join("models/tiny-random-llama-gqa-sharded");
    let llama = load_model(&dir, DType::F32, &Device::Cpu).unwrap();
    let model = load_decoder(&dir, DType::F32, &Device::Cpu).unwrap();
    let dev = Device::Cpu;
    let full: Vec<u32> = (0..30u32).map(|i| (i * 31 + 7) % 500 + 3).collect();
    let ids = Tensor::new(full.as_slice(), &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let reference = llama.forward(&ids, Mode::Infer).unwrap();

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
