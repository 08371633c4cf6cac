//! Dataset repositories on the Hub: the data files of one config and split, found in a listing of
//! the repository at a revision, pulled into the shared cache (`datasets--org--name/`, the folders
//! `huggingface_hub` and `datasets` use) and verified; or found in the cache alone when offline.
//!
//! Which files hold a split follows the layouts the Hub's datasets use:
//! - `CONFIG/SPLIT-00000-of-00001.parquet` (a config per folder: `allenai/ai2_arc`, `cais/mmlu`);
//! - `data/SPLIT-*.parquet` or top-level `SPLIT*.jsonl` (a repository without configs);
//! - `CONFIG/SPLIT/0000.parquet` and `CONFIG/NAME-SPLIT.parquet`: the Hub's parquet export of a
//!   repository that still holds a loading script (`refs/convert/parquet`), read when the
//!   revision itself has no data files for the split.
//!
//! A file holds a split when a folder of its path is the split's name, or its file name is the
//! split's name followed by `-` or `.`, or ends with `-SPLIT` before its extension (the
//! export's `hellaswag-validation.parquet`). Data files end in `.parquet`, `.jsonl` or `.json`.

use std::path::PathBuf;

use super::client::HubClient;
use super::error::{HubError, Result};
use super::pull::pull_file;

/// The revision holding the Hub's parquet export of a repository with a loading script.
pub const PARQUET_EXPORT: &str = "refs/convert/parquet";

/// Extensions of the data files k2 reads.
pub const DATA_EXTENSIONS: &[&str] = &[".parquet", ".jsonl", ".json"];

/// One config and split of a dataset repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRef {
    pub repo: String,
    /// `None`: the repository has one, unnamed config (`default`).
    pub config: Option<String>,
    pub split: String,
}

/// The files of a split, present on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitFiles {
    pub split: SplitRef,
    /// The revision the files were read at (the one asked for, or [`PARQUET_EXPORT`]).
    pub revision: String,
    /// The commit it resolved to.
    pub commit: String,
    /// Paths inside the repository, sorted, with where they are on disk.
    pub files: Vec<(String, PathBuf)>,
    /// Bytes downloaded now (0: all from the cache).
    pub bytes_downloaded: u64,
}

fn is_data_file(path: &str) -> bool {
    DATA_EXTENSIONS.iter().any(|e| path.ends_with(e))
}

/// The name of a file without its data extension (`test-00000-of-00001`).
fn stem(name: &str) -> &str {
    DATA_EXTENSIONS
        .iter()
        .find_map(|e| name.strip_suffix(e))
        .unwrap_or(name)
}

/// Whether the path (inside the config's folder) holds `split`.
fn holds_split(rel: &str, split: &str) -> bool {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    if parts.contains(&split) {
        return true;
    }
    let s = stem(name);
    s == split
        || [format!("{split}-"), format!("{split}.")]
            .iter()
            .any(|p| s.starts_with(p.as_str()))
        || s.ends_with(&format!("-{split}"))
        || s.contains(&format!("-{split}-"))
}

/// The folder a config's files live in, among `files` (the config's own folder, else `data/`,
/// else the top level); `Err` with the configs the listing has when `config` names none of them.
fn config_prefix(files: &[&str], config: Option<&str>) -> std::result::Result<String, Vec<String>> {
    let data: Vec<&str> = files.iter().copied().filter(|f| is_data_file(f)).collect();
    if let Some(c) = config {
        let p = format!("{c}/");
        if data.iter().any(|f| f.starts_with(&p)) {
            return Ok(p);
        }
        if c != "default" {
            let mut configs: Vec<String> = data
                .iter()
                .filter_map(|f| f.split_once('/').map(|(d, _)| d.to_string()))
                .filter(|d| d != "data")
                .collect();
            configs.sort();
            configs.dedup();
            return Err(configs);
        }
    }
    if data.iter().any(|f| f.starts_with("data/")) {
        return Ok("data/".into());
    }
    Ok(String::new())
}

/// The data files of `config`/`split` among a repository's `files` (sorted); `Err` says why none.
pub fn select_split_files(
    files: &[&str],
    config: Option<&str>,
    split: &str,
) -> std::result::Result<Vec<String>, String> {
    let prefix = config_prefix(files, config).map_err(|configs| {
        format!(
            "it has no config `{}` (configs with data files: {})",
            config.unwrap_or_default(),
            if configs.is_empty() {
                "none".to_string()
            } else {
                configs.join(", ")
            }
        )
    })?;
    let mut out: Vec<String> = files
        .iter()
        .filter(|f| is_data_file(f))
        .filter_map(|f| f.strip_prefix(prefix.as_str()).map(|rel| (f, rel)))
        .filter(|(_, rel)| holds_split(rel, split))
        .map(|(f, _)| f.to_string())
        .collect();
    out.sort();
    if out.is_empty() {
        let mut splits: Vec<String> = files
            .iter()
            .filter(|f| is_data_file(f))
            .filter_map(|f| f.strip_prefix(prefix.as_str()))
            .map(|rel| {
                let s = stem(rel.rsplit('/').next().unwrap_or(rel));
                s.split(['-', '_', '.']).next().unwrap_or(s).to_string()
            })
            .collect();
        splits.sort();
        splits.dedup();
        return Err(format!(
            "it has no data files for split `{split}`{} (files there begin: {})",
            if prefix.is_empty() {
                String::new()
            } else {
                format!(" under `{prefix}`")
            },
            if splits.is_empty() {
                "none".to_string()
            } else {
                splits.join(", ")
            }
        ));
    }
    Ok(out)
}

