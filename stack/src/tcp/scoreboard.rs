//! What the sender knows of each segment it sent and the peer has not yet acknowledged
//! cumulatively: when it went out, whether it was retransmitted, SACKed (RFC 2018) or is deemed
//! lost. The RFC 6675 scoreboard and the per-segment transmit times RACK needs (RFC 8985 §5.2),
//! in one sequence-ordered queue, as Linux keeps them on its retransmission queue.
//!
//! Loss is decided by the connection (RACK, the duplicate-ACK threshold, a timeout); this module
//! records the marks and keeps the counts that RFC 6675's `pipe` is made of.
//!
//! Must not depend on: clocks (times are given), I/O, anything in the crate but `seq` and `time`.

use crate::tcp::seq::SeqNum;
use crate::time::Instant;
use std::collections::VecDeque;

/// One transmitted segment: `[start, end)` in sequence space (a FIN counts as its last number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) start: SeqNum,
    pub(crate) end: SeqNum,
    /// When it was last (re)transmitted.
    pub(crate) xmit: Instant,
    /// It was retransmitted at least once (RTT samples from it are ambiguous).
    pub(crate) ever_retransmitted: bool,
    /// A retransmission of it is in flight (counted in `pipe` again).
    pub(crate) retrans: bool,
    /// The peer SACKed it.
    pub(crate) sacked: bool,
    /// Deemed lost (by RACK, the DupThresh rule or a timeout) and not SACKed since.
    pub(crate) lost: bool,
}

impl Sent {
    fn len(&self) -> u32 {
        (self.end - self.start) as u32
    }
}

/// What a cumulative ACK or SACK blocks newly delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Bytes newly SACKed (RFC 6937's DeliveredData counts them with the cumulative ACK's).
    pub(crate) sacked: u32,
    /// Bytes newly acknowledged cumulatively that had not been SACKed before.
    pub(crate) acked_unsacked: u32,
    /// The newest transmission among the newly delivered segments (RACK.xmit_ts and end_seq,
    /// RFC 8985 §6.2 step 2), and whether that segment was ever retransmitted.
    pub(crate) newest: Option<(Instant, SeqNum, bool)>,
    /// A segment never retransmitted was delivered below one already SACKed: the network
    /// reordered (RFC 8985 §6.2 step 3).
    pub(crate) reordering: bool,
    /// How far below the highest SACKed sequence number a segment never retransmitted was
    /// delivered, in bytes (the most of this ACK): Linux's reordering metric,
    /// `tcp_check_sack_reordering`'s FACK less the segment's start.
    pub(crate) reorder_distance: u32,
    /// A segment never retransmitted was delivered (F-RTO's test, RFC 5682 §2.1 step 3 b).
    pub(crate) original: bool,
    /// When the first segment the cumulative ACK newly acknowledged (not SACKed before) was
    /// sent, for an RTT sample from send times (Linux's `first_ackt`).
    pub(crate) first_acked_xmit: Option<Instant>,
    /// When the last of them was sent (Linux's `last_ackt`, the RTT congestion control sees).
    pub(crate) last_acked_xmit: Option<Instant>,
    /// A segment the cumulative ACK took had been retransmitted: no send time tells the RTT
    /// (Karn's rule, RFC 6298 §3).
    pub(crate) acked_retransmitted: bool,
}

impl Delivered {
    fn note(&mut self, s: &Sent) {
        self.original |= !s.ever_retransmitted;
        let newer = match self.newest {
            None => true,
            Some((t, end, _)) => s.xmit > t || (s.xmit == t && s.end > end),
        };
        if newer {
            self.newest = Some((s.xmit, s.end, s.ever_retransmitted));
        }
    }
}

/// Declares `s` (not SACKed) lost, its retransmission in flight too if there is one: it is
/// to be sent again. `lost` and `retrans` are the scoreboard's counts.
fn declare_lost(s: &mut Sent, lost: &mut u32, retrans: &mut u32) {
    if s.retrans {
        s.retrans = false;
        *retrans -= s.len();
    }
    if !s.lost {
        s.lost = true;
        *lost += s.len();
    }
}

