//! Bad input never panics: random bytes and random damage to valid captures go through the
//! reader, the flow splitter, the inspect report and the transcript without a panic, and every
//! error names the record that was being read.

use pcap_file::Endianness;
use proptest::prelude::*;
use utcp::time::Instant;
use utcp_harness::capture::flows::split;
use utcp_harness::capture::{CaptureReader, CaptureWriter, Format};
use utcp_harness::inspect::{render_table, report, to_json, transcript};

/// A small valid capture of a TCP exchange with options and data.
fn valid(format: Format, order: Endianness) -> Vec<u8> {
    let mut w = CaptureWriter::new(Vec::new(), "v", format, order).unwrap();
    let mut t = 0;
    let mut put = |b: etherparse::PacketBuilderStep<etherparse::TcpHeader>, payload: &[u8]| {
        let mut d = Vec::new();
        b.write(&mut d, payload).unwrap();
        t += 1000;
        w.write(Instant::from_micros(t), &d, Some("c")).unwrap();
    };
    let c =
        || etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [192, 168, 0, 1], 64).tcp(40000, 80, 100, 1000);
    let s = || etherparse::PacketBuilder::ipv6([1; 16], [2; 16], 64).tcp(80, 40000, 500, 1000);
    put(c().syn().options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)]).unwrap(), b"");
    put(s().syn().ack(101), b"");
    put(c().ack(501).psh(), b"hello");
    put(s().ack(106).fin(), b"");
    w.finish().unwrap()
}

/// Everything a user can ask of a capture, on whatever was readable.
fn exercise(bytes: Vec<u8>) {
    let reader = CaptureReader::from_bytes("fuzz", bytes);
    let all = reader.read_all(true).unwrap();
    if let Some(e) = &all.error {
        if let Some(n) = e.record {
            assert_eq!(n, all.records.len() as u64 + 1, "{e}");
        }
        assert!(e.to_string().starts_with("fuzz: "));
    }
    let flows = split(&all.records);
    let rep = report("fuzz", all.records.len() as u64, &flows, all.error.map(|e| e.to_string()));
    let _ = render_table(&rep);
    let _ = to_json(&rep);
    for f in &flows.flows {
        let _ = transcript(f);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(bytes);
    }

    #[test]
    fn random_damage_to_a_valid_capture_never_panics(
        ng in any::<bool>(),
        big in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let format = if ng { Format::PcapNg } else { Format::Pcap };
        let order = if big { Endianness::Big } else { Endianness::Little };
        let mut bytes = valid(format, order);
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        let keep = bytes.len() - cut.index(bytes.len() / 4 + 1);
        bytes.truncate(keep);
        exercise(bytes);
    }
}

#[test]
fn the_valid_capture_splits_into_two_connections_of_two_families() {
    // IPv4 client and IPv6 server addresses make two one-sided connections.
    let bytes = valid(Format::PcapNg, Endianness::Little);
    let reader = CaptureReader::from_bytes("v", bytes);
    let all = reader.read_all(false).unwrap();
    assert_eq!(all.records.len(), 4);
    assert_eq!(split(&all.records).flows.len(), 2);
}
