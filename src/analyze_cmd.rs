//! `k2 analyze`: analyses of a run's checkpoints beyond benchmark scores. Parse and print only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use k2_eval::memorization::Settings;

#[derive(Subcommand)]
pub enum AnalyzeCommand {
    /// Per-item learning dynamics from the samples files of every checkpoint: correctness, age
    /// of acquisition, forgetting events and class of each item; flips and their significance
    /// between consecutive checkpoints; the emergence point of each task.
    #[command(
        after_help = "Examples:\n  k2 analyze items                                 # the default run\n  \
k2 analyze items --run runs/mine --tasks k2_facts,k2_arithmetic\n  \
k2 analyze items --results eval-results/amber --json\n\n\
Correctness: the task's `acc` (else `exact_match`, else any 0/1 metric). Age of acquisition: the\n\
first checkpoint from which the item stays correct. Forgetting event: correct, then wrong at the\n\
next checkpoint. Classes: always known, learned (no forgetting event), unstable, forgotten (ends\n\
wrong after one forgetting event), never learned. Changes: exact McNemar test and paired Wald\n\
interval of the accuracy, paired bootstrap (1000 resamples, seed 1234) of the mean gold\n\
log-likelihood. Emergence: the first checkpoint above chance by the one-sided exact binomial\n\
test, Holm-corrected over checkpoints, that stays so. A run's lineage only (status ok)."
    )]
    Items {
        /// A k2 run directory (default: the default run).
        #[arg(long, conflicts_with = "results")]
        run: Option<PathBuf>,
        /// A results directory tree (`<checkpoint>/<task>.json` + `.samples.jsonl`).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Tasks to analyse (default: all with samples and a 0/1 metric).
        #[arg(long, value_delimiter = ',')]
        tasks: Vec<String>,
        /// Print every item's trajectory as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// The prompt gallery: every `ok` and `spike` checkpoint of a run continues fixed prompts
    /// greedily; prints each prompt's continuations down the checkpoints.
    #[command(
        after_help = "Examples:\n  k2 analyze gallery                               # the default run, built-in prompts\n  \
k2 analyze gallery --run runs/mine --prompts prompts.toml\n\n\
A prompts file holds one [[prompt]] table per prompt:\n  \
[[prompt]]\n  id = \"story\"                 # letters, digits, _ or -; unique\n  \
text = \"Once upon a time\"\n  max_tokens = 48              # 1..=1024 (default 48)\n  \
stop = [\"\\n\\n\"]                # optional stop strings (cut off)\n\n\
Greedy (argmax) with the KV cache; stops at a stop string, EOS or max_tokens. Results:\n\
<run>/gallery/<checkpoint>/k2_gallery.json and .samples.jsonl, written atomically; a checkpoint\n\
already done with the same weights and prompts is skipped. `k2 report` shows the gallery."
    )]
    Gallery {
        /// The run directory.
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
        /// A prompts file (TOML; default: the built-in prompts for the default corpus).
        #[arg(long)]
        prompts: Option<PathBuf>,
        #[arg(long, default_value_t = k2_pipeline::THREADS)]
        threads: usize,
        #[command(flatten)]
        compute: crate::compute_args::ComputeArgs,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Knowledge acquisition and forgetting of the run's injected facts (`[[inject_facts]]`):
    /// every probe's target-span log-probability at every `ok` and `spike` checkpoint, merged
    /// with the dense per-step scores the trainer wrote; effectivity, retainability and the
    /// power-law decay per injection and probe kind.
    #[command(
        after_help = "Examples:\n  k2 train --config configs/acquisition.toml --out runs/acquisition\n  \
k2 analyze acquisition --run runs/acquisition\n  \
k2 analyze acquisition --run runs/acquisition --json > acquisition.json\n\n\
Probes (Chang et al. 2024): memorization (the injected wording), semantic (a held-out\n\
paraphrase), composition (the capital of the fact's country, asked through the invented person).\n\
Dense steps: set `dense_steps = N` in an [[inject_facts]] table and the trainer scores the probes\n\
after each of the N steps from the injection on (<run>/acquisition/dense.jsonl). Effectivity: the\n\
mean gain from the last measurement before the first repetition to the maximum within 10 steps of\n\
the last one (else the first measurement after it). Retainability R(t): the share of that gain\n\
left t steps later. Results: <run>/acquisition/<checkpoint>.json, written atomically and skipped\n\
when done with the same weights and probes; `k2 report` draws them."
    )]
    Acquisition {
        /// The run directory.
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
        /// Print the trajectories and metrics as JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = k2_pipeline::THREADS)]
        threads: usize,
        #[command(flatten)]
        compute: crate::compute_args::ComputeArgs,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Token learning curves (Chang & Bergen 2024): the surprisal of every token of a fixed
    /// held-out text at every `ok` checkpoint; per token its age of acquisition, final
    /// surprisal, variability and forgetting events; by frequency in the run's training data.
    #[command(
        after_help = "Examples:\n  k2 analyze tokens                               # the default run\n  \
k2 analyze tokens --run runs/acquisition --json > tokens.json\n\n\
Held-out text: documents 900000000..900000003 of every source in the run's data index (never in\n\
its chunks), each scored behind an EOS as training packs documents. Age of acquisition: the first\n\
checkpoint from which the surprisal stays below the midpoint of ln V and the token's lowest\n\
surprisal. Results: <run>/token_curves/<checkpoint>.json, written atomically and skipped when\n\
done with the same weights and text; `k2 report` draws them."
    )]
    Tokens {
        /// The run directory.
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
        /// Print every token's curve and the buckets as JSON instead of the table.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = k2_pipeline::THREADS)]
        threads: usize,
        #[command(flatten)]
        compute: crate::compute_args::ComputeArgs,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
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
        AnalyzeCommand::Items {
            run,
            results,
            tasks,
            json,
        } => {
            let run = match (&run, &results) {
                (None, None) => Some(PathBuf::from(k2_pipeline::DEFAULT_RUN)),
                _ => run,
            };
            let data = k2_analysis::items::load(run.as_deref(), results.as_deref())?;
            let items = k2_analysis::items::all_task_items(&data, &tasks)?;
            if items.is_empty() {
                anyhow::bail!(
                    "no per-sample results to analyse in {} (evaluate with `k2 eval --all-checkpoints` first; tasks need a 0/1 metric)",
                    run.as_deref().or(results.as_deref()).unwrap_or(Path::new(".")).display()
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                print!("{}", k2_analysis::items_tables::items_text(&items));
            }
            Ok(ExitCode::SUCCESS)
        }
        AnalyzeCommand::Gallery {
            run,
            prompts,
            threads,
            compute,
            quiet,
        } => {
            k2_trainer::set_threads(threads);
            gallery(&run, prompts.as_deref(), &compute.placement()?, quiet)
        }
        AnalyzeCommand::Acquisition {
            run,
            json,
            threads,
            compute,
            quiet,
        } => {
            k2_trainer::set_threads(threads);
            acquisition(&run, json, &compute.placement()?, quiet)
        }
        AnalyzeCommand::Tokens {
            run,
            json,
            threads,
            compute,
            quiet,
        } => {
            k2_trainer::set_threads(threads);
            tokens(&run, json, &compute.placement()?, quiet)
        }
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

/// Generates the gallery at every checkpoint of `run` that lacks it and prints it.
pub fn gallery(
    run: &Path,
    prompts: Option<&Path>,
    placement: &k2_model::Placement,
    quiet: bool,
) -> Result<ExitCode> {
    use k2_eval::tasks::gallery::{read_prompts, GalleryTask};
    let task = match prompts {
        Some(p) => GalleryTask::new(read_prompts(p)?),
        None => GalleryTask::builtin(),
    };
    let start = std::time::Instant::now();
    let bar = crate::progress::bar("generations", quiet);
    let report = k2_eval::gallery_job::generate_gallery(run, task, placement, &bar)?;
    bar.finish_and_clear();
    if let Some(g) = k2_analysis::gallery::load_gallery(run)? {
        print!("{}", k2_analysis::gallery::gallery_text(&g));
    }
    println!(
        "{} in {:.1}s; results in {}",
        report.summary_line("generated"),
        start.elapsed().as_secs_f64(),
        k2_eval::gallery_job::gallery_dir(run).display()
    );
    Ok(crate::report_failures(&report.failed()))
}

/// Scores the probes at every checkpoint of `run` that lacks them and prints the metrics.
pub fn acquisition(
    run: &Path,
    json: bool,
    placement: &k2_model::Placement,
    quiet: bool,
) -> Result<ExitCode> {
    let start = std::time::Instant::now();
    let bar = crate::progress::bar("probes", quiet);
    let (_, report) = k2_eval::acquisition_job::measure_run(run, placement, &bar)?;
    bar.finish_and_clear();
    let Some(r) = k2_analysis::acquisition_tables::load_run(run)? else {
        anyhow::bail!("{}: nothing measured", run.display());
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", k2_analysis::acquisition_tables::acquisition_text(&r));
        println!(
            "{} in {:.1}s; results in {}",
            report.summary_line("measured"),
            start.elapsed().as_secs_f64(),
            k2_archive::RunLayout::new(run).acquisition_dir().display()
        );
    }
    Ok(crate::report_failures(&report.failed()))
}

/// Scores the held-out text at every checkpoint of `run` that lacks it and prints the buckets.
pub fn tokens(
    run: &Path,
    json: bool,
    placement: &k2_model::Placement,
    quiet: bool,
) -> Result<ExitCode> {
    let start = std::time::Instant::now();
    let bar = crate::progress::bar("documents", quiet);
    let report = k2_eval::token_curves_job::measure_run(run, placement, &bar)?;
    bar.finish_and_clear();
    let Some(t) = k2_analysis::token_curves::load(run)? else {
        anyhow::bail!("{}: no ok checkpoint to measure", run.display());
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print!("{}", k2_analysis::token_curves::tokens_text(&t));
        println!(
            "{} in {:.1}s; results in {}",
            report.summary_line("measured"),
            start.elapsed().as_secs_f64(),
            k2_archive::RunLayout::new(run).token_curves_dir().display()
        );
    }
    Ok(crate::report_failures(&report.failed()))
}
