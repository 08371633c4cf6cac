//! The standard Hugging Face cache layout, shared with Python tools (`huggingface_hub`,
//! `transformers`):
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//!   models--org--name/
//!     blobs/<etag>                     file contents: sha256 for LFS files, git blob sha1 otherwise
//!     blobs/<etag>.incomplete          a download in progress (resumed with a Range request)
//!     snapshots/<commit>/<file>        relative symlink to ../../blobs/<etag>
//!     refs/<revision>                  the commit a branch or tag pointed to when pulled
//! ```
//!
//! Folder names and ref lookups go through `hf_hub`'s [`hf_hub::Repo`] and [`hf_hub::Cache`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hf_hub::{Repo, RepoType};

use super::error::{HubError, HubIo, Result};

/// The kind of a Hub repository: models and datasets live under different API routes and cache
/// folders (`models--org--name`, `datasets--org--name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RepoKind {
    #[default]
    Model,
    Dataset,
}

impl RepoKind {
    pub fn repo_type(self) -> RepoType {
        match self {
            RepoKind::Model => RepoType::Model,
            RepoKind::Dataset => RepoType::Dataset,
        }
    }
    /// The API route segment: `/api/models/...`, `/api/datasets/...`.
    pub fn api_segment(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }
}

/// A Hugging Face hub cache directory, seen through the folders of one repository kind.
#[derive(Debug, Clone)]
pub struct HubCache {
    pub root: PathBuf,
    pub kind: RepoKind,
}

/// `$HF_HOME`, or `~/.cache/huggingface`.
pub fn hf_home() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            HubError::Invalid(
                "cannot locate the Hugging Face cache: set HF_HOME (or HOME)".to_string(),
            )
        })?;
    Ok(PathBuf::from(home).join(".cache").join("huggingface"))
}

/// Checks a repository id: `name` or `org/name`, no empty parts, no `..`, no odd characters.
pub fn check_repo_id(repo: &str) -> Result<()> {
    let parts: Vec<&str> = repo.split('/').collect();
    let ok = (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(HubError::Invalid(format!(
            "`{repo}` is not a Hub repository id (expected ORG/NAME, e.g. LLM360/Amber)"
        )))
    }
}

pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(HubError::Invalid(format!("unsafe {what} `{name}`")));
    }
    Ok(())
}

