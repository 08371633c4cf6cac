//! Dealing samples into chunks, K2's way (k2-data-prep `gather.py`): a source with repeat factor
//! `r` is dealt round-robin over `P = floor(N / r)` pseudo-chunks and real chunk `t` takes
//! pseudo-chunk `t mod P`. So r = 3 puts every sample in 3 chunks, r = 6 in 6, and r = 0.5
//! (P = 2N) leaves half the samples unused. Each chunk is then shuffled with seed
//! `shuffle_seed_base + chunk_id` (K2: Python `random.shuffle` with seed 11111 + chunk id; ours is a
//! Fisher-Yates over SplitMix64 so the order is stable forever).

use k2_corpus::rng::SplitMix64;

use crate::packing::Sample;

/// How many pseudo-chunks a source with repeat factor `repeat` is dealt over in a stage of
/// `chunks` chunks.
pub fn pseudo_chunks(chunks: u32, repeat: f64) -> usize {
    ((chunks as f64 / repeat).floor() as usize).max(1)
}

/// Splits `total` samples per chunk over sources by share, largest remainder first, so the counts
/// sum to exactly `total`.
pub fn per_chunk_counts(shares: &[f64], total: usize) -> Vec<usize> {
    let exact: Vec<f64> = shares.iter().map(|s| s * total as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut rest = total - counts.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.partial_cmp(&fa)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if rest == 0 {
            break;
        }
        counts[i] += 1;
        rest -= 1;
    }
    counts
}

/// Deals one source's samples (`per_chunk * P` of them) into the stage's `chunks` chunks:
/// returns, per local chunk index, the indices of the samples it receives.
pub fn deal(n_samples: usize, chunks: u32, repeat: f64) -> Vec<Vec<usize>> {
    let p = pseudo_chunks(chunks, repeat);
    let mut pseudo: Vec<Vec<usize>> = vec![Vec::new(); p];
    for i in 0..n_samples {
        pseudo[i % p].push(i);
    }
    (0..chunks as usize)
        .map(|t| pseudo[t % p].clone())
        .collect()
}

/// Fisher-Yates shuffle with the chunk's seed.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Samples of one chunk after shuffling.
pub fn shuffled_chunk(mut samples: Vec<Sample>, seed: u64) -> Vec<Sample> {
    shuffle(&mut samples, seed);
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_factors_place_each_sample_in_r_chunks() {
        // K2's examples: r=3 -> chunks t, t+P, t+2P; r=0.5 -> half the samples unused.
        let n = 360;
        for (r, p, per_sample) in [(1.0, 360, 1), (3.0, 120, 3), (6.0, 60, 6), (0.5, 720, 1)] {
            assert_eq!(pseudo_chunks(n, r), p);
            let dealt = deal(p * 2, n, r);
            let mut seen = vec![0; p * 2];
            for c in &dealt {
                assert_eq!(c.len(), 2);
                for &i in c {
                    seen[i] += 1;
                }
            }
            let used = seen.iter().filter(|&&c| c > 0).count();
            if r < 1.0 {
                assert_eq!(used, p); // half of 2P
            } else {
                assert!(seen.iter().all(|&c| c == per_sample), "r={r}");
            }
        }
    }

    #[test]
    fn counts_sum_exactly() {
        let c = per_chunk_counts(&[0.45, 0.25, 0.15, 0.15], 320);
        assert_eq!(c.iter().sum::<usize>(), 320);
        assert_eq!(c, vec![144, 80, 48, 48]);
        let c = per_chunk_counts(&[1.0 / 3.0; 3], 10);
        assert_eq!(c.iter().sum::<usize>(), 10);
    }

    #[test]
    fn shuffle_is_a_deterministic_permutation() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        shuffle(&mut a, 11111);
        shuffle(&mut b, 11111);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..100).collect();
        shuffle(&mut c, 11112);
        assert_ne!(a, c);
        a.sort();
        assert_eq!(a, (0..100).collect::<Vec<_>>());
    }
}