/// The segments from SND.UNA to SND.MAX, in sequence order, with the RFC 6675 counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scoreboard {
    segs: VecDeque<Sent>,
    /// Bytes SACKed.
    sacked: u32,
    /// Bytes deemed lost and not SACKed (retransmitted or not).
    lost: u32,
    /// Bytes of retransmissions in flight.
    retrans: u32,
    /// The highest sequence number SACKed (RFC 6675's HighACK... its SACK-side counterpart).
    high_sacked: Option<SeqNum>,
}

impl Scoreboard {
    /// Bytes SACKed above SND.UNA.
    pub(crate) fn sacked_bytes(&self) -> u32 {
        self.sacked
    }

    /// Bytes deemed lost and not SACKed.
    pub(crate) fn lost_bytes(&self) -> u32 {
        self.lost
    }

    /// Bytes of retransmissions in flight.
    pub(crate) fn retrans_bytes(&self) -> u32 {
        self.retrans
    }

    /// Whether anything is marked lost (retransmitted or not).
    pub(crate) fn any_lost(&self) -> bool {
        self.lost > 0
    }

    /// RFC 6675 §4 `pipe`: the bytes the sender believes are in the network, from `outstanding`
    /// (SND.MAX - SND.UNA): what is neither SACKed nor lost, plus retransmissions in flight (as
    /// Linux's `tcp_packets_in_flight`).
    pub(crate) fn pipe(&self, outstanding: u32) -> u32 {
        outstanding.saturating_sub(self.sacked + self.lost).saturating_add(self.retrans)
    }

    /// Whether the scoreboard is empty (nothing outstanding).
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Records new data (or a SYN or FIN) sent at `now`.
    pub(crate) fn on_send(&mut self, start: SeqNum, end: SeqNum, now: Instant) {
        if end <= start {
            return;
        }
        if let Some(last) = self.segs.back() {
            if start < last.end {
                // Sent again from below SND.MAX: a retransmission, not new data.
                return self.on_retransmit(start, end, now);
            }
        }
        self.segs.push_back(Sent {
            start,
            end,
            xmit: now,
            ever_retransmitted: false,
            retrans: false,
            sacked: false,
            lost: false,
        });
    }

    /// Splits the segment holding `at` so that one begins there; returns the index of the
    /// segment beginning at or after `at`.
    fn split_at(&mut self, at: SeqNum) -> usize {
        let i = self.segs.partition_point(|s| s.end <= at);
        if let Some(s) = self.segs.get(i).copied() {
            if s.start < at {
                let mut head = s;
                head.end = at;
                self.segs[i].start = at;
                self.segs.insert(i, head);
                return i + 1;
            }
        }
        i
    }

    /// Records a retransmission of `[start, end)` at `now`.
    pub(crate) fn on_retransmit(&mut self, start: SeqNum, end: SeqNum, now: Instant) {
        let mut i = self.split_at(start);
        self.split_at(end);
        while let Some(s) = self.segs.get_mut(i) {
            if s.start >= end {
                break;
            }
            s.xmit = now;
            s.ever_retransmitted = true;
            if !s.retrans && !s.sacked {
                s.retrans = true;
                self.retrans += s.len();
            }
            i += 1;
        }
    }

    /// The cumulative ACK reached `una`: forgets what lies below it.
    pub(crate) fn on_ack(&mut self, una: SeqNum, d: &mut Delivered) {
        while let Some(front) = self.segs.front_mut() {
            if front.start >= una {
                break;
            }
            let whole = front.end <= una;
            let part = if whole { *front } else { Sent { end: una, ..*front } };
            if part.ever_retransmitted {
                d.acked_retransmitted = true;
            } else if !part.sacked {
                d.first_acked_xmit = d.first_acked_xmit.or(Some(part.xmit));
                d.last_acked_xmit = Some(part.xmit);
            }
            self.forget(&part, d);
            if whole {
                self.segs.pop_front();
            } else if let Some(front) = self.segs.front_mut() {
                front.start = una;
            }
        }
        if self.segs.is_empty() {
            self.high_sacked = None;
        }
    }

    fn forget(&mut self, s: &Sent, d: &mut Delivered) {
        let len = s.len();
        if s.sacked {
            self.sacked -= len;
        } else {
            d.acked_unsacked += len;
            d.note(s);
            if let Some(h) = self.high_sacked.filter(|&h| !s.ever_retransmitted && s.end < h) {
                d.reordering = true;
                d.reorder_distance = d.reorder_distance.max((h - s.start) as u32);
            }
            if s.lost {
                self.lost -= len;
            }
            if s.retrans {
                self.retrans -= len;
            }
        }
    }

