//! k2's f32 matrix product on the CPU: `C = A·B` or `C += A·B`, row-major `C`, `A` and `B` of any
//! strides (so transposes cost nothing), packed into cache-sized panels and computed by an
//! AVX-512 (12×32) or AVX2+FMA (6×16) register-tiled micro-kernel.
//!
//! **Bits.** Every element of `C` is one sequential chain of fused multiply-adds over `k` in
//! increasing order, starting from 0 (or from `C` when accumulating): `c = fma(a[i,p], b[p,j], c)`
//! for p = 0, 1, … . That is exactly [`reference`]. So the result does not depend on the SIMD
//! width (AVX-512 and AVX2 give the same bits), the tile sizes, the number of rows or columns
//! computed together (an eval batch), the position of the element in its tile, or the thread
//! count: work is divided by output tiles only, never along `k`.
//!
//! candle's own CPU matmul (the `gemm` crate) uses AVX2 on stable Rust, splits `k` differently by
//! shape, and ran these shapes on one thread (see `bench/README.md`).

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::parallel::SyncPtr;

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major with row stride `ld`.
    pub fn rows(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: ld,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with row stride `ld`.
    pub fn cols(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: ld,
        }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Which micro-kernel this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
}

/// The micro-kernel for this CPU, or `None` when it has neither AVX-512F nor AVX2+FMA (callers
/// then use candle's matmul). `K2_GEMM=candle` turns k2's product off (for before/after
/// measurements); `K2_GEMM=avx2` forces the AVX2 kernel on an AVX-512 machine.
pub fn isa() -> Option<Isa> {
    static ISA: OnceLock<Option<Isa>> = OnceLock::new();
    *ISA.get_or_init(|| {
        use crate::switches::{switches, GemmChoice};
        match switches().gemm {
            GemmChoice::Candle => None,
            GemmChoice::ForceAvx2 => detect(true),
            GemmChoice::Detect => detect(false),
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn detect(force_avx2: bool) -> Option<Isa> {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    if !force_avx2 && is_x86_feature_detected!("avx512f") {
        Some(Isa::Avx512)
    } else if avx2 {
        Some(Isa::Avx2)
    } else {
        None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect(_force_avx2: bool) -> Option<Isa> {
    None
}

/// Depth of one packed panel.
const KC: usize = 256;
/// Rows of `A` packed together (a multiple of both kernels' MR); a task's rows are a multiple.
const MC: usize = 96;
/// Columns of `B` per task (a multiple of both kernels' NR).
const NC: usize = 512;

thread_local! {
    /// This thread's packing buffers for A and B and its edge-tile buffer, grown as needed and
    /// never shrunk: a product of another shape reuses them without zeroing them again.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// Grows `v` to at least `len` floats (zeros appended), never shrinking it.
fn at_least(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// `C (m×n, row stride ldc) = A (m×k)·B (k×n)`, or `C += A·B` when `accumulate`. Tasks run on
/// [`crate::parallel`]'s pool when `parallel`; results are identical either way.
///
/// # Panics
/// If the views or `c` are too short for the shapes (a caller bug, not user input), or when this
/// CPU has no kernel ([`isa`] is `None`).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "sgemm: C too short"
    );
    // SAFETY: `c` covers every element written, checked above.
    unsafe { sgemm_ptr(m, n, k, a, b, c.as_mut_ptr(), ldc, accumulate, parallel) }
}

/// [`sgemm`] into a raw `C`, for callers whose tasks write interleaved, disjoint parts of one
/// buffer (attention heads).
///
/// # Safety
/// `c` must be valid for writes of every element (i, j < m, n) at `c + i * ldc + j`, and no
/// other thread may access those elements during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm_ptr(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k > 0 {
        assert!(
            a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs,
            "sgemm: A too short"
        );
        assert!(
            b.data.len() > (k - 1) * b.rs + (n - 1) * b.cs,
            "sgemm: B too short"
        );
    }
    let isa = isa().expect("sgemm: no AVX-512F or AVX2+FMA on this CPU");
    let threads = if parallel {
        crate::parallel::threads()
    } else {
        1
    };
    // A product at most 16 columns wide (an attention head of dimension ≤ 16) runs on the
    // 16-wide AVX2 kernel: the 32-wide one would pad every tile to twice the width or more. The
    // kernels compute the same bits.
    let isa = match isa {
        Isa::Avx512 if n <= 16 => Isa::Avx2,
        other => other,
    };
    run(isa, threads, m, n, k, a, b, SyncPtr(c), ldc, accumulate);
}

/// The product on `isa`'s kernel, its output tiles split into tasks for `threads` threads (one
/// task when 1) and run on [`crate::parallel`]'s pool.
///
/// # Safety
/// As [`sgemm_ptr`]; the views are long enough for the shapes.
#[allow(clippy::too_many_arguments)]
unsafe fn run(
    isa: Isa,
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: SyncPtr,
    ldc: usize,
    accumulate: bool,
) {
    let (rows, tm, tn) = split(m, n, threads);
    let task = move |t: usize| {
        let (ti, tj) = (t / tn, t % tn);
        let (i0, j0) = (ti * rows, tj * NC);
        let (mc, nc) = (rows.min(m - i0), NC.min(n - j0));
        // SAFETY: tasks write disjoint (i0..i0+mc, j0..j0+nc) blocks of C, inside its bounds.
        unsafe { block(isa, i0, j0, mc, nc, k, a, b, c, ldc, accumulate) };
    };
    let tasks = tm * tn;
    if tasks > 1 {
        crate::parallel::par_for(tasks, task);
    } else {
        task(0);
    }
}

/// A vector of `len` floats that `fill` writes, every one of them, through the pointer it gets:
/// an output buffer without the cost of zeroing it first.
///
/// # Safety
/// `fill` must write all `len` elements (for [`sgemm_ptr`]: `accumulate` false, ldc = n).
pub unsafe fn written(len: usize, fill: impl FnOnce(*mut f32)) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    fill(v.as_mut_ptr());
    v.set_len(len);
    v
}

/// Rows per task and the task grid (row blocks, column blocks): about four tasks per thread,
/// row blocks a multiple of MC. Only which thread computes a tile depends on this, not its bits.
fn split(m: usize, n: usize, threads: usize) -> (usize, usize, usize) {
    let tn = n.div_ceil(NC);
    let per_col = (4 * threads).div_ceil(tn).max(1);
    let rows = if threads <= 1 {
        m
    } else {
        m.div_ceil(per_col).div_ceil(MC).max(1) * MC
    };
    (rows, m.div_ceil(rows), tn)
}

/// One (mc×nc) block of C over all of k, `KC` deep at a time. The kernels read A where it lies
/// (row- or column-major) and B where its rows are contiguous; only a transposed B and the edge
/// tiles are packed.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    isa: Isa,
    i0: usize,
    j0: usize,
    mc: usize,
    nc: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: SyncPtr,
    ldc: usize,
    accumulate: bool,
) {
    let (mr, nr) = match isa {
        Isa::Avx512 => (12, 32),
        Isa::Avx2 => (6, 16),
    };
    if k == 0 {
        if !accumulate {
            for i in 0..mc {
                std::ptr::write_bytes(c.add((i0 + i) * ldc + j0), 0, nc);
            }
        }
        return;
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let (ap, bp, tile) = &mut *s;
        // Rows of B are read in place when contiguous; otherwise all of this block's panels
        // are packed, nr columns by KC rows each.
        let b_direct = b.cs == 1;
        let ncp = nc.div_ceil(nr) * nr;
        at_least(bp, if b_direct { nr * KC } else { ncp * KC });
        at_least(tile, 12 * 32);
        let a_layout = if a.cs == 1 {
            Some(ALayout::Rows(a.rs))
        } else if a.rs == 1 {
            Some(ALayout::Cols(a.cs))
        } else {
            None
        };
        // A is read in place when its tiles are small and their rows do not alias in the L1
        // cache; otherwise packed once per MC rows and reused across the block's columns.
        let a_direct = match a_layout {
            Some(ALayout::Rows(lda)) => k <= 2 * KC / 3 && lda % 256 != 0,
            Some(ALayout::Cols(lda)) => k <= KC && lda % 256 != 0,
            None => false,
        };
        if !a_direct {
            at_least(ap, MC.div_ceil(mr) * mr * KC);
        }
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            if !b_direct {
                pack_b(b, p0, kc, j0, nc, nr, bp);
            }
            let load = accumulate || p0 > 0;
            for ic in (0..mc).step_by(MC) {
                let mcb = MC.min(mc - ic);
                if !a_direct {
                    for ir in (0..mcb).step_by(mr) {
                        let panel = &mut ap[ir * kc..(ir + mr) * kc];
                        pack_a(a, i0 + ic + ir, mr.min(mcb - ir), p0, kc, mr, panel);
                    }
                }
                for jr in (0..nc).step_by(nr) {
                    let nn = nr.min(nc - jr);
                    let (bptr, ldb) = if !b_direct {
                        (bp.as_ptr().add(jr * kc), nr)
                    } else if nn == nr {
                        (b.data.as_ptr().add(p0 * b.rs + j0 + jr), b.rs)
                    } else {
                        pack_b(b, p0, kc, j0 + jr, nn, nr, bp);
                        (bp.as_ptr(), nr)
                    };
                    for ir in (0..mcb).step_by(mr) {
                        let mm = mr.min(mcb - ir);
                        let row = i0 + ic + ir;
                        // The kernel reads only its mm rows: an edge row block reads A in place
                        // (or from its zero-padded panel) and computes just those rows.
                        let (aptr, al) = match a_layout {
                            Some(al) if a_direct => {
                                (a.data.as_ptr().add(row * a.rs + p0 * a.cs), al)
                            }
                            _ => (ap.as_ptr().add(ir * kc), ALayout::Cols(mr)),
                        };
                        let cdst = c.add(row * ldc + j0 + jr);
                        if nn == nr {
                            kernel(isa, mm, kc, aptr, al, bptr, ldb, cdst, ldc, load);
                        } else {
                            // Edge columns: the same kernel on a full-width tile buffer, same
                            // arithmetic.
                            for i in 0..mm {
                                for j in 0..nn {
                                    tile[i * nr + j] =
                                        if load { *cdst.add(i * ldc + j) } else { 0.0 };
                                }
                            }
                            kernel(
                                isa,
                                mm,
                                kc,
                                aptr,
                                al,
                                bptr,
                                ldb,
                                tile.as_mut_ptr(),
                                nr,
                                load,
                            );
                            for i in 0..mm {
                                for j in 0..nn {
                                    *cdst.add(i * ldc + j) = tile[i * nr + j];
                                }
                            }
                        }
                    }
                }
            }
            p0 += kc;
        }
    });
}

