//! The prompt gallery of a run as a sweep: every `ok` and `spike` checkpoint continues every
//! gallery prompt ([`crate::tasks::gallery`]), written per checkpoint as
//! `<run>/gallery/<checkpoint>/k2_gallery.json` and `.samples.jsonl` by the benchmark job, so it
//! is resumable and atomic as evaluation is: a checkpoint whose files were made from the same
//! weights and prompts is skipped.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use k2_archive::CheckpointStatus;

use crate::benchmark_job::{BenchmarkJob, ResultsLayout, TaskSpec};
use crate::error::Result;
use crate::sweep::SweepReport;
use crate::tasks::gallery::GalleryTask;

/// `<run>/gallery`.
pub fn gallery_dir(run: &Path) -> PathBuf {
    run.join("gallery")
}

/// Generates the gallery at every `ok` and `spike` checkpoint of `run` that lacks it.
pub fn generate_gallery(
    run: &Path,
    task: GalleryTask,
    placement: &k2_model::Placement,
    bar: &ProgressBar,
) -> Result<SweepReport> {
    if !run.is_dir() {
        return Err(crate::EvalError::Invalid {
            path: run.to_path_buf(),
            message: "run directory does not exist".into(),
        });
    }
    let job = BenchmarkJob::new(
        vec![TaskSpec {
            task: Box::new(task),
            shots: 0,
            limit: None,
        }],
        ResultsLayout::PerCheckpoint(gallery_dir(run)),
        1,
        placement.clone(),
    );
    let mut source = k2_archive::RunSource::with_statuses(
        run,
        vec![CheckpointStatus::Ok, CheckpointStatus::Spike],
    );
    crate::sweep::sweep(&mut source, &job, &Default::default(), bar, &mut |l| {
        bar.suspend(|| eprintln!("{l}"))
    })
}
