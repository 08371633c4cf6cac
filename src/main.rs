//! The `k2` command line: parse, call a crate, print. No logic lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use compute_args::ComputeArgs;

mod analyze_cmd;
mod compare_cmd;
mod compute_args;
mod hub_cmd;
mod progress;
mod verify_cmd;

#[derive(Parser)]
#[command(
    name = "k2",
    version,
    about = "Train LLaMA-style models with full-state checkpoints, K2's data order and an archive you can verify",
    long_about = "k2 reproduces LLM360 K2's open training workflow on candle: a trainer that writes a full-state \
HF-format checkpoint per data chunk, a manifest with sha256 of every file, and tools to inspect the data order.\n\n\
Quickstart (built-in default, under 10 minutes on 2 cores, no network):\n  k2 quickstart            # = k2 train; k2 eval; k2 analyze memorization, items, gallery; k2 report\n  k2 quickstart --config configs/acquisition.toml   # the knowledge-injection experiment\n  k2 ckpt verify",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once per process: the size of the largest subcommand's flags costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// The whole loop on the built-in default: train runs/default, evaluate every checkpoint on the
    /// built-in probes, render reports/default. Rerunning continues where it stopped.
    Quickstart {
        /// Another training config, e.g. configs/acquisition.toml (its run goes to
        /// runs/<name>, its report to reports/<name>); default: the built-in default.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        compute: ComputeArgs,
    },
    /// Train a run (the built-in default unless --config), writing a checkpoint per data chunk.
    #[command(
        after_help = "Examples:\n  k2 train                                  # built-in default into runs/default\n  \
k2 train --config configs/default.toml --out runs/mine\n  k2 train --out runs/mine --resume            # continue after a crash or kill\n  \
k2 train --force                          # replace an existing runs/default\n  \
k2 train --dtype bf16 --out runs/bf16     # K2's mixed precision: bf16 compute, f32 master weights\n  \
k2 train --device cuda                    # on the GPU (a binary built with --features cuda)"
    )]
    Train {
        /// Training config (TOML). Default: the built-in default run.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Run directory.
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        out: PathBuf,
        /// Continue the run in --out from its last good checkpoint.
        #[arg(long, conflicts_with = "force")]
        resume: bool,
        /// Replace an existing run directory.
        #[arg(long)]
        force: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        compute: ComputeArgs,
    },
    /// Evaluate every checkpoint of a run, a suite or a directory (or one HF model directory) on benchmark tasks.
    #[command(after_help = eval_help())]
    Eval {
        /// Evaluate every checkpoint of the run's manifest, oldest first (the default without --model).
        #[arg(long, conflicts_with = "model")]
        all_checkpoints: bool,
        /// The run directory (with --all-checkpoints).
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
        /// A suite named in the repository's checkpoints.toml (instead of --run).
        #[arg(long)]
        suite: Option<String>,
        /// One HF-format model: a local directory, or a Hub repository id (ORG/NAME) pulled into
        /// the Hugging Face cache (a path that exists on disk wins).
        #[arg(long, conflicts_with_all = ["suite", "dir"])]
        model: Option<PathBuf>,
        /// The Hub revision of --model ORG/NAME (branch, tag or commit; default main).
        #[arg(long, requires = "model")]
        revision: Option<String>,
        /// A directory of HF checkpoints written by any trainer (`checkpoint-N`, `iter_N`,
        /// `stepN`, `ckpt_N`, ...), evaluated in training order into <output>/<DIR's name>/.
        #[arg(long, conflicts_with = "suite")]
        dir: Option<PathBuf>,
        /// Take share I of N of the (checkpoint x task) pairs, e.g. `--shard 0/4` (Slurm:
        /// `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`).
        #[arg(long, value_name = "I/N")]
        shard: Option<k2_eval::sweep::Shard>,
        /// Claim each pair with a claim file first, so workers started at any time share the
        /// work left without doing any twice.
        #[arg(long)]
        claim: bool,
        /// A claim not refreshed for this many seconds (workers refresh theirs every quarter of
        /// it), or of a process gone from this host, is stale and taken over.
        #[arg(long, default_value_t = 600)]
        claim_ttl: u64,
        /// Show which (checkpoint, task) pairs are done, claimed, failed or pending; evaluate nothing.
        #[arg(long)]
        status: bool,
        /// Where --model results go (hub suites' under <output>/<suite>/, --dir's under <output>/<name>/).
        #[arg(long, default_value = k2_pipeline::DEFAULT_RESULTS)]
        output: PathBuf,
        /// Hub suites: keep at most N snapshots pulled by this sweep in the HF cache (evict evaluated ones).
        #[arg(long)]
        keep: Option<usize>,
        /// Comma-separated tasks and suites.
        #[arg(long, default_value = "default", value_delimiter = ',')]
        tasks: Vec<String>,
        /// Per-task few-shot counts, e.g. `hellaswag=0,mmlu=5` (default: K2's).
        #[arg(long, value_delimiter = ',')]
        shots: Vec<String>,
        /// Evaluate only the first N documents of each task.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value_t = k2_pipeline::EVAL_BATCH_SIZE)]
        batch_size: usize,
        /// Read benchmark datasets from this folder, laid out like the Hub (DIR/<org>/<name>/...),
        /// instead of the Hub (default: the dataset repositories lm-eval's tasks name, fetched into
        /// the Hugging Face cache; HF_HUB_OFFLINE=1 reads the cache only).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Pin a task's dataset to a Hub revision (branch, tag or commit), e.g.
        /// `hellaswag=<sha>`; a pin on `mmlu` covers every subject. Repeatable or comma-separated.
        #[arg(long, value_delimiter = ',')]
        dataset_revision: Vec<String>,
        /// A directory of lm-eval task YAMLs (tasks, groups, tags) whose names `--tasks` can use;
        /// repeatable. Point it at lm-eval's own `lm_eval/tasks` to use its tasks.
        #[arg(long)]
        include_path: Vec<PathBuf>,
        /// List what k2 can run (built-in tasks and the YAMLs of --include-path), and what it
        /// cannot and why, grouped by reason; add --verbose for every name.
        #[arg(long)]
        list_tasks: bool,
        /// With --list-tasks: every task name under each heading.
        #[arg(long, requires = "list_tasks")]
        verbose: bool,
        /// Probes per built-in probe task.
        #[arg(long, default_value_t = k2_pipeline::PROBE_DOCS)]
        probe_docs: usize,
        /// Keep waiting for new checkpoints until the run's last one is evaluated.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value_t = k2_pipeline::THREADS)]
        threads: usize,
        #[command(flatten)]
        compute: ComputeArgs,
        #[arg(long)]
        quiet: bool,
    },
    /// Render a release report: capability-over-time figures and tables (PNG + SVG + markdown).
    #[command(
        after_help = "Examples:\n  k2 report                                   # runs/default -> reports/default/README.md\n  \
k2 report --run runs/mine --out reports --name mine\n  \
k2 report --lm-eval-results fixtures/pythia_evals --name pythia --log-x"
    )]
    Report {
        /// A k2 run directory (manifest, metrics.jsonl, eval results).
        #[arg(long)]
        run: Option<PathBuf>,
        /// A directory tree of lm-evaluation-harness results JSON (v0.3 or v0.4 layout).
        #[arg(long)]
        lm_eval_results: Option<PathBuf>,
        /// Published lm-eval results of the same models (e.g. fixtures/pythia_evals/pythia-v1),
        /// drawn beside --lm-eval-results (k2's own) in the same figures and compared per checkpoint.
        #[arg(long, requires = "lm_eval_results")]
        published_results: Option<PathBuf>,
        #[arg(long, default_value = k2_pipeline::DEFAULT_REPORTS)]
        out: PathBuf,
        /// Report name (folder under --out). Default: the run's folder name, else `lm-eval`.
        #[arg(long)]
        name: Option<String>,
        /// Logarithmic tokens axis (for log-spaced checkpoints such as Pythia's).
        #[arg(long)]
        log_x: bool,
    },
    /// Inspect the data of a run.
    #[command(subcommand)]
    Data(DataCommand),
    /// List and verify checkpoints.
    #[command(subcommand)]
    Ckpt(CkptCommand),
    /// Retrain an interval from the archive and check it reproduces bit for bit.
    Verify(verify_cmd::VerifyArgs),
    /// Model shapes and parameter counts.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Analyses of a run's checkpoints: memorization, per-item dynamics, the prompt gallery.
    #[command(subcommand)]
    Analyze(analyze_cmd::AnalyzeCommand),
    /// Checkpoint A against checkpoint B sample by sample: score differences with intervals and
    /// p-values, and the items that flipped.
    Compare(compare_cmd::CompareArgs),
    /// Released checkpoint suites on the Hugging Face Hub: list revisions, pull them into the HF cache.
    #[command(
        subcommand,
        after_help = "Examples:\n  k2 hub list LLM360/Amber                        # ckpt_000 .. ckpt_359, tokens seen\n  \
k2 hub list EleutherAI/pythia-160m-deduped --weights   # byte-identical revisions marked\n  \
k2 hub pull LLM360/Amber --revision ckpt_100    # into the HF cache, sha256-verified\n  \
k2 eval --all-checkpoints --suite amber --tasks arc_easy --keep 2"
    )]
    Hub(hub_cmd::HubCommand),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Print the exact samples of training step S with their provenance.
    #[command(
        after_help = "Example:\n  k2 data batch --run runs/default --step 42\n  k2 data batch --run runs/default --step 42 --json"
    )]
    Batch {
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
        #[arg(long)]
        step: u64,
        /// One JSON object per sample (token ids included) instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CkptCommand {
    /// List the checkpoints of a run's manifest.
    #[command(after_help = "Example:\n  k2 ckpt list --run runs/default")]
    List {
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
    },
    /// Recompute the sha256 of every checkpoint file and compare with the manifest.
    #[command(
        after_help = "Example:\n  k2 ckpt verify --run runs/default   # exit status 1 on any mismatch"
    )]
    Verify {
        #[arg(long, default_value = k2_pipeline::DEFAULT_RUN)]
        run: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Shape and parameter count of a preset or an HF model directory.
    #[command(
        after_help = "Examples:\n  k2 model info k2-65b\n  k2 model info default\n  k2 model info runs/default/ckpt_0016"
    )]
    Info { model: String },
    /// Per-token log-probabilities of a text file under an HF model (a directory, or a Hub id pulled into the cache; one JSON object).
    #[command(
        after_help = "Examples:\n  k2 model score fixtures/models/stories260K-hf --file story.txt --device cpu --dtype f32\n  \
k2 model score fixtures/models/stories260K-hf --file story.txt --dtype bf16   # compare the two"
    )]
    Score {
        model: PathBuf,
        /// The text (UTF-8); at most the model's context is scored.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        compute: ComputeArgs,
    },
    /// Write an HF model directory of a preset shape with freshly initialised weights.
    #[command(
        after_help = "Example:\n  k2 model init bench-17m --out /tmp/m17 --tokenizer fixtures/models/stories260K-hf/tokenizer.json\n  \
k2 model init amber-7b --out /tmp/amber7b --dtype bf16 --max-shard-size 5GB   # written tensor by tensor\n  \
k2 model init bench-17m --out /tmp/m17-4k --max-positions 4096   # a context that holds MMLU 5-shot prompts"
    )]
    Init {
        preset: String,
        #[arg(long)]
        out: PathBuf,
        /// tokenizer.json to copy into the directory.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        #[arg(long, default_value_t = 1234)]
        seed: u64,
        /// Stored dtype of the weights (f32, bf16, f16; default f32).
        #[arg(long)]
        dtype: Option<String>,
        /// Shard the weights at this size, e.g. 5GB (transformers' max_shard_size); default: one file.
        #[arg(long)]
        max_shard_size: Option<String>,
        /// The context length (`max_position_embeddings`) instead of the preset's; no weight
        /// depends on it (RoPE), so only the config changes.
        #[arg(long)]
        max_positions: Option<usize>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Training throughput (tokens/s) and model-FLOP utilisation of one optimizer step.
    #[command(
        after_help = "Examples:\n  k2 bench train --preset bench-17m            # batch 8 x 256, 2 threads\n  \
k2 bench train --preset default --batch 16 --seq 128\n  python bench/torch_train.py --preset bench-17m   # the PyTorch reference"
    )]
    Train {
        #[arg(long, default_value = "bench-17m")]
        preset: String,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 256)]
        seq: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Print one JSON line instead of a table.
        #[arg(long)]
        json: bool,
        /// Peak TFLOP/s for MFU (default: measured on the CPU and for f32; 790 for bf16/f16 on a GPU).
        #[arg(long)]
        peak_tflops: Option<f64>,
        #[command(flatten)]
        compute: ComputeArgs,
    },
    /// Loglikelihood requests per second of `k2 eval` on a model and task.
    #[command(
        after_help = "Example:\n  k2 bench eval --model fixtures/models/stories260K-hf --tasks hellaswag --limit 200 --shots hellaswag=0"
    )]
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value = "hellaswag", value_delimiter = ',')]
        tasks: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        shots: Vec<String>,
        #[arg(long, default_value_t = 200)]
        limit: usize,
        #[arg(long, default_value_t = k2_pipeline::EVAL_BATCH_SIZE)]
        batch_size: usize,
        /// Benchmark datasets from this folder laid out like the Hub, instead of the Hub.
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, default_value_t = k2_pipeline::THREADS)]
        threads: usize,
        #[command(flatten)]
        compute: ComputeArgs,
    },
}

