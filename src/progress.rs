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

/// Hub downloads shown as the bar's message (`downloading model.safetensors 1.2/4.0 GiB`).
pub fn download_message(bar: &ProgressBar) -> k2_archive::hub::client::ProgressFn {
    let b = bar.clone();
    std::sync::Arc::new(move |file: &str, done, total| {
        b.set_message(format!(
            "downloading {file} {}/{}",
            k2_eval::sweep::human_bytes(done),
            total.map_or("?".into(), k2_eval::sweep::human_bytes)
        ))
    })
}
