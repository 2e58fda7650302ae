//! The send buffer (bytes from SND.UNA on) and the receive buffer with out-of-order reassembly.
//!
//! Both are bounded by their capacity: a full send buffer refuses bytes (the caller sees
//! `WouldBlock`), and the receive buffer never stores beyond the window it advertised.

use std::collections::BTreeMap;

/// Bytes queued for sending: `data[head..]` starts at SND.UNA.
#[derive(Debug, Clone)]
pub(crate) struct SendBuffer {
    data: Vec<u8>,
    head: usize,
    capacity: usize,
}

impl SendBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        SendBuffer { data: Vec::new(), head: 0, capacity }
    }

    /// Bytes held (sent-unacknowledged and unsent).
    pub(crate) fn len(&self) -> usize {
        self.data.len() - self.head
    }

    /// Room left.
    pub(crate) fn free(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    /// Appends as much of `bytes` as fits; returns how much.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.free());
        if n > 0 {
            if self.head > 0 && self.head >= self.data.len() / 2 {
                self.data.drain(..self.head);
                self.head = 0;
            }
            self.data.extend_from_slice(&bytes[..n]);
        }
        n
    }

    /// The bytes at `offset..offset + len` from SND.UNA (clipped to what is held).
    pub(crate) fn slice(&self, offset: usize, len: usize) -> &[u8] {
        let start = (self.head + offset).min(self.data.len());
        let end = (start + len).min(self.data.len());
        &self.data[start..end]
    }

    /// Drops `n` acknowledged bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.data.len());
        if self.head == self.data.len() {
            self.data.clear();
            self.head = 0;
        }
    }
}

/// Received bytes: in-order bytes ready to read, then out-of-order intervals held for
/// reassembly, all within `capacity` bytes from the first unread byte.
///
/// Offsets are stream offsets (`u64`, from the first byte after the SYN) so nothing here wraps.
/// Out-of-order data is an interval map (start -> end), merged on insert: O(log n) per segment.
#[derive(Debug, Clone)]
pub(crate) struct RecvBuffer {
    ring: Vec<u8>,
    /// Stream offset of the first unread byte.
    read_off: u64,
    /// Bytes ready to read from `read_off`.
    ready: usize,
    /// Out-of-order intervals beyond `read_off + ready`, disjoint and not adjacent.
    ooo: BTreeMap<u64, u64>,
    /// The interval most recently added to, for the first SACK block (RFC 2018 §4).
    last_touched: Option<u64>,
    capacity: usize,
}

