//! `exp` for f32 as every k2 CPU kernel computes it (softmax, log-sum-exp, the cross-entropy
//! gradient, SwiGLU's sigmoid), vectorised.
//!
//! One fixed sequence of IEEE operations per element: `n = round(x·log2 e)`, a two-step
//! Cody–Waite reduction `r = x − n·ln 2` by FMA, a degree-5 polynomial (Cephes' `expf`
//! coefficients) by FMA, and the scaling by `2^n` as an exponent-field integer. The scalar code
//! and every SIMD lane run the same operations, so a value's bits depend neither on the
//! instruction set (AVX-512, AVX2, none) nor on where in a slice it sits. Below `LO` the result
//! is 0, above `HI` +∞, NaN stays NaN; in between it is within 2 ulp of exp (tested; 1 ulp at
//! worst over the test's 250,000 inputs).
//!
//! [`sum16`] is the matching reduction: 16 running lanes, element i into lane i mod 16, then a
//! fixed halving tree; any vector width computes those same sums. [`softmax_row`] is k2's softmax
//! of a row built from them, exp and sum in one vector pass.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 in two parts: `LN2_HI` has few enough bits that `n · LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// exp(LO) is the smallest normal float; below it the result is 0.
const LO: f32 = -87.336_54;
/// exp(HI) = 2^127.5; above it the result is +∞.
const HI: f32 = 88.376_26;
/// Cephes `expf`: exp(r) ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2.
const P: [f32; 6] = [
    1.987_569_2e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5, // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
];

/// exp(x), the reference every vector lane matches bit for bit.
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < LO {
        return 0.0;
    }
    if x > HI {
        return f32::INFINITY;
    }
    let n = (x * LOG2E).round_ties_even();
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let mut p = P[0];
    for &c in &P[1..] {
        p = p.mul_add(r, c);
    }
    let y = p.mul_add(r * r, r) + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `xs[i] ← exp(xs[i])`, vectorised where the CPU allows; the bits of [`exp`].
pub fn exp_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match crate::gemm::isa() {
        // SAFETY: the ISA was detected on this CPU.
        Some(crate::gemm::Isa::Avx512) => return unsafe { x86::exp_avx512(xs) },
        Some(crate::gemm::Isa::Avx2) => return unsafe { x86::exp_avx2(xs) },
        None => {}
    }
    xs.iter_mut().for_each(|x| *x = exp(*x));
}

/// `row ← softmax(row · scale)`: `m = max(row · scale)`, `e_i = exp(row_i · scale − m)` summed in
/// [`Lanes`]' order, then `e_i · (1 / Σ)`. One pass for exp and sum in vector registers where the
/// CPU allows; the bits of [`softmax_row_scalar`].
pub fn softmax_row(row: &mut [f32], scale: f32) {
    #[cfg(target_arch = "x86_64")]
    match crate::gemm::isa() {
        // SAFETY: the ISA was detected on this CPU.
        Some(crate::gemm::Isa::Avx512) => return unsafe { x86::softmax_avx512(row, scale) },
        Some(crate::gemm::Isa::Avx2) => return unsafe { x86::softmax_avx2(row, scale) },
        None => {}
    }
    softmax_row_scalar(row, scale)
}

/// [`softmax_row`] in scalar code: the reference its vector paths match.
pub fn softmax_row_scalar(row: &mut [f32], scale: f32) {
    let m = max16(row, scale);
    row.iter_mut().for_each(|v| *v = exp(*v * scale - m));
    let inv = 1.0 / sum16(row);
    row.iter_mut().for_each(|v| *v *= inv);
}

/// [`exp_in_place`] by the scalar reference only (tests compare the vector paths with it).
pub fn exp_in_place_scalar(xs: &mut [f32]) {
    xs.iter_mut().for_each(|x| *x = exp(*x));
}

/// Running sums in 16 lanes: element i of what is added goes to lane i mod 16 (counting from the
/// first element ever added only when every earlier call added a multiple of 16).
#[derive(Clone, Copy)]
pub struct Lanes([f32; 16]);

impl Lanes {
    pub fn new() -> Self {
        Lanes([0.0; 16])
    }