    /// Marks what the SACK blocks `[l, r)` cover (RFC 2018 §3), ignoring blocks outside
    /// `[una, max)` and D-SACK blocks (RFC 2883).
    pub(crate) fn on_sack(
        &mut self,
        blocks: &[(SeqNum, SeqNum)],
        una: SeqNum,
        max: SeqNum,
        d: &mut Delivered,
    ) {
        // The lowest segment never retransmitted that this ACK SACKs below one SACKed before.
        let mut reordered: Option<SeqNum> = None;
        for &(l, r) in blocks {
            let l = l.max(una);
            let r = r.min(max);
            if r <= l {
                continue;
            }
            let mut i = self.split_at(l);
            self.split_at(r);
            while let Some(s) = self.segs.get(i).copied() {
                if s.start >= r {
                    break;
                }
                if !s.sacked {
                    let len = s.len();
                    if !s.ever_retransmitted && self.high_sacked.is_some_and(|h| s.end < h) {
                        d.reordering = true;
                        reordered = Some(reordered.map_or(s.start, |x| x.min(s.start)));
                    }
                    d.sacked += len;
                    d.note(&s);
                    self.sacked += len;
                    if s.lost {
                        self.lost -= len;
                    }
                    if s.retrans {
                        self.retrans -= len;
                    }
                    let m = &mut self.segs[i];
                    m.sacked = true;
                    m.lost = false;
                    m.retrans = false;
                }
                i += 1;
            }
            if self.high_sacked.is_none_or(|h| r > h) {
                self.high_sacked = Some(r);
            }
        }
        // Measured from the highest SACK once this ACK's blocks are in, as Linux does.
        if let (Some(low), Some(h)) = (reordered, self.high_sacked) {
            d.reorder_distance = d.reorder_distance.max((h - low) as u32);
        }
    }

    /// RFC 8985 §6.2 step 5, RACK_detect_loss: marks lost every segment sent before the newest
    /// delivered one (`rack_xmit`, `rack_end`) whose time is up (`xmit + rtt + reo_wnd <= now`);
    /// returns the bytes newly marked and, if some are not yet due, how long until the first
    /// is (the reordering timer).
    pub(crate) fn rack_detect(
        &mut self,
        now: Instant,
        rack_xmit: Instant,
        rack_end: SeqNum,
        wait: crate::time::Duration,
    ) -> (u32, Option<Instant>) {
        let mut marked = 0;
        let mut timer: Option<Instant> = None;
        for s in self.segs.iter_mut() {
            if s.sacked || (s.lost && !s.retrans) {
                continue;
            }
            let sent_after = s.xmit > rack_xmit || (s.xmit == rack_xmit && s.end >= rack_end);
            if sent_after {
                if !s.ever_retransmitted {
                    // Segments further on were sent later still: nothing more to examine.
                    break;
                }
                continue;
            }
            let due = s.xmit + wait;
            if due <= now {
                // RFC 8985 §6.2: a lost retransmission is lost again.
                declare_lost(s, &mut self.lost, &mut self.retrans);
                marked += s.len();
            } else {
                timer = Some(timer.map_or(due, |t| t.min(due)));
            }
        }
        (marked, timer)
    }

    /// Marks the first outstanding segment lost (the DupThresh rule, RFC 6675 §5, and NewReno's
    /// partial ACK, RFC 6582 §3.2). Returns whether it was newly marked.
    pub(crate) fn mark_first_lost(&mut self) -> bool {
        match self.segs.front_mut() {
            Some(s) if !s.sacked && (!s.lost || s.retrans) => {
                declare_lost(s, &mut self.lost, &mut self.retrans);
                true
            }
            _ => false,
        }
    }

    /// RFC 6675 §4 IsLost for every segment: more than `threshold` bytes ((DupThresh - 1) *
    /// SMSS) SACKed above it. Returns the bytes newly marked.
    pub(crate) fn mark_lost_by_dupthresh(&mut self, threshold: u32) -> u32 {
        if self.sacked <= threshold {
            return 0;
        }
        let mut above = 0u32;
        let mut marked = 0;
        for s in self.segs.iter_mut().rev() {
            if s.sacked {
                above += s.len();
                continue;
            }
            if above > threshold && !s.lost {
                s.lost = true;
                self.lost += s.len();
                marked += s.len();
            }
        }
        marked
    }

