//! A progress bar for long runs (replays of big captures): drawn on stderr only when stderr is a
//! terminal, so CI logs and pipes never see it. Wraps indicatif.
//!
//! Must not depend on: anything of replay's logic; it only counts.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress counter that draws a bar on a terminal and is silent otherwise.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` units of `what` (e.g. "packets"), visible only when stderr is a terminal.
    pub fn new(total: u64, what: &str) -> Progress {
        Progress::with_visibility(total, what, std::io::stderr().is_terminal())
    }

    /// A bar that never draws.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// A bar drawn or not as `visible` says (for tests and `--no-progress` style flags).
    pub fn with_visibility(total: u64, what: &str, visible: bool) -> Progress {
        if !visible {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = format!("{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} {{per_sec}} {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar: Some(bar) }
    }

    /// Whether a bar is drawn.
    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// Counts `n` more units done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Shows a short message after the counts (e.g. the flow being replayed).
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some(b) = &self.bar {
            b.set_message(msg.into());
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            if !b.is_finished() {
                b.finish_and_clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_terminal_means_no_bar() {
        let p = Progress::with_visibility(10, "packets", false);
        assert!(!p.is_visible());
        p.inc(5);
        p.set_message("flow 1");
        p.finish();
    }

    #[test]
    fn new_draws_nothing_when_stderr_is_not_a_terminal() {
        // Under CI stderr is a pipe: `new` must draw nothing there.
        if !std::io::stderr().is_terminal() {
            assert!(!Progress::new(10, "packets").is_visible());
        }
    }
}
