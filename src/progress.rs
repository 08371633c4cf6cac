//! The progress bar the sweeps share: elapsed time, a bar over `{pos}/{len} <unit>`, ETA and a
//! message; hidden with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bar(unit: &str, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}  eta {{eta}}  {{msg}}"
        ))
        .expect("valid template"),
    );
    bar
}