/// How a kernel reads its mr rows of A: element (i, p) at `i * ld + p` or at `p * ld + i`.
#[derive(Clone, Copy)]
enum ALayout {
    Rows(usize),
    Cols(usize),
}

/// Packs B[p0..p0+kc, j0..j0+nc] as nr-wide column panels, each kc rows of nr (zero padded).
fn pack_b(b: MatRef, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
    for jr in (0..nc).step_by(nr) {
        let nn = nr.min(nc - jr);
        let panel = &mut out[jr * kc..(jr + nr) * kc];
        if b.rs == 1 && nn == nr && nr == 32 {
            // A full panel of the AVX-512 kernel's width: 8 columns at a time, each read
            // contiguously, written 8 floats per row of the panel.
            for j8 in (0..32).step_by(8) {
                let cols: [&[f32]; 8] =
                    std::array::from_fn(|j| &b.data[(j0 + jr + j8 + j) * b.cs + p0..][..kc]);
                for (p, row) in panel.chunks_exact_mut(32).enumerate() {
                    let dst = &mut row[j8..j8 + 8];
                    for j in 0..8 {
                        dst[j] = cols[j][p];
                    }
                }
            }
        } else if b.rs == 1 {
            // A transposed row-major matrix (a weight used as wᵀ): read each column contiguously.
            for j in 0..nr {
                if j < nn {
                    let col = &b.data[(j0 + jr + j) * b.cs + p0..][..kc];
                    for (p, &v) in col.iter().enumerate() {
                        panel[p * nr + j] = v;
                    }
                } else {
                    for p in 0..kc {
                        panel[p * nr + j] = 0.0;
                    }
                }
            }
        } else {
            for p in 0..kc {
                let dst = &mut panel[p * nr..(p + 1) * nr];
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = if j < nn {
                        b.at(p0 + p, j0 + jr + j)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// Packs the mm (≤ mr) rows A[i0.., p0..p0+kc] as kc columns of mr (zero padded).
fn pack_a(a: MatRef, i0: usize, mm: usize, p0: usize, kc: usize, mr: usize, out: &mut [f32]) {
    let out = &mut out[..kc * mr];
    // Full panels of the two kernels' heights, with the height a constant: the copies unroll
    // (a 12-float copy per column was a `memmove` call).
    if mm == mr && (a.cs == 1 || a.rs == 1) {
        match mr {
            12 => return pack_full::<12>(a, i0, p0, kc, out),
            6 => return pack_full::<6>(a, i0, p0, kc, out),
            _ => {}
        }
    }
    if mm < mr {
        out.fill(0.0);
    }
    if a.cs == 1 {
        for i in 0..mm {
            let row = &a.data[(i0 + i) * a.rs + p0..][..kc];
            for (d, &v) in out[i..].iter_mut().step_by(mr).zip(row) {
                *d = v;
            }
        }
    } else if a.rs == 1 {
        for (p, d) in out.chunks_exact_mut(mr).enumerate() {
            d[..mm].copy_from_slice(&a.data[(p0 + p) * a.cs + i0..][..mm]);
        }
    } else {
        for (p, d) in out.chunks_exact_mut(mr).enumerate() {
            for (i, v) in d[..mm].iter_mut().enumerate() {
                *v = a.at(i0 + i, p0 + p);
            }
        }
    }
}

/// [`pack_a`] of MR full rows of a row- or column-major A.
fn pack_full<const MR: usize>(a: MatRef, i0: usize, p0: usize, kc: usize, out: &mut [f32]) {
    if a.cs == 1 {
        let rows: [&[f32]; MR] = std::array::from_fn(|i| &a.data[(i0 + i) * a.rs + p0..][..kc]);
        for (p, d) in out.chunks_exact_mut(MR).enumerate() {
            for i in 0..MR {
                d[i] = rows[i][p];
            }
        }
    } else {
        for (p, d) in out.chunks_exact_mut(MR).enumerate() {
            let src: &[f32; MR] = a.data[(p0 + p) * a.cs + i0..][..MR]
                .try_into()
                .expect("MR elements");
            d.copy_from_slice(src);
        }
    }
}

/// The micro-kernel of `isa` on `mm` (≤ its MR) rows: the tile's first mm rows of C, each row
/// the same FMA chains whatever the height.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    isa: Isa,
    mm: usize,
    kc: usize,
    a: *const f32,
    al: ALayout,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    load: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! heights {
            ($k:ident, $rows:literal, $lda:ident, $($h:literal)+) => {
                match mm {
                    $($h => x86::$k::<$rows, $h>(kc, a, $lda, b, ldb, c, ldc, load),)+
                    _ => unreachable!("tile height {mm}"),
                }
            };
        }
        match (isa, al) {
            (Isa::Avx512, ALayout::Rows(lda)) => {
                heights!(k12x32, true, lda, 12 11 10 9 8 7 6 5 4 3 2 1)
            }
            (Isa::Avx512, ALayout::Cols(lda)) => {
                heights!(k12x32, false, lda, 12 11 10 9 8 7 6 5 4 3 2 1)
            }
            (Isa::Avx2, ALayout::Rows(lda)) => heights!(k6x16, true, lda, 6 5 4 3 2 1),
            (Isa::Avx2, ALayout::Cols(lda)) => heights!(k6x16, false, lda, 6 5 4 3 2 1),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, mm, kc, a, al, b, ldb, c, ldc, load);
        unreachable!("no k2 gemm kernel off x86_64")
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// A register-tiled kernel `C[H×2W] (+)= A[H×kc]·B[kc×2W]` for vectors of W floats and a
    /// height H ≤ MR, one FMA chain per element over p. A(i, p) is `a[i*lda + p]` when `ROWS`,
    /// else `a[p*lda + i]`; B(p, j) is `b[p*ldb + j]`; the accumulators (2·H vectors) live in
    /// registers.
    macro_rules! kernel {
        ($name:ident, $feature:literal, $mr:literal, $w:literal,
         $zero:ident, $loadu:ident, $storeu:ident, $set1:ident, $fmadd:ident) => {
            #[target_feature(enable = $feature)]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $name<const ROWS: bool, const H: usize>(
                kc: usize,
                a: *const f32,
                lda: usize,
                b: *const f32,
                ldb: usize,
                c: *mut f32,
                ldc: usize,
                load: bool,
            ) {
                let mut acc = [$zero(); 2 * $mr];
                if load {
                    for i in 0..H {
                        acc[2 * i] = $loadu(c.add(i * ldc));
                        acc[2 * i + 1] = $loadu(c.add(i * ldc + $w));
                    }
                }
                for p in 0..kc {
                    let b0 = $loadu(b.add(p * ldb));
                    let b1 = $loadu(b.add(p * ldb + $w));
                    for i in 0..H {
                        let ai = $set1(if ROWS {
                            *a.add(i * lda + p)
                        } else {
                            *a.add(p * lda + i)
                        });
                        acc[2 * i] = $fmadd(ai, b0, acc[2 * i]);
                        acc[2 * i + 1] = $fmadd(ai, b1, acc[2 * i + 1]);
                    }
                }
                for i in 0..H {
                    $storeu(c.add(i * ldc), acc[2 * i]);
                    $storeu(c.add(i * ldc + $w), acc[2 * i + 1]);
                }
            }
        };
    }

    kernel!(
        k12x32,
        "avx512f",
        12,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps
    );
    kernel!(
        k6x16,
        "avx2,fma",
        6,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps
    );
}

/// The definition the kernels implement, element by element: the FMA chain over k.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = if accumulate { c[i * ldc + j] } else { 0.0 };
            for p in 0..k {
                acc = a.at(i, p).mul_add(b.at(p, j), acc);
            }
            c[i * ldc + j] = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_kernel_gives_the_reference_bits_for_every_layout_and_shape() {
        let Some(found) = isa() else {
            eprintln!("skipped: this CPU has no AVX-512F or AVX2+FMA; k2 uses candle's matmul");
            return;
        };
        let mut isas = vec![Isa::Avx2];
        if found == Isa::Avx512 {
            isas.push(Isa::Avx512);
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (13, 33, 7),
            (97, 513, 300),
            (12, 32, 256),
            (23, 64, 40),
            (7, 96, 300),
            (5, 70, 0),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let av = data(m * k.max(1), 1);
                let bv = data(k.max(1) * n, 2);
                let a = if ta {
                    MatRef::cols(&av, m)
                } else {
                    MatRef::rows(&av, k)
                };
                let b = if tb {
                    MatRef::cols(&bv, k)
                } else {
                    MatRef::rows(&bv, n)
                };
                for acc in [false, true] {
                    let init = data(m * (n + 3), 3);
                    let mut want = init.clone();
                    reference(m, n, k, a, b, &mut want, n + 3, acc);
                    for &which in &isas {
                        for par in [false, true] {
                            let mut got = init.clone();
                            run_with(which, m, n, k, a, b, &mut got, n + 3, acc, par);
                            assert_eq!(
                                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                                "{which:?} m{m} n{n} k{k} ta{ta} tb{tb} acc{acc} par{par}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_or_in_a_batch() {
        if isa().is_none() {
            eprintln!("skipped: this CPU has no AVX-512F or AVX2+FMA");
            return;
        }
        let (m, n, k) = (40, 77, 129);
        let av = data(m * k, 4);
        let bv = data(n * k, 5);
        let mut all = vec![0f32; m * n];
        sgemm(
            m,
            n,
            k,
            MatRef::rows(&av, k),
            MatRef::cols(&bv, k),
            &mut all,
            n,
            false,
            true,
        );
        for i in [0, 17, 39] {
            let mut one = vec![0f32; n];
            let row = MatRef::rows(&av[i * k..], k);
            sgemm(
                1,
                n,
                k,
                row,
                MatRef::cols(&bv, k),
                &mut one,
                n,
                false,
                false,
            );
            assert_eq!(one, all[i * n..(i + 1) * n]);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_with(
        which: Isa,
        m: usize,
        n: usize,
        k: usize,
        a: MatRef,
        b: MatRef,
        c: &mut [f32],
        ldc: usize,
        acc: bool,
        par: bool,
    ) {
        // SAFETY: `c` holds m rows of ldc ≥ n; the views hold their shapes.
        unsafe {
            run(
                which,
                if par { 3 } else { 1 },
                m,
                n,
                k,
                a,
                b,
                SyncPtr(c.as_mut_ptr()),
                ldc,
                acc,
            )
        };
    }
}