/// `k2 eval --help`'s examples, then the task registry's tasks and suites.
fn eval_help() -> String {
    format!(
        "Examples:\n  k2 eval --all-checkpoints                           # the default run on the built-in probes\n  \
k2 eval --all-checkpoints --run runs/mine --tasks default,arc_easy --limit 200\n  \
k2 eval --all-checkpoints --suite default --watch     # evaluate checkpoints as training writes them\n  \
k2 eval --model fixtures/models/stories260K-hf --tasks hellaswag,arc_easy --output eval-results\n  \
k2 eval --model EleutherAI/pythia-160m --revision step1000 --tasks arc_easy,hellaswag   # model and datasets from the Hub\n  \
k2 eval --model DIR --tasks arc_easy --data fixtures/datasets   # datasets from a folder laid out like the Hub\n  \
HF_HUB_OFFLINE=1 k2 eval --model DIR --tasks mmlu     # the Hugging Face cache only\n  \
k2 eval --all-checkpoints --suite amber --tasks arc_easy --keep 2   # LLM360/Amber from the Hub -> eval-results/amber/\n  \
k2 eval --dir /ckpts/hf-trainer-run --tasks arc_easy   # checkpoint-N folders -> eval-results/hf-trainer-run/\n  \
k2 eval --run runs/mine --shard 0/4                   # share 0 of 4 (scripts/slurm/eval-array.sbatch)\n  \
k2 eval --run runs/mine --claim                       # claim pairs: start as many workers as you like\n  \
k2 eval --run runs/mine --status                      # done / claimed / failed / pending pairs\n  \
k2 eval --model DIR --device cuda --dtype bf16          # on the GPU in bf16 (default: the checkpoint's torch_dtype)\n\n\
{}\n\
Results: <run>/eval/<ckpt>/<task>.json (lm-eval layout) and <task>.samples.jsonl; finished pairs are skipped.\n\
Benchmark datasets: the Hub repositories of lm-eval 0.4.13's task YAMLs, in the Hugging Face cache \
(HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE); results record repo, config, split and commit.\n\
Exit status: 0 ok, 1 a checkpoint could not be evaluated, 2 a usage, config or input error.",
        k2_eval::registry::help()
    )
}

