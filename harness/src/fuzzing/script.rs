//! The `script_parser` fuzz body. Depends on `crate::script` only.

/// `script_parser`: `data` as a packetdrill-dialect script (UTF-8; other bytes are refused
/// before the parser). The parser never panics, and its errors point at a line of the text.
/// A script that parses is also run against a stack (at most 200 events): the executor reports
/// failures, but neither it nor the stack may panic.
pub fn script_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match crate::script::parse_script("fuzz.pkt", text) {
        Err(e) => {
            let lines = text.split('\n').count().max(1);
            assert!(e.line >= 1 && e.line <= lines, "error at line {} of {lines}: {e}", e.line);
            assert!(e.col >= 1, "error at column 0: {e}");
        }
        Ok(script) => {
            if script.events.len() <= 200 {
                let out = crate::script::run(&script);
                // The executor reports a panic of the stack (or of itself) with this prefix; the
                // rest of its messages may quote the script, which can say anything.
                if let Some(f) = &out.failure {
                    assert!(!f.got.starts_with("the stack panicked"), "line {}: {}", f.line, f.got);
                }
            }
        }
    }
}
