//! The `pcap_reader` fuzz body. Depends on `crate::capture` only.

/// `pcap_reader`: `data` as a capture file through the reader (keep going past errors) and the
/// flow splitter. Errors are fine; panics and hangs are not. Every error names its file.
pub fn pcap_reader(data: &[u8]) {
    let reader = crate::capture::CaptureReader::from_bytes("fuzz.pcap", data.to_vec());
    let Ok(all) = reader.read_all(true) else { return };
    if let Some(e) = &all.error {
        assert!(e.to_string().starts_with("fuzz.pcap"), "error does not name the file: {e}");
    }
    let flows = crate::capture::flows::split(&all.records);
    let _ = flows;
}
