//! The send buffer (bytes from SND.UNA on) and the receive buffer with out-of-order reassembly.
//!
//! Both are bounded by their capacity: a full send buffer refuses bytes (the caller sees
//! `WouldBlock`), and the receive buffer never stores beyond the window it advertised.

use std::collections::BTreeMap;

/// Bytes queued for sending, in a ring: the first byte held is at SND.UNA (or just after the SYN).
///
/// A segment's payload must be one slice; one that would wrap around the ring's end is copied
/// into a small scratch buffer (once per trip around the ring).
#[derive(Debug, Clone)]
pub(crate) struct SendBuffer {
    ring: Vec<u8>,
    /// Ring index of the first byte held.
    head: usize,
    len: usize,
    capacity: usize,
    scratch: Vec<u8>,
}

impl SendBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        SendBuffer { ring: Vec::new(), head: 0, len: 0, capacity, scratch: Vec::new() }
    }

    /// Bytes held (sent-unacknowledged and unsent).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Room left.
    pub(crate) fn free(&self) -> usize {
        self.capacity.saturating_sub(self.len)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity, keeping what is held (never below it). A larger capacity leaves
    /// the ring as it is (it grows when bytes need it): autotuning raises the limit to megabytes,
    /// and a replay spent a tenth of its time zero-filling rings sized to the new limit.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        let capacity = capacity.max(self.len);
        if capacity < self.ring.len() {
            self.reallocate(capacity);
        }
        self.capacity = capacity;
    }

    /// Appends as much of `bytes` as fits; returns how much.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.free());
        if n == 0 {
            return 0;
        }
        if self.ring.len() < self.len + n {
            self.grow(self.len + n);
        }
        let cap = self.ring.len();
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        self.ring[tail..tail + first].copy_from_slice(&bytes[..first]);
        self.ring[..n - first].copy_from_slice(&bytes[first..n]);
        self.len += n;
        n
    }

    /// Makes the ring hold at least `need` bytes (at most `capacity`), doubling from 4 KiB: idle
    /// connections stay small, and one that sends little zeroes little (a replay of many short
    /// connections spent a fifth of its time zero-filling whole send buffers).
    fn grow(&mut self, need: usize) {
        let size = need.next_power_of_two().max(4096).min(self.capacity).max(need);
        self.reallocate(size);
    }

    /// A ring of `size` bytes holding what is held, from its start.
    fn reallocate(&mut self, size: usize) {
        // Copied in, then zeroed only past what is held: a ring grown because it was full is
        // not zero-filled first and then overwritten.
        let mut ring = Vec::with_capacity(size);
        let (a, b) = self.parts(0, self.len);
        ring.extend_from_slice(a);
        ring.extend_from_slice(b);
        ring.resize(size.max(ring.len()), 0);
        self.ring = ring;
        self.head = 0;
    }

    /// The bytes at `offset..offset + len` from the first byte held, as up to two ring slices.
    fn parts(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        let (a, b) = self.part_ranges(offset, len);
        (&self.ring[a], &self.ring[b])
    }

    /// Where [`SendBuffer::parts`] are in the ring.
    fn part_ranges(&self, offset: usize, len: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let start = offset.min(self.len);
        let len = len.min(self.len - start);
        if len == 0 || self.ring.is_empty() {
            return (0..0, 0..0);
        }
        let cap = self.ring.len();
        let i = (self.head + start) % cap;
        let first = len.min(cap - i);
        (i..i + first, 0..len - first)
    }

    /// The bytes at `offset..offset + len` (clipped to what is held) as one slice.
    pub(crate) fn slice(&mut self, offset: usize, len: usize) -> &[u8] {
        let (a, b) = self.part_ranges(offset, len);
        if b.is_empty() {
            return &self.ring[a];
        }
        // Wrapped: copied into the scratch, which keeps its allocation from one wrapped segment
        // to the next.
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.ring[a]);
        self.scratch.extend_from_slice(&self.ring[b]);
        &self.scratch
    }

    /// Drops `n` acknowledged bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 || self.ring.is_empty() { 0 } else { (self.head + n) % self.ring.len() };
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

    /// Grows or shrinks the capacity. An empty buffer takes any capacity; one holding bytes only
    /// grows (autotuning), keeping every byte, in order and out of order, at its stream offset.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        let capacity = capacity.max(1);
        if self.ooo.is_empty() && self.ready == 0 {
            self.capacity = capacity;
            self.ring = Vec::new();
            return;
        }
        // The ring is indexed by its own length, not the capacity: it grows when bytes need it.
        self.capacity = self.capacity.max(capacity);
    }

    /// Makes the ring span at least `need` bytes from the first unread one (at most the
    /// capacity), doubling from 4 KiB as the send buffer does: a connection that receives little
    /// zeroes little (a replay of many short connections spent a quarter of its time
    /// zero-filling whole receive buffers). Every byte held keeps its stream offset.
    fn grow(&mut self, need: usize) {
        let size = need.next_power_of_two().max(4096).min(self.capacity).max(need);
        let old = std::mem::replace(&mut self.ring, vec![0; size]);
        if old.is_empty() {
            return;
        }
        let ranges: Vec<(u64, u64)> = std::iter::once((self.read_off, self.next_offset()))
            .chain(self.ooo.iter().map(|(&s, &e)| (s, e)))
            .collect();
        for (start, end) in ranges {
            let mut off = start;
            while off < end {
                let i = (off % old.len() as u64) as usize;
                let n = ((end - off) as usize).min(old.len() - i);
                self.write_ring(off, &old[i..i + n]);
                off += n as u64;
            }
        }
    }

    /// Bytes ready to read.
    pub(crate) fn ready(&self) -> usize {
        self.ready
    }

    /// Stream offset of the first unread byte (what the application has read).
    pub(crate) fn read_offset(&self) -> u64 {
        self.read_off
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

    /// Where stream offset `off` lies in the ring (which is not empty).
    fn ring_index(&self, off: u64) -> usize {
        let len = self.ring.len();
        if len.is_power_of_two() {
            (off & (len as u64 - 1)) as usize
        } else {
            (off % len as u64) as usize
        }
    }

    /// Copies `bytes` to stream offset `off`, which lies within the ring once grown to reach
    /// their end (the caller clipped them to the capacity).
    fn write_ring(&mut self, off: u64, bytes: &[u8]) {
        let need = (off + bytes.len() as u64 - self.read_off) as usize;
        if self.ring.len() < need {
            self.grow(need);
        }
        let cap = self.ring.len();
        let mut i = self.ring_index(off);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rest.len().min(cap - i);
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
        if n == 0 {
            return 0;
        }
        let cap = self.ring.len();
        let mut i = self.ring_index(self.read_off);
        let mut done = 0;
        while done < n {
            let k = (n - done).min(cap - i);
            buf[done..done + k].copy_from_slice(&self.ring[i..i + k]);
            done += k;
            i = 0;
        }
        self.read_off += n as u64;
        self.ready -= n;
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
    fn receive_buffer_grows_keeping_bytes_in_and_out_of_order() {
        let mut b = RecvBuffer::new(8);
        assert_eq!(b.insert(0, b"abcdef"), 6);
        let mut out = [0u8; 4];
        assert_eq!(b.read(&mut out), 4);
        // The ring has wrapped: "ef" at 4..6, then "ghij" at 6..10 (indices 6, 7, 0, 1).
        assert_eq!(b.insert(6, b"ghij"), 4);
        b.insert(11, b"l");
        b.set_capacity(20);
        assert_eq!(b.capacity(), 20);
        assert_eq!(b.window(), 14);
        assert_eq!(b.insert(10, b"k"), 2);
        b.insert(12, b"mnopqrstuvwxyz");
        let mut all = [0u8; 30];
        let n = b.read(&mut all);
        assert_eq!(&all[..n], b"efghijklmnopqrstuvwx");
    }

    #[test]
    fn receive_ring_grows_on_demand_and_keeps_bytes_at_their_offsets() {
        let mut b = RecvBuffer::new(1 << 20);
        assert_eq!(b.ring.len(), 0, "nothing allocated before data arrives");
        assert_eq!(b.insert(0, b"abc"), 3);
        assert_eq!(b.ring.len(), 4096, "a little data takes the smallest ring, not the capacity");
        let mut out = [0u8; 2];
        assert_eq!(b.read(&mut out), 2);
        // In order up to 4098 (wrapping the 4 KiB ring), and a hole, then data far beyond it.
        assert_eq!(b.insert(3, &[b'x'; 4095]), 4095);
        b.insert(10_000, b"late");
        assert_eq!(b.ring.len(), 16_384);
        assert_eq!(b.insert(4098, &[b'y'; 5902]), 5906);
        let mut all = vec![0u8; 20_000];
        let n = b.read(&mut all);
        assert_eq!(n, 1 + 4095 + 5902 + 4);
        assert_eq!(all[0], b'c');
        assert!(all[1..4096].iter().all(|&c| c == b'x'));
        assert!(all[4096..9998].iter().all(|&c| c == b'y'));
        assert_eq!(&all[9998..n], b"late");
    }

    #[test]
    fn a_larger_send_capacity_allocates_nothing_until_bytes_need_it() {
        let mut s = SendBuffer::new(8192);
        assert_eq!(s.push(b"abc"), 3);
        assert_eq!(s.ring.len(), 4096);
        // Autotuning raises the limit to 4 MiB: the ring stays as it is, bytes and all.
        s.set_capacity(4 << 20);
        assert_eq!(s.ring.len(), 4096, "the ring grows with what is held, not with the limit");
        assert_eq!(s.free(), (4 << 20) - 3);
        assert_eq!(s.push(&[b'x'; 5000]), 5000);
        assert_eq!(s.ring.len(), 8192);
        assert_eq!(s.slice(0, 4), b"abcx");
        // Lowering the limit below the ring (never below what is held) shrinks it.
        s.consume(3);
        s.set_capacity(6000);
        assert_eq!((s.capacity(), s.ring.len()), (6000, 6000));
        assert_eq!(s.slice(4990, 100), &[b'x'; 10]);
    }

    #[test]
    fn send_buffer_wraps_around_its_ring() {
        let mut s = SendBuffer::new(8);
        assert_eq!(s.push(b"abcdef"), 6);
        s.consume(5);
        assert_eq!(s.push(b"ghijklmn"), 7);
        assert_eq!(s.slice(0, 8), b"fghijklm");
        assert_eq!(s.slice(2, 3), b"hij");
        s.set_capacity(16);
        assert_eq!(s.push(b"xy"), 2);
        assert_eq!(s.slice(0, 16), b"fghijklmxy");
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
