//! k2's vectorised exp: within 2 ulp of exp on its range, the same bits on every instruction set
//! and at every position of a slice, and the documented values outside the range.

use k2_model::fused::exp::{
    exp, exp_in_place, exp_in_place_scalar, max16, softmax_row, softmax_row_scalar, sum16, Lanes,
};

/// Distance in units in the last place between two finite positive floats.
fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

/// Inputs over the whole range, boundaries, specials and denormal results, in an odd count.
fn inputs() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..200_001)
        .map(|i| -88.0 + 177.0 * i as f32 / 200_000.0)
        .collect();
    let mut s = 0x2545_f491u32;
    for _ in 0..50_001 {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        xs.push(f32::from_bits(s) % 100.0);
    }
    xs.extend([
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        -87.336_54,
        -87.336_55,
        -87.0,
        88.376_26,
        88.376_27,
        88.7,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
    ]);
    xs
}

#[test]
fn exp_is_within_two_ulp_on_its_range_and_exact_at_zero() {
    let mut worst = (0u32, 0f32);
    for x in inputs() {
        if !(-87.3..=88.3).contains(&x) {
            continue;
        }
        let want = (x as f64).exp() as f32;
        let u = ulps(exp(x), want);
        if u > worst.0 {
            worst = (u, x);
        }
    }
    println!("worst: {} ulp at x = {}", worst.0, worst.1);
    assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
    assert_eq!(exp(0.0), 1.0);
    assert_eq!(exp(-0.0), 1.0);
}

#[test]
fn exp_outside_its_range_is_zero_or_infinity_and_nan_stays_nan() {
    assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp(-87.4), 0.0);
    assert_eq!(exp(-1000.0), 0.0);
    assert_eq!(exp(88.5), f32::INFINITY);
    assert_eq!(exp(f32::INFINITY), f32::INFINITY);
    assert!(exp(f32::NAN).is_nan());
    // The top of the range is finite, the bottom the smallest normals.
    assert!(exp(88.376_26).is_finite());
    assert!(exp(-87.336_54) > 0.0);
}

#[test]
fn every_instruction_set_and_slice_position_gives_the_scalar_bits() {
    let xs = inputs();
    let mut want = xs.clone();
    exp_in_place_scalar(&mut want);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut got = xs.clone();
    exp_in_place(&mut got);
    assert_eq!(bits(&got), bits(&want), "dispatched path");
    // Offsets change which lane and which tail an element lands in.
    for skip in 1..17 {
        let mut got = xs[skip..].to_vec();
        exp_in_place(&mut got);
        assert_eq!(bits(&got), bits(&want[skip..]), "offset {skip}");
    }
    #[cfg(target_arch = "x86_64")]
    {
        use k2_model::fused::exp::x86;
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            let mut got = xs.clone();
            unsafe { x86::exp_avx2(&mut got) };
            assert_eq!(bits(&got), bits(&want), "AVX2");
        } else {
            println!("AVX2 path not checked: this CPU has no AVX2+FMA");
        }
        if is_x86_feature_detected!("avx512f") {
            let mut got = xs.clone();
            unsafe { x86::exp_avx512(&mut got) };
            assert_eq!(bits(&got), bits(&want), "AVX-512");
        } else {
            println!("AVX-512 path not checked: this CPU has no AVX-512F");
        }
    }
}

#[test]
fn lane_sums_follow_their_documented_order() {
    let xs: Vec<f32> = (0..1003).map(|i| 1.0 / (1.0 + i as f32 * 0.37)).collect();
    // Element i into lane i mod 16, then lanes j + w into j for w = 8, 4, 2, 1.
    let mut lanes = [0f32; 16];
    for (i, &x) in xs.iter().enumerate() {
        lanes[i % 16] += x;
    }
    for w in [8, 4, 2, 1] {
        for j in 0..w {
            lanes[j] += lanes[j + w];
        }
    }
    assert_eq!(sum16(&xs).to_bits(), lanes[0].to_bits());
    // Added in pieces of multiples of 16, the same sums.
    let mut l = Lanes::new();
    for c in xs.chunks(256) {
        l.add(c);
    }
    assert_eq!(l.total().to_bits(), lanes[0].to_bits());
    assert_eq!(max16(&xs, 1.0), 1.0);
    assert_eq!(max16(&xs, -2.0), -2.0 * xs[1002]);
    let mut with_nan = xs.clone();
    with_nan[3] = f32::NAN;
    with_nan[1001] = f32::NAN;
    assert_eq!(max16(&with_nan, 1.0), 1.0);
    assert_eq!(max16(&[f32::NAN, -3.0, f32::NAN], 1.0), -3.0);
    assert_eq!(max16(&[f32::NAN; 40], 1.0), f32::NEG_INFINITY);
    assert_eq!(max16(&[], 1.0), f32::NEG_INFINITY);
}

#[test]
fn softmax_rows_give_the_scalar_bits_on_every_instruction_set() {
    let mut s = 0x9e37_79b9u32;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s as f32 / u32::MAX as f32 - 0.5) * 40.0
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for len in (0..80).chain([255, 256, 257, 1000]) {
        for scale in [1.0f32, 0.125, -0.7] {
            let mut row: Vec<f32> = (0..len).map(|_| next()).collect();
            if len > 3 && scale > 0.0 {
                row[len / 2] = f32::NEG_INFINITY; // a masked score
            }
            let mut want = row.clone();
            softmax_row_scalar(&mut want, scale);
            if len > 0 {
                let total: f32 = want.iter().sum();
                assert!((total - 1.0).abs() < 1e-5, "len {len}: sums to {total}");
            }
            let mut got = row.clone();
            softmax_row(&mut got, scale);
            assert_eq!(bits(&got), bits(&want), "len {len}, scale {scale}");
            #[cfg(target_arch = "x86_64")]
            {
                use k2_model::fused::exp::x86;
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    let mut got = row.clone();
                    unsafe { x86::softmax_avx2(&mut got, scale) };
                    assert_eq!(bits(&got), bits(&want), "AVX2, len {len}, scale {scale}");
                }
                if is_x86_feature_detected!("avx512f") {
                    let mut got = row.clone();
                    unsafe { x86::softmax_avx512(&mut got, scale) };
                    assert_eq!(bits(&got), bits(&want), "AVX-512, len {len}, scale {scale}");
                }
            }
        }
    }
}
