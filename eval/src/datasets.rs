//! Where benchmark data comes from: the dataset repositories lm-eval's task YAMLs name, fetched
//! from the Hugging Face Hub into the shared cache (or read from it offline), or a local folder
//! laid out like the Hub (`--data DIR`: `DIR/<org>/<name>/<the repository's files>`).
//!
//! A task asks for a split of its [`Dataset`]; it gets the rows (JSON objects, whatever the file
//! format) with the file and row each came from, for errors, and a [`DatasetRecord`] that pins
//! what was read (repository, config, split, commit, every file's sha256) for the results file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k2_archive::hub::dataset::{select_split_files, SplitFiles, SplitRef};
use k2_archive::hub::{pull_split, HubClient, RepoKind};
use k2_archive::results_file::DatasetRecord;
use serde_json::Value;

use crate::dataset_rows::{read_rows, Row};
use crate::error::{io_err, EvalError, Result};

/// A task's dataset as its lm-eval YAML names it (`dataset_path`, `dataset_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dataset<'a> {
    pub repo: &'a str,
    /// `None`: the repository's one, unnamed config.
    pub config: Option<&'a str>,
}

impl<'a> Dataset<'a> {
    pub const fn new(repo: &'a str, config: Option<&'a str>) -> Self {
        Dataset { repo, config }
    }
}

/// The rows of one split, in file order, with what was read.
#[derive(Debug, Clone)]
pub struct SplitRows {
    /// The files, in the order their rows appear.
    pub files: Vec<PathBuf>,
    /// `(index into files, row)`.
    pub rows: Vec<(usize, Row)>,
    pub record: DatasetRecord,
}

impl SplitRows {
    /// `(file, 1-based row, object)` of every row.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, usize, &Value)> {
        self.rows
            .iter()
            .map(|(f, r)| (self.files[*f].as_path(), r.line, &r.value))
    }

    /// A text identifying the data, for a task's fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(std::slice::from_ref(&self.record))
    }
}

/// A text identifying the splits a task read (repository, config, split, every file's sha256),
/// `|`-joined, for its fingerprint.
pub fn fingerprint_of(records: &[DatasetRecord]) -> String {
    records
        .iter()
        .map(|r| {
            let files: Vec<String> = r.files.iter().map(|(n, h)| format!("{n}={h}")).collect();
            format!("{}/{}/{}:{}", r.repo, r.config, r.split, files.join(","))
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Where the data files are.
#[derive(Clone)]
pub enum DataSource {
    /// The Hub (or its cache, offline), with per-task revision pins (`--dataset-revision
    /// TASK=REV`; a pin on `mmlu` covers every `mmlu_<subject>`).
    Hub {
        client: Box<HubClient>,
        pins: BTreeMap<String, String>,
    },
    /// A folder laid out like the Hub: `DIR/<org>/<name>/...`.
    Local(PathBuf),
    /// No benchmark data (the built-in probes only); asking for a split is an error.
    None,
    /// The Hub was asked for but cannot be used here (no cache location): the reason, reported
    /// when a task needs a dataset, so runs of the built-in probes still work.
    Unavailable(String),
}

impl std::fmt::Debug for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Hub { client, pins, .. } => f
                .debug_struct("Hub")
                .field("endpoint", &client.endpoint)
                .field("pins", pins)
                .finish(),
            DataSource::Local(p) => f.debug_tuple("Local").field(p).finish(),
            DataSource::None => f.write_str("None"),
            DataSource::Unavailable(why) => f.debug_tuple("Unavailable").field(why).finish(),
        }
    }
}