/// The exit status of an error, as ripgrep's: 1 when a check ran and failed (an archive that does
/// not verify), 2 for a usage, config or input error (clap's usage errors exit 2 too). Commands
/// that check many things (`k2 eval`, `k2 ckpt verify`, `k2 verify`) return 1 themselves when one
/// failed.
fn exit_code(e: &anyhow::Error) -> u8 {
    let checked = e
        .chain()
        .any(|c| matches!(c.downcast_ref(), Some(k2_trainer::TrainError::Mismatch(_))));
    if checked {
        1
    } else {
        2
    }
}

/// Prints every (checkpoint, reason) that failed; success only when none did (else exit 1: a
/// check failed).
fn report_failures(failed: &[(String, String)]) -> ExitCode {
    for (name, why) in failed {
        eprintln!("error: {name}: {why}");
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The error and its causes joined with ": " (the crates' errors quote their causes instead of
/// returning them as sources, so nothing repeats).
fn error_chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// `task=n` pairs of `--shots`.
fn parse_shots(shots: &[String]) -> Result<Vec<(String, usize)>> {
    shots
        .iter()
        .map(|s| {
            let (t, n) = s
                .split_once('=')
                .with_context(|| format!("--shots `{s}`: expected TASK=N"))?;
            Ok((
                t.to_string(),
                n.parse::<usize>()
                    .with_context(|| format!("--shots `{s}`: N is not a number"))?,
            ))
        })
        .collect()
}

fn main() -> ExitCode {
    // `k2 ckpt list | head` ends quietly instead of panicking on a closed pipe.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    k2_trainer::allocator::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Train {
            config,
            out,
            resume,
            force,
            quiet,
            compute,
        } => {
            let (cfg, explicit) = match &config {
                Some(p) => (k2_trainer::TrainConfig::load(p)?, true),
                None => (k2_trainer::TrainConfig::default_config(), false),
            };
            let s = k2_trainer::train(&k2_trainer::TrainOptions {
                out: out.clone(),
                config: cfg,
                config_explicit: explicit,
                resume,
                force,
                progress: !quiet,
                device: compute.device,
                dtype: compute.dtype,
            })
            .with_context(|| format!("training run {}", out.display()))?;
            if let Some(from) = &s.resumed_from {
                println!("resumed from {from}");
            }
            for e in &s.rollbacks {
                println!(
                    "malignant loss spike at steps {}-{}: rolled back to {}, chunk {} deferred, diverged state kept as {}",
                    e.start_step,
                    e.end_step,
                    e.rollback_to.as_deref().unwrap_or("-"),
                    e.deferred_chunk.map_or("-".into(), |c| c.to_string()),
                    e.spike_checkpoints.join(", ")
                );
            }
            println!(
                "trained {} steps in {:.1}s, {} tokens seen, final loss {}; wrote {} checkpoints to {}",
                s.steps,
                s.wall_s,
                s.tokens,
                s.final_loss.map_or("-".into(), |l| format!("{l:.4}")),
                s.checkpoints_written.len(),
                s.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            all_checkpoints,
            run,
            suite,
            model,
            revision,
            dir,
            shard,
            claim,
            claim_ttl,
            status,
            output,
            keep,
            tasks,
            shots,
            limit,
            batch_size,
            data,
            dataset_revision,
            include_path,
            list_tasks,
            verbose,
            probe_docs,
            watch,
            threads,
            compute,
            quiet,
        } => {
            // Every checkpoint is evaluated unless --model: --all-checkpoints may be spelled out.
            let _ = all_checkpoints;
            let index = k2_eval::yaml_tasks::task_index::TaskIndex::build(&include_path)?;
            if list_tasks {
                print!("{}", k2_eval::registry::help());
                if !include_path.is_empty() {
                    let listing = k2_eval::yaml_tasks::task_listing::Listing::of(&index);
                    print!(
                        "\nTask YAMLs ({}):\n{}",
                        include_path
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        listing.render(verbose)
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            k2_trainer::set_threads(threads);
            let arg = match (model, dir, suite) {
                (Some(m), _, _) => k2_eval::sources::SourceArg::model(&m, revision)?,
                (_, Some(d), _) => k2_eval::sources::SourceArg::Dir(d),
                (_, _, Some(s)) => k2_eval::sources::SourceArg::Suite(s),
                _ => k2_eval::sources::SourceArg::Run(run),
            };
            let shots = parse_shots(&shots)?;
            let data = k2_pipeline::data_source(data, &dataset_revision)?;
            let selection =
                k2_eval::registry::select(&tasks, &data, &shots, limit, probe_docs, &index)?;
            let bar = progress::bar("requests", quiet);
            let mut chosen =
                k2_eval::sources::choose(&arg, &output, Some(progress::download_message(&bar)))?;
            let mut job = k2_eval::benchmark_job::BenchmarkJob::new(
                selection.tasks,
                chosen.layout.clone(),
                batch_size,
                compute.placement()?,
            );
            job.groups = selection.groups;
            if status {
                bar.finish_and_clear();
                let pairs = k2_eval::sweep::status(chosen.source.as_mut(), &job, claim_ttl)?;
                print!("{}", k2_eval::summary::status_table(&pairs));
                return Ok(ExitCode::SUCCESS);
            }
            let opts = k2_eval::sweep::SweepOptions {
                shard: shard.unwrap_or_default(),
                claim_ttl_s: claim.then_some(claim_ttl),
                keep,
                watch: watch.then(|| std::time::Duration::from_millis(500)),
            };
            let report =
                k2_eval::sweep::sweep(chosen.source.as_mut(), &job, &opts, &bar, &mut |line| {
                    bar.suspend(|| eprintln!("{line}"))
                })?;
            bar.finish_and_clear();
            job.write_groups(&report)?;
            print!("{}", job.table(&report)?);
            println!(
                "{}; results in {}",
                report.summary_line("evaluated"),
                k2_eval::sweep::Job::root(&job).display()
            );
            Ok(report_failures(&report.failed()))
        }
        Command::Hub(cmd) => hub_cmd::run(cmd),
        Command::Analyze(cmd) => analyze_cmd::run(cmd),
        Command::Compare(args) => compare_cmd::run(args),
        Command::Quickstart {
            config,
            quiet,
            compute,
        } => {
            let ok = k2_pipeline::quickstart(
                &k2_pipeline::QuickstartOptions {
                    config,
                    quiet,
                    device: compute.device,
                    dtype: compute.dtype,
                    ..Default::default()
                },
                &mut std::io::stdout(),
                &|unit| progress::bar(unit, quiet),
            )?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Report {
            run,
            lm_eval_results,
            published_results,
            out,
            name,
            log_x,
        } => {
            let run = match (&run, &lm_eval_results) {
                (None, None) => Some(PathBuf::from(k2_pipeline::DEFAULT_RUN)),
                _ => run,
            };
            let name = name.unwrap_or_else(|| match &run {
                Some(r) => r
                    .file_name()
                    .map_or("run".into(), |n| n.to_string_lossy().to_string()),
                None => "lm-eval".into(),
            });
            let s = k2_analysis::render_report(&k2_analysis::ReportOptions {
                run,
                lm_eval_results,
                published_results,
                out,
                name,
                log_x,
            })?;
            println!(
                "report: {} ({} figures, {} series, {} tasks, {} points)",
                s.readme.display(),
                s.figures.len(),
                s.series.len(),
                s.tasks.len(),
                s.points
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(DataCommand::Batch { run, step, json }) => {
            let (loc, samples) = k2_trainer::decoded_batch_of_step(&run, step)?;
            if json {
                for s in &samples {
                    println!("{}", serde_json::to_string(s)?);
                }
            } else {
                println!(
                    "step {}: chunk {} (position {} of the chunk order), samples {}..{}",
                    loc.step,
                    loc.chunk,
                    loc.position,
                    loc.first_sample,
                    loc.first_sample + loc.samples
                );
                println!(
                    "{:>4}  {:<18} {:>12} {:>8}  {:<40}  text",
                    "#", "source", "document", "offset", "first tokens"
                );
                for (i, d) in samples.iter().enumerate() {
                    let s = &d.sample;
                    let head: Vec<String> =
                        s.token_ids.iter().take(8).map(|t| t.to_string()).collect();
                    let text: String = d.text.escape_debug().take(100).collect();
                    println!(
                        "{:>4}  {:<18} {:>12} {:>8}  {:<40}  {}...",
                        i,
                        s.source,
                        s.doc,
                        s.offset,
                        head.join(" ") + " ...",
                        text
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(a) => verify_cmd::run(a),
        Command::Ckpt(CkptCommand::List { run }) => {
            let m = k2_archive::Manifest::load(&k2_archive::RunLayout::new(&run).manifest_path())?;
            println!(
                "{:<16} {:>7} {:>12} {:>8} {:>6} {:<12} {:>9}",
                "name", "step", "tokens", "chunks", "stage", "status", "wall (s)"
            );
            for e in &m.checkpoints {
                let chunks: Vec<String> = e.chunks.iter().map(|c| c.to_string()).collect();
                println!(
                    "{:<16} {:>7} {:>12} {:>8} {:>6} {:<12} {:>9.1}",
                    e.name,
                    e.step,
                    e.tokens,
                    chunks.join(","),
                    e.stage,
                    e.status.to_string(),
                    e.wall_time_s
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ckpt(CkptCommand::Verify { run }) => {
            let report = k2_archive::verify_run(&run)?;
            let mut bad = 0;
            for (name, problems) in &report {
                if problems.is_empty() {
                    println!("ok      {name}");
                } else {
                    bad += 1;
                    for p in problems {
                        println!("FAILED  {name}: {p}");
                    }
                }
            }
            println!(
                "{} checkpoints verified, {} with problems",
                report.len(),
                bad
            );
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Model(ModelCommand::Info { model }) => {
            let path = PathBuf::from(&model);
            let cfg = if path.join("config.json").is_file() {
                let arch = k2_model::Arch::from_hf_json(&path.join("config.json"))?;
                if !arch.is_llama() {
                    println!("{}", k2_model::decoder_weights::describe(&arch));
                    return Ok(ExitCode::SUCCESS);
                }
                k2_model::LlamaConfig::from_hf_json(&path.join("config.json"))?
            } else {
                k2_model::preset(&model)?
            };
            println!("{}", k2_trainer::bench::describe_model(&cfg));
            Ok(ExitCode::SUCCESS)
        }
        Command::Model(ModelCommand::Score {
            model,
            file,
            compute,
        }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let placement = compute.placement()?;
            let model = k2_eval::sources::model_dir(&model, None)?;
            let (ids, lp) = k2_model::score::score_text(&model, &text, &placement)?;
            let sum: f64 = lp.iter().map(|&x| x as f64).sum();
            println!(
                "{}",
                serde_json::json!({
                    "model": model.display().to_string(),
                    "device": k2_model::device_kind(&placement.device),
                    "dtype": k2_model::dtype_name(placement.dtype_for(&model)?),
                    "tokens": ids,
                    "logprobs": lp,
                    "sum": sum,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Model(ModelCommand::Init {
            preset,
            out,
            tokenizer,
            seed,
            dtype,
            max_shard_size,
            max_positions,
        }) => {
            let mut cfg = k2_model::preset(&preset)?;
            if let Some(n) = max_positions {
                anyhow::ensure!(n > 0, "--max-positions: must be at least 1");
                cfg.max_position_embeddings = n;
            }
            let storage = k2_trainer::init::InitStorage {
                dtype: dtype
                    .as_deref()
                    .map(k2_model::device::parse_float_dtype)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--dtype: {e}"))?,
                max_shard_bytes: max_shard_size
                    .as_deref()
                    .map(k2_model::streaming_writer::parse_size)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--max-shard-size: {e}"))?,
            };
            k2_trainer::init::write_initialized_model(
                &cfg,
                seed,
                tokenizer.as_deref(),
                &out,
                storage,
            )?;
            println!(
                "wrote {} ({} parameters) to {}",
                preset,
                cfg.num_params(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Eval {
            model,
            tasks,
            shots,
            limit,
            batch_size,
            data,
            threads,
            compute,
        }) => {
            k2_trainer::set_threads(threads);
            let shots = parse_shots(&shots)?;
            let data = k2_pipeline::data_source(data, &[])?;
            let specs = k2_eval::registry::specs(&tasks, &data, &shots, Some(limit), 200)?;
            let placement = compute.placement()?;
            for r in k2_eval::bench::bench_eval(
                &k2_eval::sources::model_dir(&model, None)?,
                &specs,
                batch_size,
                &placement,
            )? {
                println!("{}", serde_json::to_string(&r)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Train {
            preset,
            batch,
            seq,
            threads,
            warmup,
            steps,
            json,
            peak_tflops,
            compute,
        }) => {
            let r = k2_trainer::bench::bench_train(&k2_trainer::bench::BenchOptions {
                preset,
                batch,
                seq,
                threads,
                warmup,
                steps,
                device: compute.device,
                dtype: compute.dtype.or(k2_model::DType::F32),
                peak_tflops,
            })?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{}", r.table());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