    /// Takes back every loss mark (a spurious timeout, RFC 5682): retransmissions in flight stay
    /// counted as such.
    pub(crate) fn clear_lost(&mut self) {
        for s in self.segs.iter_mut() {
            s.lost = false;
        }
        self.lost = 0;
    }

    /// A retransmission timeout: everything not SACKed is deemed lost (RFC 6675 §5.1, RFC 8985
    /// §6.3), so recovery resends only what the scoreboard says is missing.
    pub(crate) fn mark_all_lost(&mut self) {
        for s in self.segs.iter_mut() {
            if !s.sacked {
                s.retrans = false;
                s.lost = true;
            }
        }
        self.retrans = 0;
        self.lost = self.segs.iter().filter(|s| !s.sacked).map(Sent::len).sum();
    }

    /// RFC 6675 §4 NextSeg (1): the first segment deemed lost and not yet retransmitted, with
    /// the lost segments right after it, `[start, end)` (the caller cuts it to the MSS; segments
    /// sent smaller than today's MSS are sent again together, as Linux collapses them).
    pub(crate) fn next_lost(&self) -> Option<(SeqNum, SeqNum)> {
        if self.lost == 0 {
            return None;
        }
        let resend = |s: &Sent| s.lost && !s.retrans && !s.sacked;
        let i = self.segs.iter().position(resend)?;
        let start = self.segs[i].start;
        let mut end = self.segs[i].end;
        for s in self.segs.iter().skip(i + 1) {
            if !resend(s) || s.start != end {
                break;
            }
            end = s.end;
        }
        Some((start, end))
    }

    /// RFC 6675 §4 NextSeg (3): the first segment below the highest SACKed sequence number
    /// (1.b) that is neither SACKed nor being retransmitted (1.a, as for rule (1)), whether
    /// deemed lost or not (1.c excluded), with the like segments right after it, `[start, end)`
    /// (the caller cuts it to the MSS). It ends below the highest SACK, at a SACKed segment.
    pub(crate) fn next_below_highest_sack(&self) -> Option<(SeqNum, SeqNum)> {
        let high = self.high_sacked?;
        let resend = |s: &Sent| !s.sacked && !s.retrans && s.start < high;
        let i = self.segs.iter().position(resend)?;
        let start = self.segs[i].start;
        let mut end = self.segs[i].end;
        for s in self.segs.iter().skip(i + 1) {
            if !resend(s) || s.start != end {
                break;
            }
            end = s.end;
        }
        Some((start, end))
    }

    /// RFC 6675 §4 NextSeg (4): the highest segment neither SACKed nor being retransmitted.
    pub(crate) fn rescue_candidate(&self) -> Option<(SeqNum, SeqNum)> {
        self.segs.iter().rev().find(|s| !s.sacked && !s.retrans).map(|s| (s.start, s.end))
    }

    /// The last segment outstanding, for a tail loss probe (RFC 8985 §7.3).
    pub(crate) fn last(&self) -> Option<(SeqNum, SeqNum)> {
        self.segs.back().map(|s| (s.start, s.end))
    }