    /// Adds `xs` element by element into the lanes, in order.
    pub fn add(&mut self, xs: &[f32]) {
        let mut chunks = xs.chunks_exact(16);
        for c in &mut chunks {
            for (a, &x) in self.0.iter_mut().zip(c) {
                *a += x;
            }
        }
        for (a, &x) in self.0.iter_mut().zip(chunks.remainder()) {
            *a += x;
        }
    }

    /// The total: lanes j and j + w added for w = 8, 4, 2, 1.
    pub fn total(mut self) -> f32 {
        for w in [8, 4, 2, 1] {
            for j in 0..w {
                self.0[j] += self.0[j + w];
            }
        }
        self.0[0]
    }
}

impl Default for Lanes {
    fn default() -> Self {
        Self::new()
    }
}

/// Σ xs in [`Lanes`]' order.
pub fn sum16(xs: &[f32]) -> f32 {
    let mut l = Lanes::new();
    l.add(xs);
    l.total()
}

/// The largest of `xs[i] · scale` (NaNs ignored; −∞ when there is no other value), in 16 lanes so
/// that it vectorises; the maximum is the same value in any order.
pub fn max16(xs: &[f32], scale: f32) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = xs.chunks_exact(16);
    for c in &mut chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            let v = x * scale;
            // `max` without NaN handling vectorises; a NaN is not kept (as f32::max).
            *l = if v > *l { v } else { *l };
        }
    }
    for (l, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *l = l.max(x * scale);
    }
    lanes.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// The AVX-512 and AVX2 paths (public so that tests can compare each with the scalar reference on
