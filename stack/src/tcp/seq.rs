//! Sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).
//!
//! Never compare raw `u32` sequence numbers; compare `SeqNum`s, whose ordering is only meaningful
//! between numbers less than 2^31 apart, as the RFC requires.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number with wrapping arithmetic and comparison.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The raw 32-bit value as it goes on the wire.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// `self - other` as a signed distance, valid when the two are less than 2^31 apart.
    pub const fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The larger of the two under wrapping comparison.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self >= other {
            self
        } else {
            other
        }
    }

    /// The smaller of the two under wrapping comparison.
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self <= other {
            self
        } else {
            other
        }
    }

    /// `lo <= self < hi` under wrapping comparison.
    pub fn in_range(self, lo: SeqNum, hi: SeqNum) -> bool {
        lo <= self && self < hi
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeqNum {
    /// Wrapping order: `a < b` when `b - a` taken modulo 2^32 is in 1..2^31.
    ///
    /// This is not a total order over all of `u32` (it is not transitive across half the space);
    /// it is the comparison RFC 9293 §3.4 prescribes for numbers within 2^31 of each other.
    fn cmp(&self, other: &SeqNum) -> Ordering {
        self.diff(*other).cmp(&0)
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;
    fn add(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNum {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<usize> for SeqNum {
    type Output = SeqNum;
    fn sub(self, rhs: usize) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs as u32))
    }
}

impl Sub for SeqNum {
    type Output = usize;
    /// The number of sequence numbers from `rhs` up to `self`; `self` must not be before `rhs`.
    fn sub(self, rhs: SeqNum) -> usize {
        let d = self.diff(rhs);
        debug_assert!(d >= 0, "sequence subtraction went negative: {self} - {rhs}");
        d.max(0) as usize
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_wraps_around_two_to_the_32() {
        // RFC 9293 §3.4: arithmetic on sequence numbers is modulo 2^32.
        assert!(SeqNum(u32::MAX) < SeqNum(0));
        assert!(SeqNum(u32::MAX - 10) < SeqNum(5));
        assert!(SeqNum(5) > SeqNum(u32::MAX - 10));
        assert_eq!(SeqNum(3) - SeqNum(u32::MAX), 4);
        assert_eq!(SeqNum(u32::MAX) + 2usize, SeqNum(1));
    }

    #[test]
    fn in_range_is_half_open() {
        assert!(SeqNum(10).in_range(SeqNum(10), SeqNum(11)));
        assert!(!SeqNum(11).in_range(SeqNum(10), SeqNum(11)));
        assert!(SeqNum(0).in_range(SeqNum(u32::MAX), SeqNum(1)));
    }
}
