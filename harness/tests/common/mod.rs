//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The shared captures folder: `$UTCP_SHARED_CAPTURES`, else `../shared/captures` from the repo
/// root (present in CI). `None`, saying why on stderr, when it is absent: those tests skip.
pub fn shared_captures() -> Option<PathBuf> {
    let dir = match std::env::var_os("UTCP_SHARED_CAPTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no shared captures at {} (set UTCP_SHARED_CAPTURES)", dir.display());
        None
    }
}