impl HubCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HubCache {
            root: root.into(),
            kind: RepoKind::Model,
        }
    }

    /// The same cache seen through the folders of another repository kind.
    pub fn with_kind(&self, kind: RepoKind) -> Self {
        HubCache {
            root: self.root.clone(),
            kind,
        }
    }

    /// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    pub fn from_env() -> Result<Self> {
        if let Some(c) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
            return Ok(HubCache::new(PathBuf::from(c)));
        }
        Ok(HubCache::new(hf_home()?.join("hub")))
    }

    /// `models--org--name` (or `datasets--org--name`).
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root
            .join(Repo::new(repo.to_string(), self.kind.repo_type()).folder_name())
    }

    pub fn blob_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    pub fn incomplete_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo)
            .join("blobs")
            .join(format!("{etag}.incomplete"))
    }

    pub fn snapshot_dir(&self, repo: &str, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    pub fn ref_path(&self, repo: &str, revision: &str) -> PathBuf {
        self.repo_dir(repo).join("refs").join(revision)
    }

    /// The commit `revision` resolves to in the cache: `refs/<revision>`, or the revision itself
    /// when it is a commit hash with a snapshot.
    pub fn resolve(&self, repo: &str, revision: &str) -> Option<String> {
        if let Ok(text) = std::fs::read_to_string(self.ref_path(repo, revision)) {
            let c = text.trim().to_string();
            if !c.is_empty() {
                return Some(c);
            }
        }
        let is_commit = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
        (is_commit && self.snapshot_dir(repo, revision).is_dir()).then(|| revision.to_string())
    }

    /// The cached path of `file` at `revision` (through `hf_hub`'s ref lookup), if present.
    pub fn cached_file(&self, repo: &str, revision: &str, file: &str) -> Option<PathBuf> {
        let cache = hf_hub::Cache::new(self.root.clone());
        let r = Repo::with_revision(
            repo.to_string(),
            self.kind.repo_type(),
            revision.to_string(),
        );
        cache.repo(r).get(file).filter(|p| p.exists()).or_else(|| {
            let p = self.snapshot_dir(repo, revision).join(file);
            p.exists().then_some(p)
        })
    }

    /// Points `refs/<revision>` at `commit` (written to a temporary name, then renamed).
    pub fn write_ref(&self, repo: &str, revision: &str, commit: &str) -> Result<()> {
        check_name("revision", revision)?;
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(repo, revision);
        let parent = path.parent().expect("a ref path has a parent");
        std::fs::create_dir_all(parent).at(parent, "create directory")?;
        let tmp = parent.join(format!(
            ".{}.{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        std::fs::write(&tmp, commit).at(&tmp, "write")?;
        std::fs::rename(&tmp, &path).at(&path, "rename")?;
        remove_stale_tmps(&path);
        Ok(())
    }

    /// Links `snapshots/<commit>/<file>` to `blobs/<etag>` with a relative symlink, as
    /// `huggingface_hub` does (nested files get one `../` per directory level).
    pub fn link(&self, repo: &str, commit: &str, file: &str, etag: &str) -> Result<PathBuf> {
        check_name("file name", file)?;
        check_name("commit", commit)?;
        let dst = self.snapshot_dir(repo, commit).join(file);
        let parent = dst.parent().expect("a snapshot file has a parent");
        std::fs::create_dir_all(parent).at(parent, "create directory")?;
        let depth = file.split('/').count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(etag);
        // Made under a temporary name and renamed over `dst`, so two processes pulling the same
        // revision never see each other's half-made link.
        let tmp = parent.join(format!(
            ".{}.{}.tmp",
            dst.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        if tmp.symlink_metadata().is_ok() {
            std::fs::remove_file(&tmp).at(&tmp, "remove")?;
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &tmp).at(&tmp, "symlink")?;
        #[cfg(not(unix))]
        std::fs::copy(self.blob_path(repo, etag), &tmp).at(&tmp, "copy")?;
        std::fs::rename(&tmp, &dst).at(&dst, "rename")?;
        remove_stale_tmps(&dst);
        Ok(dst)
    }

    /// Every file of a snapshot, relative to it, sorted.
    pub fn snapshot_files(&self, repo: &str, commit: &str) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.filter_map(|e| e.ok()) {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    continue; // a link being made by `link`
                }
                let rel = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                if e.path().is_dir() && !e.path().is_symlink() {
                    walk(&e.path(), &rel, out);
                } else {
                    out.push(rel);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.snapshot_dir(repo, commit), "", &mut out);
        out.sort();
        out
    }

    /// The blob names the snapshots of `repo` link to (all but `except`).
    fn linked_blobs(&self, repo: &str, except: Option<&str>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let Ok(rd) = std::fs::read_dir(self.repo_dir(repo).join("snapshots")) else {
            return out;
        };
        for snap in rd.filter_map(|e| e.ok()) {
            let commit = snap.file_name().to_string_lossy().to_string();
            if Some(commit.as_str()) == except {
                continue;
            }
            for f in self.snapshot_files(repo, &commit) {
                if let Ok(t) = std::fs::read_link(snap.path().join(&f)) {
                    if let Some(n) = t.file_name() {
                        out.insert(n.to_string_lossy().to_string());
                    }
                }
            }
        }
        out
    }

    /// `<cache>/../k2-views/models--org--name/<commit>`: where k2 writes a converted view of a
    /// snapshot (tokenizer.json, safetensors) beside the cache, never inside it.
    pub fn view_dir(&self, repo: &str, commit: &str) -> PathBuf {
        let repo_dir = self.repo_dir(repo);
        let folder = repo_dir.file_name().unwrap_or_default().to_os_string();
        self.root
            .parent()
            .unwrap_or(&self.root)
            .join("k2-views")
            .join(folder)
            .join(commit)
    }

    /// Removes a snapshot, the refs pointing at it, and every blob no other snapshot links to.
    /// Returns the bytes freed.
    pub fn evict(&self, repo: &str, commit: &str) -> Result<u64> {
        check_name("commit", commit)?;
        let snap = self.snapshot_dir(repo, commit);
        let mut blobs = BTreeSet::new();
        for f in self.snapshot_files(repo, commit) {
            if let Ok(t) = std::fs::read_link(snap.join(&f)) {
                if let Some(n) = t.file_name() {
                    blobs.insert(n.to_string_lossy().to_string());
                }
            }
        }
        if snap.exists() {
            std::fs::remove_dir_all(&snap).at(&snap, "remove directory")?;
        }
        let refs = self.repo_dir(repo).join("refs");
        if let Ok(rd) = std::fs::read_dir(&refs) {
            for r in rd.filter_map(|e| e.ok()) {
                let points_here = std::fs::read_to_string(r.path())
                    .map(|t| t.trim() == commit)
                    .unwrap_or(false);
                if points_here {
                    std::fs::remove_file(r.path()).at(&r.path(), "remove")?;
                }
            }
        }
        let still = self.linked_blobs(repo, None);
        let mut freed = 0;
        for b in blobs.difference(&still) {
            let p = self.blob_path(repo, b);
            if let Ok(m) = std::fs::metadata(&p) {
                freed += m.len();
                std::fs::remove_file(&p).at(&p, "remove")?;
            }
        }
        Ok(freed)
    }
}

/// Removes the temporary names `.<name>.<pid>.tmp` beside `path` that processes no longer
/// running left behind (a pull killed between writing a ref or link and renaming it), so that a
/// rerun leaves the cache as an uninterrupted pull does. A live process's temporary is kept; where
/// liveness cannot be told (no `/proc`), nothing is removed. Best effort: errors are ignored.
fn remove_stale_tmps(path: &Path) {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let pid = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_huggingface_hub() {
        let c = HubCache::new("/c");
        assert_eq!(
            c.repo_dir("LLM360/Amber"),
            Path::new("/c/models--LLM360--Amber")
        );
        assert_eq!(
            c.blob_path("LLM360/Amber", "ab"),
            Path::new("/c/models--LLM360--Amber/blobs/ab")
        );
        assert_eq!(
            c.ref_path("LLM360/Amber", "ckpt_000"),
            Path::new("/c/models--LLM360--Amber/refs/ckpt_000")
        );
    }

    #[test]
    fn repo_ids_are_checked() {
        for ok in ["LLM360/Amber", "EleutherAI/pythia-160m-deduped", "gpt2"] {
            check_repo_id(ok).unwrap();
        }
        for bad in ["", "/x", "a/../b", "a/b/c", "a b/c", "../x"] {
            assert!(check_repo_id(bad).is_err(), "{bad}");
        }
    }

    /// A temporary left by a killed pull (a pid no longer running) goes at the next write of the
    /// same ref or link; a running process's stays.
    #[cfg(unix)]
    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        if !Path::new("/proc/self").exists() {
            println!("skipped: no /proc to tell a dead process from a live one");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let c = HubCache::new(tmp.path());
        let repo = "org/m";
        std::fs::create_dir_all(c.repo_dir(repo).join("blobs")).unwrap();
        std::fs::write(c.blob_path(repo, "w"), b"weights").unwrap();
        let commit = "3".repeat(40);
        // A pid past the kernel's limit is never running; this test's parent is.
        let (dead, live) = (u32::MAX - 7, std::os::unix::process::parent_id());
        let refs = c.ref_path(repo, "ckpt_3").parent().unwrap().to_path_buf();
        let snap = c.snapshot_dir(repo, &commit);
        for dir in [&refs, &snap] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let stale = [
            refs.join(format!(".ckpt_3.{dead}.tmp")),
            snap.join(format!(".model.safetensors.{dead}.tmp")),
        ];
        let kept = [
            refs.join(format!(".ckpt_3.{live}.tmp")),
            refs.join(format!(".other.{dead}.tmp")),
        ];
        for f in stale.iter().chain(&kept) {
            std::fs::write(f, b"x").unwrap();
        }
        c.write_ref(repo, "ckpt_3", &commit).unwrap();
        c.link(repo, &commit, "model.safetensors", "w").unwrap();
        for f in &stale {
            assert!(!f.exists(), "{f:?} left behind");
        }
        for f in &kept {
            assert!(f.exists(), "{f:?} removed");
        }
    }

    #[test]
    fn link_resolve_and_evict_keep_shared_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let c = HubCache::new(tmp.path());
        let repo = "org/m";
        std::fs::create_dir_all(c.repo_dir(repo).join("blobs")).unwrap();
        std::fs::write(c.blob_path(repo, "shared"), b"tok").unwrap();
        std::fs::write(c.blob_path(repo, "w1"), b"weights1").unwrap();
        std::fs::write(c.blob_path(repo, "w2"), b"weights2").unwrap();
        let (c1, c2) = ("1".repeat(40), "2".repeat(40));
        c.link(repo, &c1, "tokenizer.json", "shared").unwrap();
        c.link(repo, &c1, "sub/model.safetensors", "w1").unwrap();
        c.link(repo, &c2, "tokenizer.json", "shared").unwrap();
        c.link(repo, &c2, "model.safetensors", "w2").unwrap();
        c.write_ref(repo, "ckpt_1", &c1).unwrap();
        c.write_ref(repo, "ckpt_2", &c2).unwrap();
        assert_eq!(
            std::fs::read(c.snapshot_dir(repo, &c1).join("sub/model.safetensors")).unwrap(),
            b"weights1"
        );
        assert_eq!(c.resolve(repo, "ckpt_1").as_deref(), Some(c1.as_str()));
        assert_eq!(c.resolve(repo, &c2).as_deref(), Some(c2.as_str()));
        assert_eq!(
            c.cached_file(repo, "ckpt_2", "tokenizer.json"),
            Some(c.snapshot_dir(repo, &c2).join("tokenizer.json"))
        );
        assert_eq!(
            c.snapshot_files(repo, &c1),
            ["sub/model.safetensors", "tokenizer.json"]
        );
        let freed = c.evict(repo, &c1).unwrap();
        assert_eq!(freed, 8);
        assert!(!c.blob_path(repo, "w1").exists());
        assert!(c.blob_path(repo, "shared").exists());
        assert_eq!(c.resolve(repo, "ckpt_1"), None);
        assert_eq!(
            std::fs::read(c.snapshot_dir(repo, &c2).join("tokenizer.json")).unwrap(),
            b"tok"
        );
    }
}