fn not_found(s: &SplitRef, revision: &str, why: String) -> HubError {
    HubError::DatasetSplit {
        repo: s.repo.clone(),
        split: format!(
            "config `{}` split `{}`",
            s.config.as_deref().unwrap_or("default"),
            s.split
        ),
        revision: revision.to_string(),
        message: why,
    }
}

/// The split's files from the cache alone: `revision` (else the parquet export) must resolve to a
/// snapshot holding them.
pub fn cached_split(client: &HubClient, s: &SplitRef, revision: &str) -> Result<SplitFiles> {
    let cache = &client.cache;
    let mut why = Vec::new();
    for rev in candidates(revision) {
        let Some(commit) = cache.resolve(&s.repo, rev) else {
            why.push(format!("no `{rev}` in the cache"));
            continue;
        };
        let listed = cache.snapshot_files(&s.repo, &commit);
        let names: Vec<&str> = listed.iter().map(String::as_str).collect();
        match select_split_files(&names, s.config.as_deref(), &s.split) {
            Ok(files) => {
                let dir = cache.snapshot_dir(&s.repo, &commit);
                return Ok(SplitFiles {
                    split: s.clone(),
                    revision: rev.to_string(),
                    commit,
                    files: files
                        .into_iter()
                        .map(|f| (f.clone(), dir.join(f)))
                        .collect(),
                    bytes_downloaded: 0,
                });
            }
            Err(e) => why.push(format!("the cached `{rev}` ({commit}): {e}")),
        }
    }
    Err(HubError::Offline {
        cache: cache.root.clone(),
        message: format!(
            "dataset `{}` config `{}` split `{}` is not in the cache ({}); fetch it once with network access",
            s.repo,
            s.config.as_deref().unwrap_or("default"),
            s.split,
            why.join("; ")
        ),
    })
}

/// `revision`, then the parquet export when `revision` is the default branch.
fn candidates(revision: &str) -> Vec<&str> {
    if revision == "main" {
        vec![revision, PARQUET_EXPORT]
    } else {
        vec![revision]
    }
}

/// Pulls the files of a split at `revision` into the cache (verified, resumable), or with
/// `HF_HUB_OFFLINE=1` finds them there. When the revision has no data files for the split (a
/// repository with a loading script) the Hub's parquet export is read instead. When the Hub cannot
/// be reached at all, a split already in the cache is used, as `datasets` does.
pub fn pull_split(client: &HubClient, s: &SplitRef, revision: &str) -> Result<SplitFiles> {
    if client.offline {
        return cached_split(client, s, revision);
    }
    match pull_online(client, s, revision) {
        Err(HubError::Network {
            url,
            message,
            attempts,
        }) => cached_split(client, s, revision).map_err(|_| HubError::Network {
            url,
            message: format!(
                "{message}; the split is not in the cache ({}) either",
                client.cache.root.display()
            ),
            attempts,
        }),
        other => other,
    }
}

