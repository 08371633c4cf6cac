//! A tiny, frozen pseudo-random number generator.
//!
//! The corpus must be byte-for-byte stable across crate versions forever, so it
//! depends on no external RNG crate. Everything here is SplitMix64 (Steele,
//! Lea, Flood 2014) plus FNV-1a for hashing names into seeds. Do not change any
//! constant or algorithm in this file: doing so changes every document.

/// Seed domain for training documents.
pub const DOC_DOMAIN: u64 = 0x6b32_636f_7270_7573; // "k2corpus"
/// Seed domain for evaluation probes (disjoint from [`DOC_DOMAIN`]).
pub const PROBE_DOMAIN: u64 = 0x6b32_7072_6f62_6573; // "k2probes"
/// Seed of the fixed synthetic fact base.
pub const FACTBASE_SEED: u64 = 0x6b32_6661_6374_7321; // "k2facts!"

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output finalizer: a bijective 64-bit mixer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a hash of a byte string.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Seed for item `index` of the stream `name` in seed domain `domain`.
pub fn seed_for(domain: u64, name: &str, index: u64) -> u64 {
    let base = mix64(fnv1a(name.as_bytes()) ^ domain);
    mix64(base ^ mix64(index.wrapping_add(GOLDEN)))
}

/// SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Generator for item `index` of stream `name` in seed domain `domain`.
    pub fn for_item(domain: u64, name: &str, index: u64) -> Self {
        Self::new(seed_for(domain, name, index))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// Uniform integer in `0..n` (`n > 0`), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range");
        lo + self.below(hi - lo + 1)
    }

    /// Uniform index into a slice of length `len`.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.index(xs.len())]
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.index(i + 1);
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Reference output of SplitMix64 seeded with 0 (matches the C reference).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn below_in_range_and_covers() {
        let mut r = SplitMix64::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let x = r.below(5) as usize;
            seen[x] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn domains_are_disjoint() {
        assert_ne!(
            seed_for(DOC_DOMAIN, "copy", 0),
            seed_for(PROBE_DOMAIN, "copy", 0)
        );
    }
}
