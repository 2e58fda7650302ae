//! Notes that repeat: a capture taken with checksum offload carries the same note ("checksum ...
//! in the capture, ... computed: injected with a correct one") on every packet, and one cut by a
//! short snap length says "sliced" on every packet. A [`Tally`] groups notes by their kind (the
//! text with its numbers taken out) so that a summary says each kind once with a count, and a
//! transcript shows a repeating kind on its first packet only.
//!
//! Must not depend on: the stack, replay or capture types; it sees text and record numbers only.

/// A kind seen on more than this many packets is a repeating one: said once with a count.
pub const REPEAT_AFTER: usize = 3;

/// A note's kind: its text with every number (decimal or `0x` hex) replaced by `#`, so that
/// `checksum 0x1a2b in the capture` and `checksum 0x3c4d in the capture` are one kind.
pub fn kind(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let hex = b[i] == b'0' && b.get(i + 1) == Some(&b'x');
            i += if hex { 2 } else { 1 };
            while i < b.len() && (b[i].is_ascii_digit() || (hex && b[i].is_ascii_hexdigit())) {
                i += 1;
            }
            out.push('#');
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// One kind of note: how often it was said, and the first time in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The kind ([`kind`] of the text).
    pub kind: String,
    /// The first note of the kind, in full.
    pub first: String,
    /// The record number of the first packet that carried it.
    pub first_record: u64,
    /// Packets that carried a note of the kind (a packet with two notes of one kind counts once).
    pub count: usize,
    /// The record number of the latest packet that carried it.
    pub last_record: u64,
}

/// Notes grouped by kind, in the order each kind first appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    groups: Vec<Group>,
}

impl Tally {
    /// Counts one note carried by record `record`.
    pub fn add(&mut self, record: u64, text: &str) {
        let k = kind(text);
        match self.groups.iter_mut().find(|g| g.kind == k) {
            Some(g) if g.last_record == record => {}
            Some(g) => {
                g.count += 1;
                g.last_record = record;
            }
            None => self.groups.push(Group {
                kind: k,
                first: text.to_string(),
                first_record: record,
                count: 1,
                last_record: record,
            }),
        }
    }

    /// The groups, in order of first appearance.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group of `text`'s kind when it repeats (seen on more than [`REPEAT_AFTER`] packets).
    pub fn repeating(&self, text: &str) -> Option<&Group> {
        let k = kind(text);
        self.groups.iter().find(|g| g.kind == k && g.count > REPEAT_AFTER)
    }

    /// What a transcript shows for `text` on record `record`: the note itself, or for a repeating
    /// kind the note with its count on the kind's first packet and nothing on the others.
    pub fn shown(&self, record: u64, text: &str) -> Option<String> {
        match self.repeating(text) {
            None => Some(text.to_string()),
            Some(g) if g.first_record == record => {
                Some(format!("{text} (the same on {} more packets, not repeated)", g.count - 1))
            }
            Some(_) => None,
        }
    }

    /// One line per kind for a summary: `2398 packets: <first note> (first record 3)`, or the
    /// note and its record for a kind said once.
    pub fn summary_lines(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|g| match g.count {
                1 => format!("record {}: {}", g.first_record, g.first),
                n => format!("{n} packets: {} (first record {})", g.first, g.first_record),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_hex_are_one_kind() {
        assert_eq!(
            kind("checksum 0x1a2b in the capture, 0xffee computed: injected with a correct one"),
            "checksum # in the capture, # computed: injected with a correct one"
        );
        assert_eq!(kind("sliced: 0 of 1446 payload bytes captured"), "sliced: # of # payload bytes captured");
        assert_eq!(kind("ack 7241 clamped to 10"), "ack # clamped to #");
    }

    #[test]
    fn a_repeating_note_is_shown_once_with_its_count_and_summarised() {
        let mut t = Tally::default();
        for r in 3..=10 {
            t.add(r, &format!("checksum 0x{r:04x} in the capture, 0x0001 computed"));
        }
        t.add(11, "adapted: ack 5 clamped to 4");
        // Two notes of one kind on one packet: one packet.
        t.add(12, "adapted: SACK block 1:2 dropped");
        t.add(12, "adapted: SACK block 3:4 dropped");
        assert_eq!(t.groups()[2].count, 1);
        assert_eq!(t.groups().len(), 3);
        assert_eq!(
            t.shown(3, "checksum 0x0003 in the capture, 0x0001 computed").as_deref(),
            Some(
                "checksum 0x0003 in the capture, 0x0001 computed (the same on 7 more packets, not repeated)"
            )
        );
        assert_eq!(t.shown(4, "checksum 0x0004 in the capture, 0x0001 computed"), None);
        assert_eq!(
            t.shown(11, "adapted: ack 5 clamped to 4").as_deref(),
            Some("adapted: ack 5 clamped to 4")
        );
        assert_eq!(
            t.summary_lines(),
            [
                "8 packets: checksum 0x0003 in the capture, 0x0001 computed (first record 3)",
                "record 11: adapted: ack 5 clamped to 4",
                "record 12: adapted: SACK block 1:2 dropped"
            ]
        );
    }

    #[test]
    fn a_few_notes_of_a_kind_are_all_shown() {
        let mut t = Tally::default();
        for r in 1..=REPEAT_AFTER as u64 {
            t.add(r, &format!("adapted: ack {r} clamped"));
        }
        assert!(t.repeating("adapted: ack 1 clamped").is_none());
        assert_eq!(t.shown(2, "adapted: ack 2 clamped").as_deref(), Some("adapted: ack 2 clamped"));
    }
}
