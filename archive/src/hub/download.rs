//! Downloading one blob into the cache: into `blobs/<etag>.incomplete`, resumed with a `Range`
//! request after a dropped connection, retried with backoff, checked against the size and the
//! sha256 the Hub lists, and only then renamed to `blobs/<etag>`. A blob whose hash does not match
//! is deleted: nothing corrupt is ever left under its final name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::client::{Ctx, HubClient};
use super::error::{HubError, HubIo, Result};

/// What to fetch and how to check it.
#[derive(Debug, Clone)]
pub struct BlobRequest<'a> {
    pub url: &'a str,
    pub blob: &'a Path,
    pub incomplete: &'a Path,
    pub size: Option<u64>,
    /// The LFS sha256, when the file is in LFS.
    pub sha256: Option<&'a str>,
    pub ctx: Ctx,
}

/// `<cache>/models--org--name/blobs/<etag>` -> `<cache>/.locks/models--org--name/<etag>.lock`.
fn lock_path_of(blob: &Path) -> std::path::PathBuf {
    let name = blob.file_name().unwrap_or_default().to_string_lossy();
    let repo_dir = blob.parent().and_then(Path::parent);
    match (repo_dir, repo_dir.and_then(Path::parent)) {
        (Some(r), Some(root)) => root
            .join(".locks")
            .join(r.file_name().unwrap_or_default())
            .join(format!("{name}.lock")),
        _ => blob.with_extension("lock"),
    }
}

/// Hashes the bytes already in `path`.
fn hash_prefix(path: &Path, hasher: &mut Sha256) -> Result<u64> {
    let mut f = File::open(path).at(path, "open")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).at(path, "read")?;
        if k == 0 {
            return Ok(n);
        }
        hasher.update(&buf[..k]);
        n += k as u64;
    }
}

/// One attempt: continue `incomplete` from where it stops (a `Range` request when it holds bytes).
fn attempt(
    client: &HubClient,
    req: &BlobRequest,
    hasher: &mut Sha256,
    have: &mut u64,
) -> Result<()> {
    let resp = client.send_following(
        |u| {
            let mut r = client.request("GET", u);
            if *have > 0 {
                r = r.set("Range", &format!("bytes={have}-"));
            }
            r
        },
        req.url,
        &req.ctx,
    );
    let resp = match resp {
        Err(HubError::Http { status: 416, .. }) => {
            // The range starts at or past the end: the partial file is whole (or too long).
            return Ok(());
        }
        other => other?,
    };
    let mut file = if resp.status() == 206 && *have > 0 {
        OpenOptions::new()
            .append(true)
            .open(req.incomplete)
            .at(req.incomplete, "open")?
    } else {
        // A full body: start over.
        *hasher = Sha256::new();
        *have = 0;
        File::create(req.incomplete).at(req.incomplete, "create")?
    };
    let mut body = resp.into_reader();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) => {
                file.flush().at(req.incomplete, "write")?;
                return Err(HubError::Network {
                    url: req.url.to_string(),
                    message: format!("connection lost after {have} bytes: {e}"),
                    attempts: 1,
                });
            }
        };
        file.write_all(&buf[..k]).at(req.incomplete, "write")?;
        hasher.update(&buf[..k]);
        *have += k as u64;
        if let Some(p) = &client.progress {
            p(req.ctx.file.as_deref().unwrap_or(""), *have, req.size);
        }
    }
    file.sync_all().at(req.incomplete, "fsync")?;
    if let Some(size) = req.size {
        if *have < size {
            return Err(HubError::Network {
                url: req.url.to_string(),
                message: format!("body ended after {have} of {size} bytes"),
                attempts: 1,
            });
        }
    }
    Ok(())
}

/// Downloads a blob unless it is already in the cache. Returns the blob's size when it was
/// downloaded now, 0 when it was already cached.
pub fn fetch_blob(client: &HubClient, req: &BlobRequest) -> Result<u64> {
    if req.blob.exists() {
        return Ok(0);
    }
    let dir = req.blob.parent().expect("a blob has a parent");
    std::fs::create_dir_all(dir).at(dir, "create directory")?;
    // One writer per blob across processes: an advisory lock on
    // `<cache>/.locks/models--org--name/<etag>.lock` (where huggingface_hub keeps its locks),
    // released when the file closes, even if the process dies.
    let lock_path = lock_path_of(req.blob);
    let lock_dir = lock_path.parent().expect("a lock has a parent");
    std::fs::create_dir_all(lock_dir).at(lock_dir, "create directory")?;
    let lock = File::create(&lock_path).at(&lock_path, "create")?;
    lock.lock().at(&lock_path, "lock")?;
    if req.blob.exists() {
        return Ok(0);
    }
    let mut hasher = Sha256::new();
    let mut have = if req.incomplete.exists() {
        hash_prefix(req.incomplete, &mut hasher)?
    } else {
        0
    };
    if req.size.is_some_and(|s| have > s) {
        std::fs::remove_file(req.incomplete).at(req.incomplete, "remove")?;
        hasher = Sha256::new();
        have = 0;
    }
    let mut resumed = have > 0;
    loop {
        if req.size.is_none_or(|s| have < s) {
            client.with_retries(|_| attempt(client, req, &mut hasher, &mut have))?;
        }
        let ctx = &req.ctx;
        let what = || {
            (
                ctx.repo.clone(),
                ctx.revision.clone().unwrap_or_default(),
                ctx.file.clone().unwrap_or_default(),
            )
        };
        if let Some(size) = req.size {
            if have != size {
                std::fs::remove_file(req.incomplete).at(req.incomplete, "remove")?;
                let (repo, revision, file) = what();
                return Err(HubError::SizeMismatch {
                    repo,
                    revision,
                    file,
                    expected: size,
                    actual: have,
                });
            }
        }
        if let Some(expected) = req.sha256 {
            let actual = hex::encode(std::mem::take(&mut hasher).finalize());
            if !actual.eq_ignore_ascii_case(expected) {
                std::fs::remove_file(req.incomplete).at(req.incomplete, "remove")?;
                if resumed {
                    // The kept prefix may be the culprit: one more try from scratch.
                    resumed = false;
                    have = 0;
                    continue;
                }
                let (repo, revision, file) = what();
                return Err(HubError::Sha256Mismatch {
                    repo,
                    revision,
                    file,
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        std::fs::rename(req.incomplete, req.blob).at(req.blob, "rename")?;
        return Ok(have);
    }
}
