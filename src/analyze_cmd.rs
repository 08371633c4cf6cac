//! `k2 analyze`: analyses of a run's checkpoints beyond benchmark scores. Parse and print only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use k2_eval::memorization::Settings;

#[derive(Subcommand)]
pub enum AnalyzeCommand {
    /// Memorization per (checkpoint, chunk), like LLM360's Analysis360: for sampled training
    /// sequences of every chunk, greedy-continue the first --prompt-len tokens for
    /// --continuation-len tokens and compare with the true next tokens.
    #[command(
        after_help = "Examples:\n  k2 analyze memorization                         # the default run\n  \
k2 analyze memorization --run runs/mine --samples 64\n  \
k2 analyze memorization --run runs/tiny --prompt-len 16 --continuation-len 16\n\n\
Per (checkpoint, chunk): exact-match rate (whole continuation reproduced) and token-match rate\n\
(fraction of positions reproduced), n, the chunk's position in chunk_order.toml and whether the\n\
checkpoint was trained on it. Greedy = argmax, lowest token id wins ties; EOS does not stop.\n\
Checkpoints with status ok and spike are measured. Sequences: random.Random(SEED).sample(range(N), SAMPLES)\n\
of each data/chunk_NNNN.jsonl.\n\
Results: <run>/memorization/<ckpt>.json; a checkpoint already done with the same weights, data and\n\
settings is skipped. `k2 report` draws them as a checkpoint x chunk heat map."
    )]
    Memorization {
        /// The run directory.
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
        /// Training sequences sampled per chunk.
        #[arg(long, default_value_t = 32)]
        samples: usize,
        /// Prompt tokens (the sequence's first tokens).
        #[arg(long, default_value_t = 32)]
        prompt_len: usize,
        /// Greedy tokens compared with the sequence's true next tokens.
        #[arg(long, default_value_t = 32)]
        continuation_len: usize,
        /// Seed of the sequence sample (the same for every chunk and checkpoint).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Sequences decoded together.
        #[arg(long, default_value_t = k2_pipeline::MEMORIZATION_BATCH_SIZE)]
        batch_size: usize,
        #[arg(long, default_value_t = k2_pipeline::THREADS)]
        threads: usize,
        #[command(flatten)]
        compute: crate::compute_args::ComputeArgs,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

pub fn run(cmd: AnalyzeCommand) -> Result<ExitCode> {
    match cmd {
        AnalyzeCommand::Memorization {
            run,
            samples,
            prompt_len,
            continuation_len,
            seed,
            batch_size,
            threads,
            compute,
            quiet,
        } => {
            k2_trainer::set_threads(threads);
            let settings = Settings {
                samples_per_chunk: samples,
                prompt_len,
                continuation_len,
                seed,
            };
            memorization(&run, &settings, batch_size, &compute.placement()?, quiet)
        }
    }
}

/// Measures every checkpoint of `run` and prints the tables.
pub fn memorization(
    run: &Path,
    settings: &Settings,
    batch_size: usize,
    placement: &k2_model::Placement,
    quiet: bool,
) -> Result<ExitCode> {
    let bar = crate::progress::bar("sequences", quiet);
    let m = k2_eval::memorization_job::measure_run(run, settings, batch_size, placement, &bar)?;
    bar.finish_and_clear();
    print!("{}", m.text);
    Ok(crate::report_failures(&m.report.failed()))
}
