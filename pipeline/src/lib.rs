//! k2-pipeline: the whole loop on the built-in default, as `k2 quickstart` runs it — train the
//! default run, evaluate every checkpoint on the built-in probes, measure memorization of the
//! training data, render the report. Each step continues where an earlier, interrupted
//! quickstart stopped. Shared defaults of the commands live here too, so the CLI states none of
//! its own.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use indicatif::ProgressBar;
use k2_model::{DTypeSpec, DeviceSpec, Placement};

/// The default run directory of `k2 train`, `k2 eval`, `k2 report`, ...
pub const DEFAULT_RUN: &str = "runs/default";
/// The default reports directory.
pub const DEFAULT_REPORTS: &str = "reports";
/// The default results directory of `--model`, `--dir` and Hub suites.
pub const DEFAULT_RESULTS: &str = "eval-results";
/// Requests scored together by `k2 eval`.
pub const EVAL_BATCH_SIZE: usize = 8;
/// Probes per built-in probe task.
pub const PROBE_DOCS: usize = 200;
/// Sequences decoded together by `k2 analyze memorization`.
pub const MEMORIZATION_BATCH_SIZE: usize = 64;
/// Batch sizes of `k2 quickstart`, for the 1.1M-parameter default model: larger batches amortize
/// the per-step overhead of its small products (measured on a 2-core AMD EPYC: memorization 79.5 s
/// -> 63.7 s, evaluation 47.8 s -> 38.7 s, identical metrics). The commands keep the defaults
/// above, which suit 7B-65B models.
pub const QUICKSTART_EVAL_BATCH_SIZE: usize = 32;
pub const QUICKSTART_MEMORIZATION_BATCH_SIZE: usize = 512;
/// CPU threads of the commands that compute.
pub const THREADS: usize = 2;

/// Where `k2 eval` reads benchmark data: a local folder laid out like the Hub (`--data DIR`), else
/// the Hub (and its cache) as the environment sets it, with `--dataset-revision TASK=REV` pins.
pub fn data_source(
    data: Option<PathBuf>,
    revisions: &[String],
) -> Result<k2_eval::datasets::DataSource> {
    let mut pins = std::collections::BTreeMap::new();
    for r in revisions {
        let (task, rev) = r
            .split_once('=')
            .filter(|(t, v)| !t.is_empty() && !v.is_empty())
            .ok_or_else(|| anyhow::anyhow!("--dataset-revision `{r}`: expected TASK=REVISION"))?;
        pins.insert(task.to_string(), rev.to_string());
    }
    match data {
        Some(dir) => {
            if !pins.is_empty() {
                anyhow::bail!(
                    "--dataset-revision pins Hub revisions; it does not apply with --data"
                );
            }
            if !dir.is_dir() {
                anyhow::bail!(
                    "--data {}: no such directory (it holds <org>/<name>/ folders laid out like the Hub's dataset repositories)",
                    dir.display()
                );
            }
            Ok(k2_eval::datasets::DataSource::Local(dir))
        }
        None => Ok(k2_eval::datasets::DataSource::hub_from_env(pins)),
    }
}

/// What `k2 quickstart` runs on.
pub struct QuickstartOptions {
    /// A training config instead of the built-in default (e.g. configs/acquisition.toml).
    pub config: Option<PathBuf>,
    /// The run directory; `None`: `runs/<config name>` (`runs/default` for the default).
    pub run: Option<PathBuf>,
    pub reports: PathBuf,
    pub quiet: bool,
    pub device: DeviceSpec,
    pub dtype: DTypeSpec,
}

impl Default for QuickstartOptions {
    fn default() -> Self {
        QuickstartOptions {
            config: None,
            run: None,
            reports: PathBuf::from(DEFAULT_REPORTS),
            quiet: false,
            device: DeviceSpec::Auto,
            dtype: DTypeSpec::Auto,
        }
    }
}

