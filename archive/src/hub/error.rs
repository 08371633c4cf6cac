//! Errors of the Hub client. Each names the repository, revision, file, URL or cache path involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// 401 / 403: a gated or private repository, and no (or a refused) token.
    #[error("{url}: {status} {}: `{repo}` is gated or private; accept its licence on the Hub and set HF_TOKEN (or run `huggingface-cli login`)", if *status == 401 { "Unauthorized" } else { "Forbidden" })]
    Gated {
        repo: String,
        url: String,
        status: u16,
    },

    /// 404 with `X-Error-Code: RepoNotFound` (or no code on a repository route).
    #[error("{url}: 404: no repository `{repo}` on the Hub (or it is private: set HF_TOKEN)")]
    RepoNotFound { repo: String, url: String },

    /// 404 with `X-Error-Code: RevisionNotFound`.
    #[error("{url}: 404: `{repo}` has no revision `{revision}` (see `k2 hub list {repo}`)")]
    RevisionNotFound {
        repo: String,
        revision: String,
        url: String,
    },

    /// 404 with `X-Error-Code: EntryNotFound`.
    #[error("{url}: 404: `{repo}` at `{revision}` has no file `{file}`")]
    EntryNotFound {
        repo: String,
        revision: String,
        file: String,
        url: String,
    },

    /// A dataset repository without data files for a config or split.
    #[error("dataset `{repo}` {split} at `{revision}`: {message}")]
    DatasetSplit {
        repo: String,
        /// `config `C` split `S``.
        split: String,
        revision: String,
        message: String,
    },

    /// Any other HTTP status.
    #[error("{url}: HTTP {status}: {message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },

    /// The connection failed (after the retries).
    #[error("{url}: {message} (after {attempts} attempts)")]
    Network {
        url: String,
        message: String,
        attempts: usize,
    },

    /// A response that is not what the Hub sends (bad JSON, missing header).
    #[error("{url}: unexpected response: {message}")]
    Protocol { url: String, message: String },

    /// A downloaded file's sha256 is not the one the Hub lists; nothing was kept.
    #[error("{repo}@{revision} {file}: sha256 mismatch: the Hub lists {expected}, the download hashes to {actual}; the partial file was removed")]
    Sha256Mismatch {
        repo: String,
        revision: String,
        file: String,
        expected: String,
        actual: String,
    },

    /// A download's size is not the one the Hub lists.
    #[error("{repo}@{revision} {file}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        repo: String,
        revision: String,
        file: String,
        expected: u64,
        actual: u64,
    },

    /// The disk holding the cache is full.
    #[error("{}: disk full while writing the Hugging Face cache (free space or point HF_HOME / HF_HUB_CACHE elsewhere; `k2 eval --keep N` bounds a sweep's disk use)", path.display())]
    DiskFull { path: PathBuf },

    /// An I/O operation (`op`) failed on `path`.
    #[error("{}: {op} failed: {error}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        error: std::io::Error,
    },

    /// HF_HUB_OFFLINE=1 and the cache cannot answer.
    #[error("HF_HUB_OFFLINE=1: {message} (cache: {})", cache.display())]
    Offline { cache: PathBuf, message: String },

    /// Invalid input (a repository id, a suite, a revision list).
    #[error("{0}")]
    Invalid(String),
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::StorageFull || source.raw_os_error() == Some(28) {
            return HubError::DiskFull { path };
        }
        HubError::Io {
            path,
            op,
            error: source,
        }
    }

    /// Whether retrying the same request may succeed (connection trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Network { .. } => true,
            HubError::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, HubError>;

/// Attach a path and operation to an `io::Result`, turning ENOSPC into [`HubError::DiskFull`].
pub(crate) trait HubIo<T> {
    fn at(self, path: &std::path::Path, op: &'static str) -> Result<T>;
}

impl<T> HubIo<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path, op: &'static str) -> Result<T> {
        self.map_err(|e| HubError::io(path, op, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_as_such() {
        let e = HubError::io(
            "/c/blobs/x.incomplete",
            "write",
            std::io::Error::from_raw_os_error(28),
        );
        assert!(matches!(e, HubError::DiskFull { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("/c/blobs/x.incomplete") && msg.contains("disk full"),
            "{msg}"
        );
        let other = HubError::io("/c", "open", std::io::Error::from_raw_os_error(13));
        assert!(matches!(other, HubError::Io { .. }));
    }

    #[test]
    fn transient_errors_are_connection_trouble_5xx_and_429() {
        let http = |status| HubError::Http {
            url: "u".into(),
            status,
            message: String::new(),
        };
        assert!(http(503).is_transient() && http(429).is_transient());
        assert!(!http(400).is_transient());
        assert!(!HubError::Gated {
            repo: "r".into(),
            url: "u".into(),
            status: 401
        }
        .is_transient());
    }
}
