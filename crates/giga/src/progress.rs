//! Progress bars: only on a terminal, never with --quiet.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn styled(total: u64, quiet: bool, template: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

/// A bar counting bytes of pixels (what users think of as the image's size).
pub fn bar(total_bytes: u64, quiet: bool, label: &str) -> ProgressBar {
    let pb = styled(total_bytes, quiet, "{msg} [{bar:30}] {percent:>3}% {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} ETA {eta}");
    pb.set_message(label.to_string());
    pb
}

/// A bar counting rows of the input, with a message (tiles done, rate).
pub fn rows_bar(total_rows: u64, quiet: bool) -> ProgressBar {
    styled(
        total_rows,
        quiet,
        "tiling [{bar:30}] {percent:>3}% {human_pos}/{human_len} rows, {msg}, ETA {eta}",
    )
}
