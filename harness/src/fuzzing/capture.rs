//! The `pcap_reader` fuzz body. Depends on `crate::capture` only.

use crate::capture::flows::{split, Finishing, Flow, FlowStream};
use crate::capture::{CaptureReader, CaptureStream};

/// `pcap_reader`: `data` as a capture file through the reader (keep going past errors) and the
/// flow splitter, and through the streamed reader and flow stream, which must find the same
/// records, the same error and the same connections. Errors are fine; panics and hangs are not.
/// Every error names its file.
pub fn pcap_reader(data: &[u8]) {
    let reader = CaptureReader::from_bytes("fuzz.pcap", data.to_vec());
    let Ok(all) = reader.read_all(true) else { return };
    if let Some(e) = &all.error {
        assert!(e.to_string().starts_with("fuzz.pcap"), "error does not name the file: {e}");
    }
    let flows = split(&all.records);

    // Small reads put the ends of the stream's buffer inside headers and records.
    let mut stream = FlowStream::new(CaptureStream::with_chunk("fuzz.pcap", data, 7), Finishing::default());
    let mut streamed = Vec::new();
    let mut error = None;
    while let Some(next) = stream.next_flow() {
        match next {
            Ok(f) => streamed.push(f),
            Err(e) => error = Some(e),
        }
    }
    assert_eq!(error, all.error, "the streamed reader stops where the in-memory one does");
    assert_eq!(stream.stats().records, all.records.len() as u64);
    streamed.sort_by_key(|f| f.index);
    // Connections handed over before the end differ from the in-memory split only where a later
    // packet of theirs was left out (late) or, after long silence, started a connection of its own
    // (forgotten); no packet is lost either way.
    let s = stream.stats();
    if s.late_packets == 0 && s.late_calls == 0 && s.forgotten == 0 {
        assert_eq!(streamed, flows.flows, "the same connections, streamed or not");
    }
    let packets = |fs: &[Flow]| fs.iter().map(|f| f.packets.len() as u64).sum::<u64>();
    assert_eq!(packets(&streamed) + s.late_packets, packets(&flows.flows), "packets streamed and late");
}