    /// Checks the counts against the segments (for `check_invariants`).
    pub(crate) fn check(&self, una: SeqNum, max: SeqNum) -> Result<(), String> {
        let sacked: u32 = self.segs.iter().filter(|s| s.sacked).map(Sent::len).sum();
        let lost: u32 = self.segs.iter().filter(|s| s.lost && !s.sacked).map(Sent::len).sum();
        let retrans: u32 = self.segs.iter().filter(|s| s.retrans && !s.sacked).map(Sent::len).sum();
        if (sacked, lost, retrans) != (self.sacked, self.lost, self.retrans) {
            return Err(format!(
                "scoreboard counts sacked/lost/retrans {}/{}/{} but holds {}/{}/{}",
                self.sacked, self.lost, self.retrans, sacked, lost, retrans
            ));
        }
        let mut at = una;
        for s in &self.segs {
            if s.start != at || s.end <= s.start {
                return Err(format!("scoreboard segment {}..{} does not follow {}", s.start, s.end, at));
            }
            at = s.end;
        }
        if !self.segs.is_empty() && at != max {
            return Err(format!("scoreboard ends at {} but SND.MAX is {}", at, max));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn board(n: u32) -> Scoreboard {
        let mut b = Scoreboard::default();
        for i in 0..n {
            b.on_send(SeqNum(i * 100), SeqNum((i + 1) * 100), t(u64::from(i)));
        }
        b
    }

    #[test]
    fn rfc6675_pipe_counts_neither_sacked_nor_lost_but_retransmissions() {
        let mut b = board(10);
        assert_eq!(b.pipe(1000), 1000);
        let mut d = Delivered::default();
        b.on_sack(&[(SeqNum(300), SeqNum(500))], SeqNum(0), SeqNum(1000), &mut d);
        assert_eq!(d.sacked, 200);
        assert_eq!(b.pipe(1000), 800);
        assert!(b.mark_first_lost());
        assert_eq!(b.pipe(1000), 700);
        assert_eq!(b.next_lost(), Some((SeqNum(0), SeqNum(100))));
        b.on_retransmit(SeqNum(0), SeqNum(100), t(50));
        assert_eq!(b.pipe(1000), 800);
        assert_eq!(b.next_lost(), None);
        b.check(SeqNum(0), SeqNum(1000)).unwrap();
    }

    #[test]
    fn rfc8985_rack_marks_segments_sent_before_the_newest_delivered_once_their_time_is_up() {
        let mut b = board(10);
        let mut d = Delivered::default();
        // Segment 5 (sent at 5 ms) is SACKed at 30 ms; segments 0..5 were sent before it.
        b.on_sack(&[(SeqNum(500), SeqNum(600))], SeqNum(0), SeqNum(1000), &mut d);
        assert_eq!(d.newest.map(|n| n.0), Some(t(5)));
        // With RTT 20 ms and a 4 ms window, segment 0 is due at 24 ms, segment 4 at 28 ms.
        let (marked, timer) = b.rack_detect(t(26), t(5), SeqNum(600), Duration::from_millis(24));
        assert_eq!(marked, 300);
        assert_eq!(timer, Some(t(27)));
        assert_eq!(b.next_lost(), Some((SeqNum(0), SeqNum(300))));
        // Segments 6..9 were sent after the newest delivered: never marked.
        let (marked, _) = b.rack_detect(t(100), t(5), SeqNum(600), Duration::from_millis(24));
        assert_eq!(marked, 200);
        assert!(!b.segs.iter().skip(6).any(|s| s.lost));
        b.check(SeqNum(0), SeqNum(1000)).unwrap();
    }

    #[test]
    fn rfc8985_a_lost_retransmission_is_detected_when_a_later_transmission_is_delivered() {
        let mut b = board(4);
        b.mark_first_lost();
        b.on_retransmit(SeqNum(0), SeqNum(100), t(40));
        assert_eq!(b.next_lost(), None);
        // New data sent at 41 ms is SACKed: the retransmission (sent at 40 ms) is overdue.
        b.on_send(SeqNum(400), SeqNum(500), t(41));
        let mut d = Delivered::default();
        b.on_sack(&[(SeqNum(400), SeqNum(500))], SeqNum(0), SeqNum(500), &mut d);
        let (xmit, end, _) = d.newest.unwrap();
        let (marked, _) = b.rack_detect(t(70), xmit, end, Duration::from_millis(20));
        assert_eq!(marked, 400);
        assert_eq!(b.next_lost(), Some((SeqNum(0), SeqNum(400))));
        assert_eq!(b.pipe(500), 0, "all four lost, the fifth SACKed");
        b.check(SeqNum(0), SeqNum(500)).unwrap();
    }

    /// Linux's reordering metric (tcp_check_sack_reordering): how far below the highest SACK,
    /// once this ACK's blocks are in, a segment never retransmitted was delivered.
    #[test]
    fn reordering_distance_is_measured_from_the_highest_sack_to_the_segment_delivered_late() {
        let mut b = board(10);
        let mut d = Delivered::default();
        b.on_sack(&[(SeqNum(700), SeqNum(800))], SeqNum(0), SeqNum(1000), &mut d);
        assert_eq!(d.reorder_distance, 0, "nothing was SACKed before: no reordering yet");
        let mut d = Delivered::default();
        // Two blocks in one ACK: 300..400 below the older 700..800, and 800..900 above it.
        b.on_sack(&[(SeqNum(300), SeqNum(400)), (SeqNum(800), SeqNum(900))], SeqNum(0), SeqNum(1000), &mut d);
        assert_eq!(d.reorder_distance, 600, "900 (the highest SACK after this ACK) less 300");
        // A retransmitted segment delivered late says nothing of the network's reordering.
        b.mark_first_lost();
        b.on_retransmit(SeqNum(0), SeqNum(100), t(40));
        let mut d = Delivered::default();
        b.on_ack(SeqNum(100), &mut d);
        assert_eq!(d.reorder_distance, 0);
        // A cumulative ACK of a segment never retransmitted, below the highest SACK.
        let mut d = Delivered::default();
        b.on_ack(SeqNum(200), &mut d);
        assert_eq!(d.reorder_distance, 800, "900 less 100");
        b.check(SeqNum(200), SeqNum(1000)).unwrap();
    }

    #[test]
    fn cumulative_ack_splits_a_partly_acknowledged_segment_and_reports_reordering() {
        let mut b = board(4);
        let mut d = Delivered::default();
        b.on_sack(&[(SeqNum(300), SeqNum(400))], SeqNum(0), SeqNum(400), &mut d);
        let mut d = Delivered::default();
        b.on_ack(SeqNum(150), &mut d);
        assert_eq!(d.acked_unsacked, 150);
        assert!(d.reordering, "segment 0 was never retransmitted and arrived below a SACKed one");
        b.check(SeqNum(150), SeqNum(400)).unwrap();
        let mut d = Delivered::default();
        b.on_ack(SeqNum(400), &mut d);
        assert_eq!(d.acked_unsacked, 150);
        assert!(b.is_empty());
        assert_eq!(b.sacked_bytes(), 0);
    }

    #[test]
    fn rfc6675_islost_marks_segments_with_more_than_two_mss_sacked_above() {
        let mut b = board(8);
        let mut d = Delivered::default();
        // Segments 1, 3, 5 and 6 SACKed: 0 and 2 have three or more above, 4 has two.
        let blocks = [(SeqNum(100), SeqNum(200)), (SeqNum(300), SeqNum(400)), (SeqNum(500), SeqNum(700))];
        b.on_sack(&blocks, SeqNum(0), SeqNum(800), &mut d);
        assert_eq!(b.mark_lost_by_dupthresh(200), 200);
        let lost: Vec<u32> = b.segs.iter().filter(|s| s.lost).map(|s| s.start.0).collect();
        assert_eq!(lost, vec![0, 200]);
        b.check(SeqNum(0), SeqNum(800)).unwrap();
    }

    #[test]
    fn rfc6675_nextseg_rule3_takes_holes_below_the_highest_sack_lost_or_not() {
        let mut b = board(8);
        assert_eq!(b.next_below_highest_sack(), None, "nothing SACKed: no hole below a SACK");
        let mut d = Delivered::default();
        // Segments 1 and 4 SACKed: 0, 2 and 3 are holes below the highest SACK (500), 5 to 7
        // lie above it.
        b.on_sack(&[(SeqNum(100), SeqNum(200)), (SeqNum(400), SeqNum(500))], SeqNum(0), SeqNum(800), &mut d);
        assert_eq!(b.next_below_highest_sack(), Some((SeqNum(0), SeqNum(100))));
        b.on_retransmit(SeqNum(0), SeqNum(100), t(50));
        // The next hole, whole up to the SACKed segment 4; not lost, and taken all the same.
        assert_eq!(b.next_below_highest_sack(), Some((SeqNum(200), SeqNum(400))));
        b.on_retransmit(SeqNum(200), SeqNum(400), t(50));
        assert_eq!(b.next_below_highest_sack(), None, "5 to 7 are above the highest SACK");
        b.check(SeqNum(0), SeqNum(800)).unwrap();
    }

    #[test]
    fn rfc6675_s5_1_after_a_timeout_only_unsacked_segments_are_resent() {
        let mut b = board(5);
        let mut d = Delivered::default();
        b.on_sack(&[(SeqNum(100), SeqNum(300))], SeqNum(0), SeqNum(500), &mut d);
        b.mark_all_lost();
        let mut resent = Vec::new();
        while let Some((s, e)) = b.next_lost() {
            resent.push(s.0);
            b.on_retransmit(s, e, t(100));
        }
        // One run from 0 and one from 300 (the caller cuts each to the MSS).
        assert_eq!(resent, vec![0, 300]);
        b.check(SeqNum(0), SeqNum(500)).unwrap();
    }
}
