//! The progress bar every long run draws: elapsed time, a bar over `len`
//! units, and a message. Hidden when not asked for; lines printed through
//! [`indicatif::ProgressBar::suspend`] show either way.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` `units` (`s`, ` steps`), drawn only when `show`.
pub(crate) fn bar(show: bool, len: u64, units: &str) -> ProgressBar {
    let bar = if show { ProgressBar::new(len) } else { ProgressBar::hidden() };
    let template = format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}}{units} {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template).expect("the template is valid for any units").progress_chars("=> "),
    );
    bar
}
