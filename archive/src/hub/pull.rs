//! Pulling a model revision into the cache: the files a model needs (config, tokenizer, weights,
//! shards as `model.safetensors.index.json` lists them), each verified, linked into
//! `snapshots/<commit>/`, and `refs/<revision>` written last. With `HF_HUB_OFFLINE=1` the cache
//! alone answers.

use std::path::{Path, PathBuf};

use super::client::{Ctx, HubClient, RevisionInfo};
use super::download::{fetch_blob, BlobRequest};
use super::error::{HubError, HubIo, Result};

pub const INDEX_FILE: &str = "model.safetensors.index.json";
pub const SINGLE_FILE: &str = "model.safetensors";
/// PyTorch weights, pulled when a revision has no safetensors (evaluation converts them).
pub const PT_INDEX_FILE: &str = "pytorch_model.bin.index.json";
pub const PT_SINGLE_FILE: &str = "pytorch_model.bin";

/// The (index, single file) weight layouts, preferred first.
const LAYOUTS: [(&str, &str); 2] = [(INDEX_FILE, SINGLE_FILE), (PT_INDEX_FILE, PT_SINGLE_FILE)];

/// Small files a model directory needs besides its weights (those present are pulled).
pub const MODEL_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
];

/// One file of a pulled snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct PulledFile {
    pub name: String,
    /// The blob name: the sha256 of an LFS file, the git blob id otherwise.
    pub etag: String,
    /// The verified sha256 (LFS files).
    pub sha256: Option<String>,
    pub size: u64,
    /// Downloaded now (false: already in the cache).
    pub downloaded: bool,
}

/// A revision present in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Pulled {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    /// `snapshots/<commit>/`: an HF model directory.
    pub dir: PathBuf,
    pub files: Vec<PulledFile>,
    /// The weights' sha256 (of the single file, or of the shards' sha256s sorted by name).
    pub weights_sha256: String,
    pub bytes_downloaded: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Every file of the revision, not only the model's.
    pub all_files: bool,
}

/// The weight files an index lists (sorted, unique).
fn index_shards(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).at(path, "read")?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| HubError::Invalid(format!("{}: line {}: {e}", path.display(), e.line())))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| HubError::Invalid(format!("{}: no `weight_map` object", path.display())))?;
    let mut files: Vec<String> = map
        .values()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    files.sort();
    files.dedup();
    // Shard names stay inside the snapshot.
    for f in &files {
        super::cache::check_name("shard name", f)
            .map_err(|e| HubError::Invalid(format!("{}: {e}", path.display())))?;
    }
    Ok(files)
}

/// sha256 of the weights from their sha256s, as `k2 eval` computes `model_sha`.
pub fn combine_weight_hashes(mut hashes: Vec<String>) -> String {
    if hashes.len() == 1 {
        hashes.remove(0)
    } else {
        crate::sha256_bytes(hashes.join("\n").as_bytes())
    }
}

/// The weight files of a model directory: the index's shards, or the single file; safetensors
/// first, else PyTorch `.bin`.
pub fn weight_files_in(dir: &Path) -> Result<Vec<String>> {
    for (index, single) in LAYOUTS {
        if dir.join(index).exists() {
            return index_shards(&dir.join(index));
        }
        if dir.join(single).exists() {
            return Ok(vec![single.to_string()]);
        }
    }
    Err(HubError::Invalid(format!(
        "{}: no {SINGLE_FILE}, {INDEX_FILE}, {PT_SINGLE_FILE} or {PT_INDEX_FILE}",
        dir.display()
    )))
}

/// The sha256 of a file in a snapshot: its blob name when that is a sha256 (LFS), else hashed.
fn snapshot_file_sha256(dir: &Path, file: &str) -> Result<String> {
    let p = dir.join(file);
    if let Ok(t) = std::fs::read_link(&p) {
        if let Some(n) = t.file_name().map(|n| n.to_string_lossy().to_string()) {
            if n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(n);
            }
        }
    }
    crate::sha256_file(&p).map_err(|e| HubError::Invalid(e.to_string()))
}

