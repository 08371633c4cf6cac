//! `k2 verify`: printing for the exact replay of a training interval (logic in k2-trainer).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
#[command(
    after_help = "Retrains the interval from the archived full state of --from (weights, optimizer moments, \
RNG, data cursor, spike detector) and checks that every step's loss and norms equal metrics.jsonl and every \
produced file's sha256 equals the manifest's. Nothing in the run is written.\n\n\
Examples:\n  k2 verify --run runs/default --from ckpt_0003 --to ckpt_0005\n  \
k2 verify --run runs/default --from init --to ckpt_0001     # from the initialisation\n  \
k2 verify --run runs/default                                 # the whole ok lineage"
)]
pub struct VerifyArgs {
    /// The run directory.
    #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
    pub run: PathBuf,
    /// Checkpoint to start from (`init`: the seeded initialisation).
    #[arg(long, default_value = "init")]
    pub from: String,
    /// Last checkpoint to reproduce (default: the run's last ok checkpoint).
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub compute: crate::compute_args::ComputeArgs,
}

pub fn run(a: VerifyArgs) -> Result<ExitCode> {
    let to = match a.to {
        Some(t) => t,
        None => {
            let m =
                k2_archive::Manifest::load(&k2_archive::RunLayout::new(&a.run).manifest_path())?;
            m.latest_ok()
                .map(|e| e.name.clone())
                .with_context(|| format!("{}: no ok checkpoint to verify", a.run.display()))?
        }
    };
    let r = k2_trainer::replay::replay(&a.run, &a.from, &to, a.compute.device, a.compute.dtype)
        .with_context(|| format!("verifying {} from {} to {to}", a.run.display(), a.from))?;
    for name in &r.matched {
        println!("{name}: every file's sha256 equals the manifest's");
    }
    match &r.mismatch {
        None => {
            println!(
                "verified: {} steps from {} to {} replayed bit for bit ({} checkpoints)",
                r.steps,
                r.from,
                r.to,
                r.matched.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(m) => {
            eprintln!("error: {m}");
            Ok(ExitCode::FAILURE)
        }
    }
}
