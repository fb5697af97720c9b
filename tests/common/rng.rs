//! Deterministic pseudo-random numbers for test data and benchmarks (xorshift64): the same
//! seed gives the same graph, the same cache, the same rows.

/// A xorshift64 generator; the seed must not be 0 (a zero state stays zero).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 pseudo-random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