fn sha256_of(path: &Path) -> Result<String> {
    k2_archive::sha256_file(path).map_err(|e| EvalError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl DataSource {
    /// The Hub as the environment sets it (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`,
    /// `HF_HOME` / `HF_HUB_CACHE`).
    /// When the environment gives no cache location, the source is [`DataSource::Unavailable`]:
    /// the error comes when a task needs a dataset.
    pub fn hub_from_env(pins: BTreeMap<String, String>) -> Self {
        match HubClient::from_env() {
            Ok(client) => DataSource::Hub {
                client: Box::new(client.for_kind(RepoKind::Dataset)),
                pins,
            },
            Err(e) => DataSource::Unavailable(e.to_string()),
        }
    }

    /// The revision to read `task`'s data at.
    pub fn revision_for(&self, task: &str) -> String {
        let DataSource::Hub { pins, .. } = self else {
            return "main".into();
        };
        pins.get(task)
            .or_else(|| {
                pins.iter()
                    .find(|(k, _)| {
                        task.strip_prefix(k.as_str())
                            .is_some_and(|r| r.starts_with('_'))
                    })
                    .map(|(_, v)| v)
            })
            .cloned()
            .unwrap_or_else(|| "main".into())
    }

    /// The rows of `split` of `dataset`, for `task`.
    pub fn split(&self, task: &str, dataset: &Dataset, split: &str) -> Result<SplitRows> {
        self.split_of(task, dataset.repo, dataset.config, split)
    }

    /// The rows of `split` of repository `repo` (config `config`), for `task`.
    pub fn split_of(
        &self,
        task: &str,
        repo: &str,
        config: Option<&str>,
        split: &str,
    ) -> Result<SplitRows> {
        let dataset = Dataset { repo, config };
        let sref = SplitRef {
            repo: dataset.repo.to_string(),
            config: dataset.config.map(str::to_string),
            split: split.to_string(),
        };
        let files = match self {
            DataSource::Hub { client, .. } => pull_split(client, &sref, &self.revision_for(task))?,
            DataSource::Local(root) => local_split(root, &sref)?,
            DataSource::None => {
                return Err(EvalError::Settings(format!(
                    "task `{task}` needs dataset `{}`, but no data source was given",
                    dataset.repo
                )))
            }
            DataSource::Unavailable(why) => {
                return Err(EvalError::Settings(format!(
                    "task `{task}` needs dataset `{}` from the Hub: {why}",
                    dataset.repo
                )))
            }
        };
        let local = matches!(self, DataSource::Local(_));
        rows_of(files, local)
    }
}

impl DataSource {
    /// The rows of a split given as data files (lm-eval's `dataset_path: json|csv|parquet` with
    /// `dataset_kwargs.data_files`): local paths, or `hf://datasets/<org>/<name>[@rev]/<path>`
    /// read from the Hub (or from `--data DIR/<org>/<name>/<path>`).
    pub fn data_files(&self, task: &str, split: &str, files: &[String]) -> Result<SplitRows> {
        let mut hub: Option<(String, String)> = None;
        let mut in_repo = Vec::new();
        let mut local = Vec::new();
        for f in files {
            if let Some(rest) = f.strip_prefix("hf://datasets/") {
                let parts: Vec<&str> = rest.splitn(3, '/').collect();
                if parts.len() < 3 {
                    return Err(EvalError::Settings(format!(
                        "task `{task}`: data file `{f}` is not hf://datasets/<org>/<name>/<path>"
                    )));
                }
                let (name, rev) = match parts[1].split_once('@') {
                    Some((n, r)) => (n, r.to_string()),
                    None => (parts[1], self.revision_for(task)),
                };
                let repo = format!("{}/{}", parts[0], name);
                if hub.as_ref().is_some_and(|(r, _)| *r != repo) {
                    return Err(EvalError::Settings(format!(
                        "task `{task}`: split `{split}` reads files of two repositories"
                    )));
                }
                hub = Some((repo, rev));
                in_repo.push(parts[2].to_string());
            } else {
                local.push(PathBuf::from(f));
            }
        }
        if let Some((repo, rev)) = hub {
            if !local.is_empty() {
                return Err(EvalError::Settings(format!(
                    "task `{task}`: split `{split}` mixes hf:// and local data files"
                )));
            }
            let sref = SplitRef {
                repo: repo.clone(),
                config: None,
                split: split.to_string(),
            };
            let got = match self {
                DataSource::Hub { client, .. } => {
                    k2_archive::hub::dataset::pull_files(client, &repo, &rev, split, &in_repo)?
                }
                DataSource::Local(root) => {
                    let dir = root.join(&repo);
                    let mut fs = Vec::new();
                    for f in &in_repo {
                        let p = dir.join(f);
                        if !p.is_file() {
                            return Err(EvalError::Invalid {
                                path: p,
                                message: format!("task `{task}` reads `hf://datasets/{repo}/{f}`; --data has no such file"),
                            });
                        }
                        fs.push((f.clone(), p));
                    }
                    SplitFiles {
                        split: sref,
                        revision: "local".into(),
                        commit: String::new(),
                        files: fs,
                        bytes_downloaded: 0,
                    }
                }
                DataSource::None => {
                    return Err(EvalError::Settings(format!(
                        "task `{task}` needs dataset `{repo}`, but no data source was given"
                    )))
                }
                DataSource::Unavailable(why) => {
                    return Err(EvalError::Settings(format!(
                        "task `{task}` needs dataset `{repo}` from the Hub: {why}"
                    )))
                }
            };
            let local = !matches!(self, DataSource::Hub { .. });
            return rows_of(got, local);
        }
        let mut fs = Vec::new();
        for p in local {
            if !p.is_file() {
                return Err(EvalError::Invalid {
                    path: p,
                    message: format!("task `{task}`: data file for split `{split}` not found"),
                });
            }
            fs.push((p.display().to_string(), p));
        }
        rows_of(
            SplitFiles {
                split: SplitRef {
                    repo: "local".into(),
                    config: None,
                    split: split.to_string(),
                },
                revision: "local".into(),
                commit: String::new(),
                files: fs,
                bytes_downloaded: 0,
            },
            true,
        )
    }
}

/// The files of a split in a local folder laid out like the Hub.
fn local_split(root: &Path, s: &SplitRef) -> Result<SplitFiles> {
    let dir = root.join(&s.repo);
    if !dir.is_dir() {
        return Err(EvalError::Invalid {
            path: dir,
            message: format!(
                "no folder for dataset `{}` (--data expects DIR/<org>/<name>/ with the repository's files)",
                s.repo
            ),
        });
    }
    let mut listed = Vec::new();
    walk(&dir, "", &mut listed).map_err(io_err(&dir))?;
    let names: Vec<&str> = listed.iter().map(String::as_str).collect();
    let files = select_split_files(&names, s.config.as_deref(), &s.split).map_err(|why| {
        EvalError::Invalid {
            path: dir.clone(),
            message: format!(
                "dataset `{}` config `{}` split `{}`: {why}",
                s.repo,
                s.config.as_deref().unwrap_or("default"),
                s.split
            ),
        }
    })?;
    Ok(SplitFiles {
        split: s.clone(),
        revision: "local".into(),
        commit: String::new(),
        files: files
            .into_iter()
            .map(|f| (f.clone(), dir.join(f)))
            .collect(),
        bytes_downloaded: 0,
    })
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if e.path().is_dir() {
            walk(&e.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

fn rows_of(got: SplitFiles, local: bool) -> Result<SplitRows> {
    let mut files = Vec::new();
    let mut rows = Vec::new();
    let mut hashes = Vec::new();
    for (i, (name, path)) in got.files.iter().enumerate() {
        hashes.push((name.clone(), sha256_of(path)?));
        rows.extend(read_rows(path)?.into_iter().map(|r| (i, r)));
        files.push(path.clone());
    }
    let commit = if local {
        let all: Vec<&str> = hashes.iter().map(|(_, h)| h.as_str()).collect();
        k2_archive::sha256_bytes(all.join("\n").as_bytes())
    } else {
        got.commit.clone()
    };
    Ok(SplitRows {
        files,
        rows,
        record: DatasetRecord {
            repo: got.split.repo.clone(),
            config: got.split.config.clone().unwrap_or_else(|| "default".into()),
            split: got.split.split.clone(),
            revision: got.revision.clone(),
            commit,
            files: hashes,
        },
    })
}

/// What a task loader gets: the data source, the task's name (for revision pins and errors) and
/// whether to load the few-shot split (a zero-shot run does not fetch it).
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    pub data: &'a DataSource,
    pub task: &'a str,
    pub fewshot: bool,
}

impl Load<'_> {
    pub fn split(&self, dataset: &Dataset, split: &str) -> Result<SplitRows> {
        self.data.split(self.task, dataset, split)
    }

    /// The few-shot split's rows when few-shot examples are asked for.
    pub fn fewshot_split(&self, dataset: &Dataset, split: &str) -> Result<Option<SplitRows>> {
        if self.fewshot {
            self.split(dataset, split).map(Some)
        } else {
            Ok(None)
        }
    }
}