/// The revision from the cache alone (`HF_HUB_OFFLINE=1`, or a pull that finds it complete).
pub fn cached(client: &HubClient, repo: &str, revision: &str) -> Result<Pulled> {
    let cache = &client.cache;
    let offline = |message: String| HubError::Offline {
        cache: cache.root.clone(),
        message,
    };
    let commit = cache.resolve(repo, revision).ok_or_else(|| {
        offline(format!(
            "`{repo}@{revision}` is not in the cache (pull it once with network access)"
        ))
    })?;
    let dir = cache.snapshot_dir(repo, &commit);
    let incomplete = |what: String| {
        offline(format!(
            "the cached snapshot of `{repo}@{revision}` ({}) is incomplete: {what}",
            dir.display()
        ))
    };
    if !dir.join("config.json").exists() {
        return Err(incomplete("no config.json".into()));
    }
    let weights = weight_files_in(&dir).map_err(|_| incomplete("no weights".into()))?;
    let mut hashes = Vec::new();
    for w in &weights {
        if !dir.join(w).exists() {
            return Err(incomplete(format!("no {w}")));
        }
        hashes.push(snapshot_file_sha256(&dir, w)?);
    }
    let files = cache
        .snapshot_files(repo, &commit)
        .into_iter()
        .map(|name| {
            let p = dir.join(&name);
            let etag = std::fs::read_link(&p)
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_default();
            let sha256 = (etag.len() == 64).then(|| etag.clone());
            PulledFile {
                size: std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
                name,
                etag,
                sha256,
                downloaded: false,
            }
        })
        .collect();
    Ok(Pulled {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit,
        dir,
        files,
        weights_sha256: combine_weight_hashes(hashes),
        bytes_downloaded: 0,
    })
}

/// Pulls one file of the listed revision into the cache and links it into its snapshot
/// (`refs/` is left alone: the revision is not complete yet).
pub fn pull_file(
    client: &HubClient,
    repo: &str,
    revision: &str,
    info: &RevisionInfo,
    file: &str,
) -> Result<PulledFile> {
    let cache = &client.cache;
    let sib = info.sibling(file);
    let lfs = sib.and_then(|s| s.lfs.clone());
    let ctx = Ctx {
        repo: repo.to_string(),
        revision: Some(revision.to_string()),
        file: Some(file.to_string()),
    };
    // An LFS blob already in the cache (another revision with the same bytes) needs no request.
    if let Some(l) = &lfs {
        if cache.blob_path(repo, &l.sha256).exists() {
            cache.link(repo, &info.sha, file, &l.sha256)?;
            return Ok(PulledFile {
                name: file.to_string(),
                etag: l.sha256.clone(),
                sha256: Some(l.sha256.clone()),
                size: l.size,
                downloaded: false,
            });
        }
    }
    let meta = client.file_meta(repo, &info.sha, file)?;
    if let Some(l) = &lfs {
        if !meta.etag.eq_ignore_ascii_case(&l.sha256) {
            return Err(HubError::Protocol {
                url: client.resolve_url(repo, &info.sha, file),
                message: format!(
                    "X-Linked-Etag {} is not the sha256 {} the file listing gives for {file}",
                    meta.etag, l.sha256
                ),
            });
        }
    }
    if let Some(c) = &meta.commit {
        if c != &info.sha {
            return Err(HubError::Protocol {
                url: client.resolve_url(repo, &info.sha, file),
                message: format!("X-Repo-Commit {c} is not the requested commit {}", info.sha),
            });
        }
    }
    let size = lfs
        .as_ref()
        .map(|l| l.size)
        .or(meta.size)
        .or(sib.and_then(|s| s.size));
    let blob = cache.blob_path(repo, &meta.etag);
    let incomplete = cache.incomplete_path(repo, &meta.etag);
    let got = fetch_blob(
        client,
        &BlobRequest {
            url: &meta.location,
            blob: &blob,
            incomplete: &incomplete,
            size,
            sha256: lfs.as_ref().map(|l| l.sha256.as_str()),
            ctx,
        },
    )?;
    cache.link(repo, &info.sha, file, &meta.etag)?;
    Ok(PulledFile {
        name: file.to_string(),
        etag: meta.etag.clone(),
        sha256: lfs.map(|l| l.sha256),
        size: std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(got),
        downloaded: got > 0,
    })
}