impl RecvBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        RecvBuffer {
            ring: Vec::new(),
            read_off: 0,
            ready: 0,
            ooo: BTreeMap::new(),
            last_touched: None,
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Grows or shrinks the capacity; shrinking below what is held is refused.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        if self.ooo.is_empty() && self.ready == 0 && self.ring.is_empty() {
            self.capacity = capacity.max(1);
        }
    }

    /// Bytes ready to read.
    pub(crate) fn ready(&self) -> usize {
        self.ready
    }

    /// Stream offset just after the in-order bytes (RCV.NXT's offset).
    pub(crate) fn next_offset(&self) -> u64 {
        self.read_off + self.ready as u64
    }

    /// Room from RCV.NXT to the end of the buffer: the window to advertise.
    pub(crate) fn window(&self) -> usize {
        self.capacity - self.ready
    }

    /// Bytes held out of order.
    pub(crate) fn out_of_order_bytes(&self) -> usize {
        self.ooo.iter().map(|(s, e)| (e - s) as usize).sum()
    }

    /// Whether any out-of-order data is held.
    pub(crate) fn has_holes(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Out-of-order intervals as stream offsets, the most recently touched first.
    pub(crate) fn sack_intervals(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let first = self.last_touched.and_then(|s| self.ooo.get(&s).map(|&e| (s, e)));
        first.into_iter().chain(
            self.ooo.iter().rev().map(|(&s, &e)| (s, e)).filter(move |&(s, _)| Some(s) != self.last_touched),
        )
    }

    fn ring_index(&self, off: u64) -> usize {
        (off % self.capacity as u64) as usize
    }

    fn write_ring(&mut self, off: u64, bytes: &[u8]) {
        if self.ring.len() < self.capacity {
            self.ring.resize(self.capacity, 0);
        }
        let mut i = self.ring_index(off);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rest.len().min(self.capacity - i);
            self.ring[i..i + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            i = 0;
        }
    }

    /// Stores `bytes` at stream offset `off`, clipped to the window. Returns how many bytes became
    /// ready in order (0 for out-of-order or duplicate data).
    pub(crate) fn insert(&mut self, off: u64, bytes: &[u8]) -> usize {
        let next = self.next_offset();
        let limit = self.read_off + self.capacity as u64;
        let mut start = off;
        let mut data = bytes;
        if start < next {
            let skip = (next - start).min(data.len() as u64) as usize;
            data = &data[skip..];
            start = next;
        }
        let end = (start + data.len() as u64).min(limit);
        if end <= start {
            return 0;
        }
        let data = &data[..(end - start) as usize];
        self.write_ring(start, data);
        if start == next {
            let mut new_end = end;
            // Absorb out-of-order intervals the new data reaches.
            while let Some((&s, &e)) = self.ooo.first_key_value() {
                if s > new_end {
                    break;
                }
                new_end = new_end.max(e);
                self.ooo.remove(&s);
                if self.last_touched == Some(s) {
                    self.last_touched = None;
                }
            }
            let before = self.ready;
            self.ready = (new_end - self.read_off) as usize;
            self.ready - before
        } else {
            // Merge with any overlapping or adjacent intervals.
            let mut s = start;
            let mut e = end;
            if let Some((&ps, &pe)) = self.ooo.range(..=s).next_back() {
                if pe >= s {
                    s = ps;
                    e = e.max(pe);
                    self.ooo.remove(&ps);
                }
            }
            while let Some((&ns, &ne)) = self.ooo.range(s..).next() {
                if ns > e {
                    break;
                }
                e = e.max(ne);
                self.ooo.remove(&ns);
            }
            self.ooo.insert(s, e);
            self.last_touched = Some(s);
            0
        }
    }

    /// Copies ready bytes into `buf`; returns how many.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.ready);
        let mut i = self.ring_index(self.read_off);
        let mut done = 0;
        while done < n {
            let k = (n - done).min(self.capacity - i);
            buf[done..done + k].copy_from_slice(&self.ring[i..i + k]);
            done += k;
            i = 0;
        }
        self.read_off += n as u64;
        self.ready -= n;
        if self.ready == 0 && self.ooo.is_empty() {
            // Nothing held: let the memory go (idle connections stay small).
            self.ring = Vec::new();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_data_is_held_until_the_hole_fills() {
        let mut b = RecvBuffer::new(100);
        assert_eq!(b.insert(10, b"klmno"), 0);
        assert_eq!(b.insert(20, b"uv"), 0);
        assert_eq!(b.sack_intervals().collect::<Vec<_>>(), vec![(20, 22), (10, 15)]);
        assert_eq!(b.insert(0, b"abcdefghij"), 15);
        assert_eq!(b.insert(15, b"pqrst"), 7);
        let mut out = [0u8; 30];
        assert_eq!(b.read(&mut out), 22);
        assert_eq!(&out[..22], b"abcdefghijklmnopqrstuv");
    }

    #[test]
    fn data_beyond_the_window_is_clipped_and_duplicates_ignored() {
        let mut b = RecvBuffer::new(8);
        assert_eq!(b.insert(0, b"0123456789"), 8);
        assert_eq!(b.window(), 0);
        assert_eq!(b.insert(0, b"0123"), 0);
        let mut out = [0u8; 4];
        assert_eq!(b.read(&mut out), 4);
        assert_eq!(b.insert(8, b"89ab"), 4);
        let mut rest = [0u8; 8];
        assert_eq!(b.read(&mut rest), 8);
        assert_eq!(&rest, b"456789ab");
    }

    #[test]
    fn overlapping_out_of_order_intervals_merge() {
        let mut b = RecvBuffer::new(100);
        b.insert(10, b"aaaa");
        b.insert(20, b"bbbb");
        b.insert(12, b"cccccccccc");
        assert_eq!(b.sack_intervals().collect::<Vec<_>>(), vec![(10, 24)]);
        assert_eq!(b.out_of_order_bytes(), 14);
    }

    #[test]
    fn send_buffer_is_bounded() {
        let mut s = SendBuffer::new(10);
        assert_eq!(s.push(b"0123456789abc"), 10);
        assert_eq!(s.push(b"x"), 0);
        s.consume(4);
        assert_eq!(s.slice(0, 3), b"456");
        assert_eq!(s.push(b"xyz"), 3);
        assert_eq!(s.slice(4, 10), b"89xyz");
    }
}
