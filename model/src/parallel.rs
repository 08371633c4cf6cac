//! Parallel loops for k2's CPU kernels on candle's own worker pool, so that k2's kernels and
//! candle's ops share one set of threads: with two pools on a 2-core machine, the idle one spins
//! on a core the busy one needs.
//!
//! A loop started from inside another runs inline (candle's pool is not re-entrant), and how the
//! indices are divided among threads never changes what an index computes.

use std::cell::Cell;

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f(i)` for every `i < n`, spread over candle's pool.
pub fn par_for(n: usize, f: impl Fn(usize) + Sync) {
    let pool = candle_core::utils::barrier_pool();
    if n <= 1 || pool.n_workers() == 0 || INSIDE.with(|c| c.get()) {
        (0..n).for_each(f);
        return;
    }
    pool.execute_chunked(n, |range| {
        let was = INSIDE.with(|c| c.replace(true));
        range.for_each(&f);
        INSIDE.with(|c| c.set(was));
    });
}

/// The number of threads [`par_for`] spreads over.
pub fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// A raw pointer into one buffer that parallel tasks share, each writing its own disjoint
/// elements (output tiles of a product, the rows of an attention head).
#[derive(Clone, Copy)]
pub struct SyncPtr(pub *mut f32);
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer `n` elements in (a method, so that closures capture the `Sync` wrapper and
    /// not its raw field).
    pub fn add(&self, n: usize) -> *mut f32 {
        self.0.wrapping_add(n)
    }
}

/// A buffer of `len` floats whose `size`-element chunks tasks write.
#[derive(Clone, Copy)]
struct Shared(SyncPtr, usize);

impl Shared {
    fn of(buf: &mut [f32]) -> Self {
        Self(SyncPtr(buf.as_mut_ptr()), buf.len())
    }

    /// Chunk `c` of `size` elements (the last one shorter).
    ///
    /// # Safety
    /// No two live chunks may overlap: each `c` is handed to one task only.
    #[allow(clippy::mut_from_ref)]
    unsafe fn chunk(&self, c: usize, size: usize) -> &mut [f32] {
        let start = c * size;
        std::slice::from_raw_parts_mut(self.0.add(start), size.min(self.1 - start))
    }
}

/// `f(c, chunk)` for every `size`-element chunk of `out`, in parallel.
pub fn par_chunks_mut(out: &mut [f32], size: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let size = size.max(1);
    let s = Shared::of(out);
    // SAFETY: chunk c goes to exactly one call.
    par_for(out.len().div_ceil(size), |c| {
        f(c, unsafe { s.chunk(c, size) })
    });
}

/// `f(c, chunk of a, chunk of b)` for the `size`-element chunks of two equally long buffers.
pub fn par_chunks2_mut(
    a: &mut [f32],
    b: &mut [f32],
    size: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32]) + Sync,
) {
    assert_eq!(a.len(), b.len(), "par_chunks2_mut: lengths differ");
    let size = size.max(1);
    let (sa, sb) = (Shared::of(a), Shared::of(b));
    // SAFETY: chunk c of each buffer goes to exactly one call.
    par_for(a.len().div_ceil(size), |c| unsafe {
        f(c, sa.chunk(c, size), sb.chunk(c, size))
    });
}

/// `[f(0), f(1), …, f(n-1)]`, computed in parallel, in index order.
pub fn par_map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let slots = SharedSlots(out.as_mut_ptr());
    // SAFETY: slot i is written by call i only, and `out` outlives the loop.
    par_for(n, |i| unsafe { *slots.at(i) = Some(f(i)) });
    out.into_iter()
        .map(|r| r.expect("par_map: every slot is filled"))
        .collect()
}

struct SharedSlots<R>(*mut Option<R>);
unsafe impl<R: Send> Send for SharedSlots<R> {}
unsafe impl<R: Send> Sync for SharedSlots<R> {}

impl<R> SharedSlots<R> {
    fn at(&self, i: usize) -> *mut Option<R> {
        self.0.wrapping_add(i)
    }
}

/// [`par_chunks_mut`] whose calls return values, collected in chunk order.
pub fn par_chunks_mut_map<R: Send>(
    out: &mut [f32],
    size: usize,
    f: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> Vec<R> {
    let size = size.max(1);
    let s = Shared::of(out);
    // SAFETY: chunk c goes to exactly one call.
    par_map(out.len().div_ceil(size), |c| {
        f(c, unsafe { s.chunk(c, size) })
    })
}

/// `f(c, chunk of a, of b, of c)` for the `size`-element chunks of three equally long buffers,
/// the results in chunk order.
pub fn par_chunks3_mut_map<R: Send>(
    a: &mut [f32],
    b: &mut [f32],
    c: &mut [f32],
    size: usize,
    f: impl Fn(usize, &mut [f32], &mut [f32], &mut [f32]) -> R + Sync,
) -> Vec<R> {
    assert!(
        a.len() == b.len() && b.len() == c.len(),
        "par_chunks3_mut_map: lengths differ"
    );
    let size = size.max(1);
    let (sa, sb, sc) = (Shared::of(a), Shared::of(b), Shared::of(c));
    // SAFETY: chunk i of each buffer goes to exactly one call.
    par_map(a.len().div_ceil(size), |i| unsafe {
        f(i, sa.chunk(i, size), sb.chunk(i, size), sc.chunk(i, size))
    })
}