/// Runs the loop, writing its progress to `out` and drawing bars made by `bar` (named by their
/// unit). Ok(true) when every checkpoint was evaluated and measured.
pub fn quickstart(
    o: &QuickstartOptions,
    out: &mut dyn Write,
    bar: &dyn Fn(&str) -> ProgressBar,
) -> Result<bool> {
    let placement = Placement::new(o.device, o.dtype)?;
    let config = match &o.config {
        Some(p) => k2_trainer::TrainConfig::load(p)?,
        None => k2_trainer::TrainConfig::default_config(),
    };
    let run = o
        .run
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
    let run_dir = &run;
    let resume = k2_archive::RunLayout::new(run_dir).manifest_path().exists();
    writeln!(
        out,
        "[1/8] training {} ({})",
        run_dir.display(),
        if resume { "resuming" } else { "new run" }
    )?;
    let s = k2_trainer::train(&k2_trainer::TrainOptions {
        out: run_dir.clone(),
        config: config.clone(),
        config_explicit: o.config.is_some(),
        resume,
        force: false,
        progress: !o.quiet,
        device: o.device,
        dtype: o.dtype,
    })?;
    writeln!(
        out,
        "      {} steps, {} checkpoints written in {:.1}s",
        s.steps,
        s.checkpoints_written.len(),
        s.wall_s
    )?;

    writeln!(
        out,
        "[2/8] evaluating every checkpoint on the built-in probes"
    )?;
    let specs = k2_eval::registry::specs(
        &["default".to_string()],
        &k2_eval::datasets::DataSource::None,
        &[],
        None,
        PROBE_DOCS,
    )?;
    let job = k2_eval::benchmark_job::BenchmarkJob::new(
        specs,
        k2_eval::benchmark_job::ResultsLayout::PerCheckpoint(
            k2_archive::RunLayout::new(run_dir).eval_dir(),
        ),
        QUICKSTART_EVAL_BATCH_SIZE,
        placement.clone(),
    );
    let b = bar("requests");
    let evaluated = k2_eval::sweep::sweep(
        &mut k2_archive::RunSource::with_statuses(run_dir, k2_eval::sources::run_statuses()),
        &job,
        &Default::default(),
        &b,
        &mut |line| b.suspend(|| eprintln!("{line}")),
    )?;
    b.finish_and_clear();
    write!(out, "{}", k2_eval::summary::table_for_run(run_dir)?)?;

    writeln!(
        out,
        "[3/8] memorization of the training data per checkpoint and chunk"
    )?;
    let b = bar("sequences");
    let measured = k2_eval::memorization_job::measure_run(
        run_dir,
        &k2_eval::memorization::Settings::default(),
        QUICKSTART_MEMORIZATION_BATCH_SIZE,
        &placement,
        &b,
    )?;
    b.finish_and_clear();
    write!(out, "{}", measured.text)?;

    writeln!(
        out,
        "[4/8] per-item dynamics: ages of acquisition, forgetting, emergence"
    )?;
    let data = k2_analysis::items::load(Some(run_dir), None)?;
    let items = k2_analysis::items::all_task_items(&data, &[])?;
    write!(out, "{}", k2_analysis::items_tables::summary_table(&items))?;
    writeln!(out)?;

    writeln!(out, "[5/8] prompt gallery at every checkpoint")?;
    let b = bar("generations");
    let generated = k2_eval::gallery_job::generate_gallery(
        run_dir,
        k2_eval::tasks::gallery::GalleryTask::builtin(),
        &placement,
        &b,
    )?;
    b.finish_and_clear();
    writeln!(out, "      {}", generated.summary_line("generated"))?;

    writeln!(
        out,
        "[6/8] knowledge acquisition of injected facts{}",
        if config.inject_facts.is_empty() {
            " (none injected in this run)"
        } else {
            ""
        }
    )?;
    let mut acquired = None;
    if !config.inject_facts.is_empty() {
        let b = bar("probes");
        let (_, report) = k2_eval::acquisition_job::measure_run(run_dir, &placement, &b)?;
        b.finish_and_clear();
        if let Some(r) = k2_analysis::acquisition_tables::load_run(run_dir)? {
            write!(
                out,
                "{}",
                k2_analysis::acquisition_tables::acquisition_text(&r)
            )?;
        }
        writeln!(out, "      {}", report.summary_line("measured"))?;
        acquired = Some(report);
    }

    writeln!(out, "[7/8] token learning curves on held-out text")?;
    let b = bar("documents");
    let tokens = k2_eval::token_curves_job::measure_run(run_dir, &placement, &b)?;
    b.finish_and_clear();
    if let Some(t) = k2_analysis::token_curves::load(run_dir)? {
        write!(out, "{}", k2_analysis::token_curves::tokens_text(&t))?;
    }
    writeln!(out, "      {}", tokens.summary_line("measured"))?;

    writeln!(out, "[8/8] rendering the report")?;
    let r = k2_analysis::render_report(&k2_analysis::ReportOptions {
        run: Some(run_dir.clone()),
        lm_eval_results: None,
        published_results: None,
        out: o.reports.clone(),
        name: config.name.clone(),
        log_x: false,
    })?;
    writeln!(out, "report: {}", r.readme.display())?;
    let failed: Vec<_> = evaluated
        .failed()
        .into_iter()
        .chain(measured.report.failed())
        .chain(generated.failed())
        .chain(acquired.iter().flat_map(|r| r.failed()))
        .chain(tokens.failed())
        .collect();
    for (name, why) in &failed {
        eprintln!("error: {name}: {why}");
    }
    Ok(failed.is_empty())
}
