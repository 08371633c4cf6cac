//! An exact port of CPython's `random.Random` (Mersenne Twister MT19937) for integer seeds, as
//! of CPython 3.11: `seed` (`init_by_array` over the 32-bit words of |seed|), `getrandbits`,
//! `_randbelow_with_getrandbits`, `random`, `shuffle` and `sample` (both the pool branch and the
//! selected-set branch, chosen by CPython's `setsize` rule).
//!
//! lm-evaluation-harness draws few-shot examples with `random.Random(1234).sample(pool, n)`, so
//! this must reproduce Python bit for bit; `eval/tests/pyrandom.rs` checks it against values
//! produced by real Python 3.11 (`eval/tests/gen_pyrandom_fixture.py`).

use std::collections::HashSet;

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's `random.Random`.
#[derive(Clone)]
pub struct PyRandom {
    mt: [u32; N],
    mti: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom").field("mti", &self.mti).finish()
    }
}

impl PyRandom {
    /// `random.Random(seed)` for an integer seed (CPython uses |seed|).
    pub fn new(seed: i64) -> Self {
        Self::from_u128(seed.unsigned_abs() as u128)
    }

    /// `random.Random(seed)` for a non-negative integer seed up to 2^128 - 1.
    pub fn from_u128(seed: u128) -> Self {
        // CPython random_seed: the key is |seed| split into 32-bit words, least significant
        // first, with no high zero words (but at least one word, so 0 -> [0]).
        let mut key = Vec::new();
        let mut s = seed;
        while s != 0 {
            key.push((s & 0xffff_ffff) as u32);
            s >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        let mut r = PyRandom {
            mt: [0; N],
            mti: N + 1,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.mti = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mut i = 1usize;
        let mut j = 0usize;
        let key_length = key.len();
        let mut k = N.max(key_length);
        while k > 0 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ ((prev ^ (prev >> 30)).wrapping_mul(1_664_525)))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key_length {
                j = 0;
            }
            k -= 1;
        }
        k = N - 1;
        while k > 0 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ ((prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            k -= 1;
        }
        self.mt[0] = 0x8000_0000;
    }

    /// One 32-bit output of MT19937 (`genrand_uint32`).
    pub fn genrand_u32(&mut self) -> u32 {
        if self.mti >= N {
            let mag01 = [0u32, MATRIX_A];
            let mut kk = 0;
            while kk < N - M {
                let y = (self.mt[kk] & UPPER_MASK) | (self.mt[kk + 1] & LOWER_MASK);
                self.mt[kk] = self.mt[kk + M] ^ (y >> 1) ^ mag01[(y & 1) as usize];
                kk += 1;
            }
            while kk < N - 1 {
                let y = (self.mt[kk] & UPPER_MASK) | (self.mt[kk + 1] & LOWER_MASK);
                self.mt[kk] = self.mt[kk + M - N] ^ (y >> 1) ^ mag01[(y & 1) as usize];
                kk += 1;
            }
            let y = (self.mt[N - 1] & UPPER_MASK) | (self.mt[0] & LOWER_MASK);
            self.mt[N - 1] = self.mt[M - 1] ^ (y >> 1) ^ mag01[(y & 1) as usize];
            self.mti = 0;
        }
        let mut y = self.mt[self.mti];
        self.mti += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `random.random()`: a float in [0, 1) with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = (self.genrand_u32() >> 5) as f64;
        let b = (self.genrand_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `random.getrandbits(k)` for k <= 64 (CPython fills 32-bit words least significant first,
    /// dropping the low bits of the last word).
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits: k = {k} > 64 is not supported");
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return (self.genrand_u32() >> (32 - k)) as u64;
        }
        let lo = self.genrand_u32() as u64;
        let rem = k - 32;
        let hi = (self.genrand_u32() >> (32 - rem)) as u64;
        lo | (hi << 32)
    }

    /// `random._randbelow_with_getrandbits(n)`: uniform in [0, n), n > 0.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n > 0, "randbelow(0)");
        let k = 64 - n.leading_zeros(); // n.bit_length()
        let mut r = self.getrandbits(k);
        while r >= n {
            r = self.getrandbits(k);
        }
        r
    }

    /// `random.randrange(n)` for n > 0 (= `_randbelow(n)`).
    pub fn randrange(&mut self, n: u64) -> u64 {
        self.randbelow(n)
    }

    /// `random.shuffle(x)` (in place).
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }

    /// `random.sample(range(n), k)`: the sampled indices, in draw order.
    ///
    /// # Panics
    /// If k > n (Python raises `ValueError: Sample larger than population or is negative`).
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Vec<usize> {
        assert!(k <= n, "Sample larger than population or is negative");
        let mut result = Vec::with_capacity(k);
        if n <= sample_setsize(k) {
            // Pool branch: an n-length list is cheaper than a set.
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow((n - i) as u64) as usize;
                result.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow(n as u64) as usize;
                while selected.contains(&j) {
                    j = self.randbelow(n as u64) as usize;
                }
                selected.insert(j);
                result.push(j);
            }
        }
        result
    }

    /// `random.sample(population, k)`.
    pub fn sample<T: Clone>(&mut self, population: &[T], k: usize) -> Vec<T> {
        self.sample_indices(population.len(), k)
            .into_iter()
            .map(|i| population[i].clone())
            .collect()
    }
}

/// CPython's `sample` threshold: `setsize = 21; if k > 5: setsize += 4 ** ceil(log(k * 3, 4))`;
/// the pool branch is used when `n <= setsize`.
pub fn sample_setsize(k: usize) -> usize {
    let mut setsize = 21usize;
    if k > 5 {
        // math.log(x, 4) == log(x) / log(4) in CPython (both via libm log).
        let e = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil() as u32;
        setsize = setsize.saturating_add(4usize.saturating_pow(e));
    }
    setsize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setsize_matches_cpython_rule() {
        assert_eq!(sample_setsize(0), 21);
        assert_eq!(sample_setsize(5), 21);
        // k=6: log4(18) = 2.08 -> 4^3 = 64
        assert_eq!(sample_setsize(6), 85);
        // k=11: log4(33) = 2.52 -> 64
        assert_eq!(sample_setsize(11), 85);
        // k=26: log4(78) = 3.14 -> 256
        assert_eq!(sample_setsize(26), 277);
    }

    #[test]
    fn first_output_seed_zero() {
        // Python 3.11: random.Random(0).getrandbits(32) == 3626764237
        let mut r = PyRandom::new(0);
        assert_eq!(r.getrandbits(32), 3_626_764_237);
    }
}