fn pull_online(client: &HubClient, s: &SplitRef, revision: &str) -> Result<SplitFiles> {
    let mut why = Vec::new();
    for rev in candidates(revision) {
        let info = match client.revision_info(&s.repo, rev) {
            Ok(i) => i,
            // The export branch exists only for some repositories.
            Err(HubError::RevisionNotFound { .. }) if rev == PARQUET_EXPORT => {
                why.push(format!("no `{PARQUET_EXPORT}` export"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let names: Vec<&str> = info.siblings.iter().map(|f| f.rfilename.as_str()).collect();
        let files = match select_split_files(&names, s.config.as_deref(), &s.split) {
            Ok(f) => f,
            Err(e) => {
                why.push(format!("at `{rev}` ({}) {e}", info.sha));
                continue;
            }
        };
        let mut bytes = 0;
        let dir = client.cache.snapshot_dir(&s.repo, &info.sha);
        let mut out = Vec::new();
        for f in files {
            let got = pull_file(client, &s.repo, rev, &info, &f)?;
            if got.downloaded {
                bytes += got.size;
            }
            out.push((f.clone(), dir.join(&f)));
        }
        client.cache.write_ref(&s.repo, rev, &info.sha)?;
        return Ok(SplitFiles {
            split: s.clone(),
            revision: rev.to_string(),
            commit: info.sha,
            files: out,
            bytes_downloaded: bytes,
        });
    }
    Err(not_found(s, revision, why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(files: &[&str], config: Option<&str>, split: &str) -> Vec<String> {
        select_split_files(files, config, split).unwrap()
    }

    #[test]
    fn split_files_of_the_hub_layouts() {
        let arc = [
            "README.md",
            "ARC-Challenge/test-00000-of-00001.parquet",
            "ARC-Easy/test-00000-of-00001.parquet",
            "ARC-Easy/train-00000-of-00001.parquet",
            "ARC-Easy/validation-00000-of-00001.parquet",
        ];
        assert_eq!(
            pick(&arc, Some("ARC-Easy"), "test"),
            ["ARC-Easy/test-00000-of-00001.parquet"]
        );
        let e = select_split_files(&arc, Some("ARC-Hard"), "test").unwrap_err();
        assert!(e.contains("ARC-Challenge, ARC-Easy"), "{e}");
        let e = select_split_files(&arc, Some("ARC-Easy"), "dev").unwrap_err();
        assert!(
            e.contains("split `dev`") && e.contains("test, train"),
            "{e}"
        );
        // The parquet export, both of its layouts.
        let export = [
            "default/validation/0000.parquet",
            "default/validation/0001.parquet",
            "default/train/0000.parquet",
        ];
        assert_eq!(
            pick(&export, Some("default"), "validation"),
            [
                "default/validation/0000.parquet",
                "default/validation/0001.parquet"
            ]
        );
        let old = [
            "default/hellaswag-train.parquet",
            "default/hellaswag-validation.parquet",
        ];
        assert_eq!(
            pick(&old, None, "validation"),
            ["default/hellaswag-validation.parquet"]
        );
        // No configs: data/ or the top level.
        let piqa = [
            "data/train-00000-of-00001.parquet",
            "data/validation-00000-of-00001.parquet",
            "piqa.py",
        ];
        assert_eq!(
            pick(&piqa, None, "validation"),
            ["data/validation-00000-of-00001.parquet"]
        );
        let flat = ["test.jsonl", "train.jsonl", "train_socratic.jsonl"];
        assert_eq!(pick(&flat, None, "train"), ["train.jsonl"]);
        assert_eq!(pick(&flat, Some("default"), "test"), ["test.jsonl"]);
        // A split name inside another word is not the split.
        let tricky = ["main/testing-00000.parquet", "main/test-00000.parquet"];
        assert_eq!(
            pick(&tricky, Some("main"), "test"),
            ["main/test-00000.parquet"]
        );
    }
}

/// Named files of a dataset repository at `revision` (a task's `data_files` with
/// `hf://datasets/<repo>/<path>`), pulled into the cache or, offline, found there. `split` names
/// the split they make up in the returned record.
pub fn pull_files(
    client: &HubClient,
    repo: &str,
    revision: &str,
    split: &str,
    files: &[String],
) -> Result<SplitFiles> {
    let sref = SplitRef {
        repo: repo.to_string(),
        config: None,
        split: split.to_string(),
    };
    let cached = || -> Result<SplitFiles> {
        let cache = &client.cache;
        let commit = cache.resolve(repo, revision).ok_or_else(|| HubError::Offline {
            cache: cache.root.clone(),
            message: format!(
                "dataset `{repo}` at `{revision}` is not in the cache; fetch it once with network access"
            ),
        })?;
        let mut out = Vec::new();
        for f in files {
            let p = cache
                .cached_file(repo, revision, f)
                .ok_or_else(|| HubError::Offline {
                    cache: cache.root.clone(),
                    message: format!("`{f}` of dataset `{repo}` is not in the cache"),
                })?;
            out.push((f.clone(), p));
        }
        Ok(SplitFiles {
            split: sref.clone(),
            revision: revision.to_string(),
            commit,
            files: out,
            bytes_downloaded: 0,
        })
    };
    if client.offline {
        return cached();
    }
    let info = match client.revision_info(repo, revision) {
        Ok(i) => i,
        Err(HubError::Network { .. }) if cached().is_ok() => return cached(),
        Err(e) => return Err(e),
    };
    let dir = client.cache.snapshot_dir(repo, &info.sha);
    let mut out = Vec::new();
    let mut bytes = 0;
    for f in files {
        if info.sibling(f).is_none() {
            return Err(HubError::DatasetSplit {
                repo: repo.to_string(),
                split: split.to_string(),
                revision: revision.to_string(),
                message: format!("the repository has no file `{f}`"),
            });
        }
        let got = pull_file(client, repo, revision, &info, f)?;
        if got.downloaded {
            bytes += got.size;
        }
        out.push((f.clone(), dir.join(f)));
    }
    client.cache.write_ref(repo, revision, &info.sha)?;
    Ok(SplitFiles {
        split: sref,
        revision: revision.to_string(),
        commit: info.sha,
        files: out,
        bytes_downloaded: bytes,
    })
}
