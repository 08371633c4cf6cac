//! `k2 compare A B`: two checkpoints sample by sample. Parse and print only.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  k2 compare ckpt_0005 spike_ckpt_0006             # what the default run's spike destroyed\n  \
k2 compare ckpt_0004 ckpt_0012 --run runs/mine --tasks k2_facts\n  \
k2 compare eval-results/amber/ckpt_100 eval-results/amber/ckpt_200 --json\n  \
k2 compare ckpt_0005 ckpt_0006 --html reports/default/compare.html\n\n\
A and B are evaluated checkpoints of --run (<run>/eval/<name>) or results directories\n\
(<task>.json + <task>.samples.jsonl). Per task: both scores, B - A with its 95% interval and\n\
p-value (0/1 metrics: exact McNemar test and paired Wald interval; continuous ones and the gold\n\
log-likelihood: paired bootstrap, 1000 resamples, seed 1234), and the items that flipped each way."
)]
pub struct CompareArgs {
    /// Checkpoint A (the baseline).
    a: String,
    /// Checkpoint B.
    b: String,
    /// The run whose checkpoints A and B name.
    #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
    run: PathBuf,
    /// Tasks to compare (default: every task both have).
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Print JSON (per task: both scores, the difference, its CI, the p-value, the flip counts
    /// and the flipped items) instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the comparison as an HTML page.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Flipped items listed per task and direction in the tables (JSON has all).
    #[arg(long, default_value_t = 10)]
    show: usize,
}

pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let a = k2_analysis::compare::resolve_side(&args.a, &args.run)?;
    let b = k2_analysis::compare::resolve_side(&args.b, &args.run)?;
    let c = k2_analysis::compare::compare(&a, &b, &args.tasks)?;
    if let Some(path) = &args.html {
        k2_analysis::compare::write_html(&c, path, usize::MAX)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{}", k2_analysis::compare::to_markdown(&c, args.show));
        if let Some(path) = &args.html {
            println!("\nwrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
