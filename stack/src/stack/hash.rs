//! The connection table's hasher, keyed from the configured secret.
//!
//! Must not depend on: OS randomness (the key comes from `Config::isn_secret`).

use crate::tcp::isn;

/// A fast keyed hash for the connection table: FxHash-style mixing from a key derived from the
/// configured secret (the core reads no OS randomness), so hash flooding needs the secret.
#[derive(Debug, Clone)]
pub(super) struct KeyedHash(u64);

impl KeyedHash {
    pub(super) fn new(secret: &[u8; 16]) -> Self {
        KeyedHash(isn::siphash24(secret, b"connection-table") | 1)
    }
}

impl std::hash::BuildHasher for KeyedHash {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher(self.0)
    }
}

/// The hasher of [`KeyedHash`].
#[derive(Debug)]
pub(super) struct KeyedHasher(u64);

impl std::hash::Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn finish(&self) -> u64 {
        // A final avalanche so that the low bits the table uses depend on every input bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}