/// Pulls `repo@revision` (a branch, tag or commit) into the cache; see the module docs. With
/// `HF_HUB_OFFLINE=1` only the cache is read.
pub fn pull(
    client: &HubClient,
    repo: &str,
    revision: &str,
    opts: &PullOptions,
    on_file: &mut dyn FnMut(&PulledFile),
) -> Result<Pulled> {
    if client.offline {
        return cached(client, repo, revision);
    }
    let info = client.revision_info(repo, revision)?;
    pull_listed(client, repo, revision, &info, opts, on_file)
}

/// [`pull`] with the revision's listing already fetched.
pub fn pull_listed(
    client: &HubClient,
    repo: &str,
    revision: &str,
    info: &RevisionInfo,
    opts: &PullOptions,
    on_file: &mut dyn FnMut(&PulledFile),
) -> Result<Pulled> {
    let cache = &client.cache;
    let has = |f: &str| info.sibling(f).is_some();
    let mut files: Vec<String> = if opts.all_files {
        info.siblings.iter().map(|s| s.rfilename.clone()).collect()
    } else {
        MODEL_FILES
            .iter()
            .filter(|f| has(f))
            .map(|f| f.to_string())
            .collect()
    };
    if !has("config.json") {
        return Err(HubError::Invalid(format!(
            "{repo}@{revision}: no config.json in the revision's files; not a model checkpoint"
        )));
    }
    let mut pulled = Vec::new();
    let mut bytes = 0;
    let mut take = |f: PulledFile, pulled: &mut Vec<PulledFile>| {
        on_file(&f);
        if f.downloaded {
            bytes += f.size;
        }
        pulled.push(f);
    };
    let layout = LAYOUTS
        .iter()
        .find(|(index, single)| has(index) || has(single))
        .ok_or_else(|| {
            HubError::Invalid(format!(
                "{repo}@{revision}: no {SINGLE_FILE}, {INDEX_FILE}, {PT_SINGLE_FILE} or {PT_INDEX_FILE}"
            ))
        })?;
    let weights = if has(layout.0) {
        let index = layout.0;
        let f = pull_file(client, repo, revision, info, index)?;
        take(f, &mut pulled);
        files.retain(|x| x != index);
        let shards = index_shards(&cache.snapshot_dir(repo, &info.sha).join(index))?;
        for s in &shards {
            if !has(s) {
                return Err(HubError::Invalid(format!(
                    "{repo}@{revision}: {index} lists {s}, which the revision does not hold"
                )));
            }
        }
        shards
    } else {
        vec![layout.1.to_string()]
    };
    for w in &weights {
        if !files.contains(w) {
            files.push(w.clone());
        }
    }
    for f in &files {
        let p = pull_file(client, repo, revision, info, f)?;
        take(p, &mut pulled);
    }
    let dir = cache.snapshot_dir(repo, &info.sha);
    let mut hashes = Vec::new();
    for w in &weights {
        let known = pulled
            .iter()
            .find(|p| &p.name == w)
            .and_then(|p| p.sha256.clone());
        hashes.push(match known {
            Some(h) => h,
            None => snapshot_file_sha256(&dir, w)?,
        });
    }
    cache.write_ref(repo, revision, &info.sha)?;
    Ok(Pulled {
        repo: repo.to_string(),
        revision: revision.to_string(),
        commit: info.sha.clone(),
        dir,
        files: pulled,
        weights_sha256: combine_weight_hashes(hashes),
        bytes_downloaded: bytes,
    })
}

#[cfg(test)]
mod shard_name_tests {
    use super::*;

    #[test]
    fn index_shards_stay_inside_the_snapshot() {
        let d = tempfile::tempdir().unwrap();
        for bad in ["../../x.safetensors", "/abs.safetensors", "a/../b"] {
            std::fs::write(
                d.path().join(INDEX_FILE),
                serde_json::json!({"weight_map": {"w": bad}}).to_string(),
            )
            .unwrap();
            let e = weight_files_in(d.path()).unwrap_err().to_string();
            assert!(
                e.contains("unsafe shard name") && e.contains(INDEX_FILE),
                "{bad}: {e}"
            );
        }
    }
}
