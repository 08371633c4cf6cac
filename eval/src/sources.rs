//! The checkpoint source a `k2 eval` command line names, and where its results go:
//!
//! | flag             | source                 | results                                 |
//! |------------------|------------------------|-----------------------------------------|
//! | `--run DIR`      | a k2 run               | `DIR/eval/<ckpt>/<task>.json`           |
//! | `--suite NAME`   | `checkpoints.toml`     | a run's, or `<output>/NAME/<rev>/...`   |
//! | `--dir DIR`      | HF checkpoint folders  | `<output>/<DIR's name>/<ckpt>/...`      |
//! | `--model DIR`    | one HF model directory | `<output>/<task>.json`                  |
//! | `--model ORG/NAME [--revision R]` | that model pulled from the Hub | `<output>/<task>.json` |
//!
//! `--model X` is a local directory when `X` exists on disk; otherwise, when `X` has the form of a
//! Hub repository id (`org/name`), it is pulled from the Hub (or read from its cache offline). A
//! directory that happens to look like a repository id therefore always wins; write `./org/name`
//! to make the choice explicit.

use std::path::{Path, PathBuf};

use k2_archive::hub::client::ProgressFn;
use k2_archive::hub::HubClient;
use k2_archive::{CheckpointSource, DirSource, HubSource, ModelSource, RunSource};

use crate::benchmark_job::ResultsLayout;
use crate::error::Result;
use crate::suites::{resolve_suite, SuiteTarget};

/// What the command line asked to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceArg {
    Run(PathBuf),
    Suite(String),
    Dir(PathBuf),
    Model(PathBuf),
    /// A model repository on the Hub at a revision.
    HubModel {
        repo: String,
        revision: String,
    },
}

impl SourceArg {
    /// What `--model X [--revision R]` names: a local directory if `X` exists, else a Hub
    /// repository id. A `--revision` with a local directory is an error.
    pub fn model(x: &Path, revision: Option<String>) -> Result<SourceArg> {
        if x.exists() {
            if let Some(r) = revision {
                return Err(crate::EvalError::Settings(format!(
                    "--revision {r}: `{}` is a local directory; --revision applies to a Hub repository id",
                    x.display()
                )));
            }
            return Ok(SourceArg::Model(x.to_path_buf()));
        }
        let id = x.to_string_lossy().to_string();
        if k2_archive::hub::cache::check_repo_id(&id).is_err() || !id.contains('/') {
            return Err(crate::EvalError::Invalid {
                path: x.to_path_buf(),
                message: "no such directory, and not a Hub repository id (ORG/NAME)".into(),
            });
        }
        Ok(SourceArg::HubModel {
            repo: id,
            revision: revision.unwrap_or_else(|| "main".into()),
        })
    }
}

/// A source with the layout of its results.
pub struct Chosen {
    pub source: Box<dyn CheckpointSource>,
    pub layout: ResultsLayout,
    /// The run directory, for a k2 run (what `--watch` follows).
    pub run: Option<PathBuf>,
}

/// k2 evaluates the families of [`k2_model::SUPPORTED_MODEL_TYPES`]: a Hub suite of another
/// architecture (or with an option k2 does not implement) stops before any weights are downloaded.
fn supported_family(config: &Path) -> std::result::Result<(), String> {
    k2_model::Arch::from_hf_json(config)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The checkpoints of a k2 run that `k2 eval` evaluates: the lineage (`ok`) and the spike
/// checkpoints kept beside it (K2 released its spike checkpoints too; `k2 compare` reads them).
pub fn run_statuses() -> Vec<k2_archive::CheckpointStatus> {
    vec![
        k2_archive::CheckpointStatus::Ok,
        k2_archive::CheckpointStatus::Spike,
    ]
}

/// The model directory of `repo@revision` pulled into the Hugging Face cache (verified,
/// resumable; the cache alone with `HF_HUB_OFFLINE=1` or without a network), or the view beside
/// the cache that adds a converted tokenizer or safetensors where the release lacks them.
pub fn hub_model_dir(repo: &str, revision: &str, progress: Option<ProgressFn>) -> Result<PathBuf> {
    let mut client = HubClient::from_env()?;
    client.progress = progress;
    // Without a network the cache answers, as transformers does.
    let pulled =
        match k2_archive::hub::pull(&client, repo, revision, &Default::default(), &mut |_| {}) {
            Err(e @ k2_archive::hub::HubError::Network { .. }) => {
                k2_archive::hub::cached(&client, repo, revision).map_err(|_| e)?
            }
            other => other?,
        };
    let view = client.cache.view_dir(repo, &pulled.commit);
    crate::model_view::model_dir(&pulled.dir, Some(&view))
}

/// A model directory from what a command line names: a local directory, or a Hub repository id
/// pulled at `revision` (default `main`); see the module docs for how a name is resolved.
pub fn model_dir(x: &Path, revision: Option<String>) -> Result<PathBuf> {
    match SourceArg::model(x, revision)? {
        SourceArg::HubModel { repo, revision } => hub_model_dir(&repo, &revision, None),
        _ => Ok(x.to_path_buf()),
    }
}

/// Opens the source `arg` names; Hub downloads report to `progress`.
pub fn choose(arg: &SourceArg, output: &Path, progress: Option<ProgressFn>) -> Result<Chosen> {
    let run = |dir: &Path| Chosen {
        source: Box::new(RunSource::with_statuses(dir, run_statuses())),
        layout: ResultsLayout::PerCheckpoint(dir.join("eval")),
        run: Some(dir.to_path_buf()),
    };
    Ok(match arg {
        SourceArg::Run(dir) => run(dir),
        SourceArg::Suite(name) => match resolve_suite(name)? {
            SuiteTarget::Run(dir) => run(&dir),
            SuiteTarget::Hub(suite) => {
                let mut client = HubClient::from_env()?;
                client.progress = progress;
                let out = output.join(&suite.name);
                Chosen {
                    source: Box::new(HubSource::new(
                        client,
                        *suite,
                        Some(Box::new(supported_family)),
                    )?),
                    layout: ResultsLayout::PerCheckpoint(out),
                    run: None,
                }
            }
        },
        SourceArg::Dir(dir) => {
            let name = std::path::absolute(dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_else(|| "checkpoints".into());
            Chosen {
                source: Box::new(DirSource::new(dir)),
                layout: ResultsLayout::PerCheckpoint(output.join(name)),
                run: None,
            }
        }
        SourceArg::Model(dir) => Chosen {
            source: Box::new(ModelSource::new(dir)),
            layout: ResultsLayout::Flat(output.to_path_buf()),
            run: None,
        },
        SourceArg::HubModel { repo, revision } => Chosen {
            source: Box::new(ModelSource::from_hub(
                hub_model_dir(repo, revision, progress)?,
                repo,
                revision,
            )),
            layout: ResultsLayout::Flat(output.to_path_buf()),
            run: None,
        },
    })
}