/// one machine).
#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use super::{HI, LN2_HI, LN2_LO, LO, LOG2E, P};
    use std::arch::x86_64::*;

    const ROUND: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

    #[target_feature(enable = "avx512f")]
    unsafe fn exp16(x: __m512) -> __m512 {
        let n = _mm512_roundscale_ps::<ROUND>(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)));
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), x);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
        let mut p = _mm512_set1_ps(P[0]);
        for &c in &P[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(
            _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
            _mm512_set1_ps(1.0),
        );
        let e = _mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_cvtps_epi32(n),
            _mm512_set1_epi32(127),
        ));
        let out = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
        let lo = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(LO));
        let hi = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_set1_ps(HI));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        let out = _mm512_mask_blend_ps(lo, out, _mm512_setzero_ps());
        let out = _mm512_mask_blend_ps(hi, out, _mm512_set1_ps(f32::INFINITY));
        _mm512_mask_blend_ps(nan, out, x)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp8(x: __m256) -> __m256 {
        let n = _mm256_round_ps::<ROUND>(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)));
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
        let mut p = _mm256_set1_ps(P[0]);
        for &c in &P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let y = _mm256_add_ps(
            _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r),
            _mm256_set1_ps(1.0),
        );
        let e = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        let out = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
        let lo = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(LO));
        let hi = _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(HI));
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
        let out = _mm256_blendv_ps(out, _mm256_setzero_ps(), lo);
        let out = _mm256_blendv_ps(out, _mm256_set1_ps(f32::INFINITY), hi);
        _mm256_blendv_ps(out, x, nan)
    }

    /// The total of 8 lanes (already lanes j + j+8 of 16) in [`super::Lanes::total`]'s order.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn total8(s8: __m256) -> f32 {
        let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps::<1>(s2, s2)))
    }

    /// [`super::softmax_row`] on AVX-512F.
    ///
    /// # Safety
    /// The CPU must have AVX-512F (and so AVX2 and FMA).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn softmax_avx512(row: &mut [f32], scale: f32) {
        let (n, p) = (row.len(), row.as_mut_ptr());
        let sc = _mm512_set1_ps(scale);
        let tail = n % 16;
        let body = n - tail;
        let k: __mmask16 = ((1u32 << tail) - 1) as __mmask16;
        // The maximum (a NaN is never kept: max(v, m) keeps m when v is NaN).
        let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
        for i in (0..body).step_by(16) {
            mx = _mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(p.add(i)), sc), mx);
        }
        if tail > 0 {
            let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p.add(body)), sc);
            mx = _mm512_mask_max_ps(mx, k, v, mx);
        }
        let m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        // exp(x·scale − m), stored and summed: lane j takes the elements i ≡ j (mod 16).
        let mut acc = _mm512_setzero_ps();
        for i in (0..body).step_by(16) {
            let e = exp16(_mm512_sub_ps(
                _mm512_mul_ps(_mm512_loadu_ps(p.add(i)), sc),
                m,
            ));
            _mm512_storeu_ps(p.add(i), e);
            acc = _mm512_add_ps(acc, e);
        }
        if tail > 0 {
            let x = _mm512_maskz_loadu_ps(k, p.add(body));
            let e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_mul_ps(x, sc), m)));
            _mm512_mask_storeu_ps(p.add(body), k, e);
            acc = _mm512_add_ps(acc, e);
        }
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc)));
        let total = total8(_mm256_add_ps(_mm512_castps512_ps256(acc), hi));
        let inv = _mm512_set1_ps(1.0 / total);
        for i in (0..body).step_by(16) {
            _mm512_storeu_ps(p.add(i), _mm512_mul_ps(_mm512_loadu_ps(p.add(i)), inv));
        }
        if tail > 0 {
            let x = _mm512_maskz_loadu_ps(k, p.add(body));
            _mm512_mask_storeu_ps(p.add(body), k, _mm512_mul_ps(x, inv));
        }
    }

    /// `c[..16] ← exp(c · scale − m)`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp_shifted16(c: *mut f32, sc: __m256, m: __m256) {
        for h in [0, 8] {
            let x = _mm256_loadu_ps(c.add(h));
            _mm256_storeu_ps(c.add(h), exp8(_mm256_sub_ps(_mm256_mul_ps(x, sc), m)));
        }
    }

    /// [`super::softmax_row`] on AVX2: the 16 lanes as two 8-float registers.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax_avx2(row: &mut [f32], scale: f32) {
        let n = row.len();
        let sc = _mm256_set1_ps(scale);
        let body = n - n % 16;
        let r = n - body;
        // The tail, padded to 16 with NaN, which the maximum never keeps.
        let mut buf = [f32::NAN; 16];
        buf[..r].copy_from_slice(&row[body..]);
        let mut mx = _mm256_set1_ps(f32::NEG_INFINITY);
        for c in row[..body].chunks_exact(8).chain(buf.chunks_exact(8)) {
            mx = _mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), sc), mx);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), mx);
        let m = _mm256_set1_ps(lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)));
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for c in row[..body].chunks_exact_mut(16) {
            exp_shifted16(c.as_mut_ptr(), sc, m);
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(c.as_ptr()));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(c.as_ptr().add(8)));
        }
        if r > 0 {
            exp_shifted16(buf.as_mut_ptr(), sc, m);
            buf[r..].fill(0.0);
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(buf.as_ptr()));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(buf.as_ptr().add(8)));
            row[body..].copy_from_slice(&buf[..r]);
        }
        let inv = 1.0 / total8(_mm256_add_ps(lo, hi));
        row.iter_mut().for_each(|v| *v *= inv);
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp_avx512(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(16);
        for c in &mut chunks {
            let v = _mm512_loadu_ps(c.as_ptr());
            _mm512_storeu_ps(c.as_mut_ptr(), exp16(v));
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut buf = [0f32; 16];
            buf[..rest.len()].copy_from_slice(rest);
            _mm512_storeu_ps(buf.as_mut_ptr(), exp16(_mm512_loadu_ps(buf.as_ptr())));
            rest.copy_from_slice(&buf[..rest.len()]);
        }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_avx2(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = _mm256_loadu_ps(c.as_ptr());
            _mm256_storeu_ps(c.as_mut_ptr(), exp8(v));
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut buf = [0f32; 8];
            buf[..rest.len()].copy_from_slice(rest);
            _mm256_storeu_ps(buf.as_mut_ptr(), exp8(_mm256_loadu_ps(buf.as_ptr())));
            rest.copy_from_slice(&buf[..rest.len()]);
        }
    }
}
