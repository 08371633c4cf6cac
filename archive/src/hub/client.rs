//! The HTTP side of the Hub: settings from the environment (`HF_ENDPOINT`, `HF_TOKEN`,
//! `HF_HUB_OFFLINE`, `HF_HOME` / `HF_HUB_CACHE`), requests with retries and exponential backoff,
//! and the Hub's status codes turned into typed errors.
//!
//! Repository metadata (`/api/models/{repo}/revision/{rev}?blobs=true`) goes through `hf_hub`'s
//! sync API; the refs listing, HEAD metadata and ranged downloads, which `hf_hub` does not offer,
//! use `ureq` (the client `hf_hub` itself uses) with redirects followed by hand so the token is
//! never sent to another host.

use std::time::Duration;

use hf_hub::api::sync::{Api, ApiBuilder};
use hf_hub::Repo;
use serde::Deserialize;

use super::cache::{check_repo_id, hf_home, HubCache, RepoKind};
use super::error::{HubError, Result};

/// What a request was about, for error messages.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub repo: String,
    pub revision: Option<String>,
    pub file: Option<String>,
}

/// A branch or tag of a repository.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GitRef {
    pub name: String,
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    #[serde(rename = "targetCommit")]
    pub target_commit: String,
}

/// `GET /api/models/{repo}/refs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Refs {
    #[serde(default)]
    pub branches: Vec<GitRef>,
    #[serde(default)]
    pub tags: Vec<GitRef>,
}

/// The LFS pointer of a large file: its sha256 is the blob's name in the cache.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Lfs {
    pub sha256: String,
    pub size: u64,
}

/// One file of a revision (`siblings` with `?blobs=true`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sibling {
    pub rfilename: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub lfs: Option<Lfs>,
}

/// `GET /api/models/{repo}/revision/{rev}?blobs=true`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RevisionInfo {
    /// The commit the revision points to.
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

impl RevisionInfo {
    pub fn sibling(&self, name: &str) -> Option<&Sibling> {
        self.siblings.iter().find(|s| s.rfilename == name)
    }

    /// The weights' identity from the listing alone: the sha256 of `model.safetensors`, or for
    /// sharded weights the sha256 of the shards' sha256s (sorted by name, one per line), the same
    /// value `k2 eval` records as `model_sha` (PyTorch `.bin` files likewise when there are no
    /// safetensors). `None` when a weight file is not in LFS.
    pub fn weights_sha256(&self) -> Option<String> {
        if let Some(s) = self.sibling("model.safetensors") {
            return s.lfs.as_ref().map(|l| l.sha256.clone());
        }
        let top = |ext: &str| -> Vec<&Sibling> {
            self.siblings
                .iter()
                .filter(|s| !s.rfilename.contains('/') && s.rfilename.ends_with(ext))
                .collect()
        };
        // safetensors first; else PyTorch `pytorch_model*.bin` (what `pull` takes).
        let mut shards = top(".safetensors");
        if shards.is_empty() {
            if let Some(s) = self.sibling("pytorch_model.bin") {
                return s.lfs.as_ref().map(|l| l.sha256.clone());
            }
            shards = top(".bin");
            shards.retain(|s| s.rfilename.starts_with("pytorch_model"));
        }
        if shards.is_empty() {
            return None;
        }
        shards.sort_by(|a, b| a.rfilename.cmp(&b.rfilename));
        let hashes: Option<Vec<String>> = shards
            .iter()
            .map(|s| s.lfs.as_ref().map(|l| l.sha256.clone()))
            .collect();
        let hashes = hashes?;
        Some(if hashes.len() == 1 {
            hashes[0].clone()
        } else {
            crate::sha256_bytes(hashes.join("\n").as_bytes())
        })
    }
}

/// What a HEAD on `/{repo}/resolve/{rev}/{file}` says.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    pub commit: Option<String>,
    /// `X-Linked-Etag` (the sha256 of an LFS file) or `ETag`, unquoted.
    pub etag: String,
    pub size: Option<u64>,
    /// Where the bytes are (the CDN URL of a redirect, or the resolve URL).
    pub location: String,
}

/// Called while a file downloads: (file, bytes so far, total bytes if known).
pub type ProgressFn = std::sync::Arc<dyn Fn(&str, u64, Option<u64>) + Send + Sync>;

/// A Hub endpoint, a token, a cache and the retry policy.
#[derive(Clone)]
pub struct HubClient {
    pub endpoint: String,
    token: Option<String>,
    pub cache: HubCache,
    pub offline: bool,
    /// Attempts after the first for transient failures.
    pub retries: usize,
    /// First backoff; doubled after each failed attempt.
    pub backoff: Duration,
    /// Download progress, for a progress bar.
    pub progress: Option<ProgressFn>,
    /// Longest wait for a metadata request (`K2_HUB_TIMEOUT_S`, default 60 s).
    timeout: Duration,
    agent: ureq::Agent,
    api: Api,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("cache", &self.cache)
            .field("offline", &self.offline)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// A header's value. ureq 2.12 panics on a header line with nothing after the colon (`slice`
/// out of range in `Header::value`, found by `tests/fuzz_parsers.rs`); such a header reads as
/// absent.
fn header(resp: &ureq::Response, name: &str) -> Option<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        resp.header(name).map(str::to_string)
    }))
    .ok()
    .flatten()
}

/// `req.call()`, with ureq's panics on a malformed response head (see [`header`]) turned into a
/// protocol error naming the URL.
#[allow(clippy::result_large_err)] // ureq's own `Result<Response, ureq::Error>`, boxed on return
fn call(req: ureq::Request, url: &str) -> std::result::Result<ureq::Response, CallError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| req.call())) {
        Ok(r) => r.map_err(|e| CallError::Ureq(Box::new(e))),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(CallError::Malformed(HubError::Protocol {
                url: url.to_string(),
                message: format!("malformed response head from the server ({why})"),
            }))
        }
    }
}

pub(crate) enum CallError {
    Ureq(Box<ureq::Error>),
    Malformed(HubError),
}

/// `"abc"` / `W/"abc"` -> `abc`.
fn unquote(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

impl HubClient {
    /// A client on `endpoint` with an explicit token and cache (tests, tools).
    pub fn new(endpoint: &str, token: Option<String>, cache: HubCache) -> Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let timeout = Duration::from_secs(env_num("K2_HUB_TIMEOUT_S").unwrap_or(60));
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(20))
            .timeout_read(timeout)
            .try_proxy_from_env(true)
            .build();
        let api = ApiBuilder::from_cache(hf_hub::Cache::new(cache.root.clone()))
            .with_endpoint(endpoint.clone())
            .with_token(token.clone())
            .with_progress(false)
            .build()
            .map_err(|e| HubError::Invalid(format!("hf-hub client: {e}")))?;
        Ok(HubClient {
            endpoint,
            token,
            cache,
            offline: false,
            retries: 5,
            backoff: Duration::from_millis(1000),
            progress: None,
            timeout,
            agent,
            api,
        })
    }

    /// Settings as `huggingface_hub` reads them: `HF_ENDPOINT` (default https://huggingface.co),
    /// `HF_TOKEN` (else the token file `$HF_HOME/token` that `huggingface-cli login` writes),
    /// `HF_HUB_OFFLINE`, `HF_HUB_CACHE` / `HF_HOME`; plus `K2_HUB_RETRIES` (default 5) and
    /// `K2_HUB_BACKOFF_MS` (default 1000).
    pub fn from_env() -> Result<Self> {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| "https://huggingface.co".to_string());
        let cache = HubCache::from_env()?;
        let token = std::env::var("HF_TOKEN")
            .ok()
            .or_else(|| std::env::var("HUGGING_FACE_HUB_TOKEN").ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .or_else(|| {
                hf_home()
                    .ok()
                    .and_then(|h| hf_hub::Cache::new(h.join("hub")).token())
            });
        let mut c = HubClient::new(&endpoint, token, cache)?;
        c.offline = env_flag("HF_HUB_OFFLINE");
        if let Some(n) = env_num("K2_HUB_RETRIES") {
            c.retries = n as usize;
        }
        if let Some(ms) = env_num("K2_HUB_BACKOFF_MS") {
            c.backoff = Duration::from_millis(ms);
        }
        Ok(c)
    }

    /// The same endpoint, token, cache and policy, for repositories of another kind (datasets).
    pub fn for_kind(&self, kind: RepoKind) -> HubClient {
        let mut c = self.clone();
        c.cache = self.cache.with_kind(kind);
        c
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}` (built by `hf_hub`; datasets under
    /// `{endpoint}/datasets/`).
    pub fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> String {
        self.api
            .repo(Repo::with_revision(
                repo.to_string(),
                self.cache.kind.repo_type(),
                revision.to_string(),
            ))
            .url(file)
    }

    fn offline_error(&self, what: &str) -> HubError {
        HubError::Offline {
            cache: self.cache.root.clone(),
            message: format!("{what} needs the network"),
        }
    }

    /// A request to `url` carrying the token only when it goes to the endpoint's host.
    pub(crate) fn request(&self, method: &str, url: &str) -> ureq::Request {
        let mut r = self.agent.request(method, url).set(
            "User-Agent",
            concat!("k2/", env!("CARGO_PKG_VERSION"), "; hf-hub/0.4"),
        );
        if let Some(t) = &self.token {
            if url.starts_with(&format!("{}/", self.endpoint)) {
                r = r.set("Authorization", &format!("Bearer {t}"));
            }
        }
        r
    }

    /// Runs `send` until it succeeds, a non-transient error occurs, or the retries are spent,
    /// sleeping `backoff * 2^attempt` in between.
    pub(crate) fn with_retries<T>(&self, mut send: impl FnMut(usize) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match send(attempt) {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt as u32));
                    attempt += 1;
                }
                Err(HubError::Network { url, message, .. }) => {
                    return Err(HubError::Network {
                        url,
                        message,
                        attempts: attempt + 1,
                    })
                }
                other => return other,
            }
        }
    }

    /// The typed error of a failed request.
    fn call_error(&self, url: &str, err: CallError, ctx: &Ctx) -> HubError {
        match err {
            CallError::Ureq(e) => self.error(url, *e, ctx),
            CallError::Malformed(e) => e,
        }
    }

    pub(crate) fn error(&self, url: &str, err: ureq::Error, ctx: &Ctx) -> HubError {
        match err {
            ureq::Error::Transport(t) => HubError::Network {
                url: url.to_string(),
                message: t.to_string(),
                attempts: 1,
            },
            ureq::Error::Status(status, resp) => self.status_error(url, status, resp, ctx),
        }
    }

    fn status_error(&self, url: &str, status: u16, resp: ureq::Response, ctx: &Ctx) -> HubError {
        let code = header(&resp, "X-Error-Code").unwrap_or_default();
        let message = header(&resp, "X-Error-Message")
            .or_else(|| {
                resp.into_string()
                    .ok()
                    .map(|b| b.chars().take(300).collect())
            })
            .unwrap_or_default();
        let url = url.to_string();
        let repo = ctx.repo.clone();
        let revision = ctx.revision.clone().unwrap_or_else(|| "main".into());
        match (status, code.as_str()) {
            (_, "GatedRepo") | (401 | 403, "") => HubError::Gated { repo, url, status },
            (_, "RepoNotFound") => HubError::RepoNotFound { repo, url },
            (_, "RevisionNotFound") => HubError::RevisionNotFound {
                repo,
                revision,
                url,
            },
            (_, "EntryNotFound") => HubError::EntryNotFound {
                repo,
                revision,
                file: ctx.file.clone().unwrap_or_default(),
                url,
            },
            (401 | 403, _) => HubError::Gated { repo, url, status },
            (404, _) => match &ctx.file {
                Some(file) => HubError::EntryNotFound {
                    repo,
                    revision,
                    file: file.clone(),
                    url,
                },
                None => HubError::RepoNotFound { repo, url },
            },
            _ => HubError::Http {
                url,
                status,
                message,
            },
        }
    }

    /// GET `url` (following redirects) and parse the JSON body, with retries.
    fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, ctx: &Ctx) -> Result<T> {
        self.with_retries(|_| {
            let resp = self.send_following(|u| self.request("GET", u), url, ctx)?;
            let text = resp.into_string().map_err(|e| HubError::Network {
                url: url.to_string(),
                message: e.to_string(),
                attempts: 1,
            })?;
            serde_json::from_str(&text).map_err(|e| HubError::Protocol {
                url: url.to_string(),
                message: format!("bad JSON: {e}"),
            })
        })
    }

    /// Sends a request, following up to 5 redirects (relative ones keep the token).
    pub(crate) fn send_following(
        &self,
        make: impl Fn(&str) -> ureq::Request,
        url: &str,
        ctx: &Ctx,
    ) -> Result<ureq::Response> {
        let mut url = url.to_string();
        for _ in 0..6 {
            let resp = call(make(&url), &url).map_err(|e| self.call_error(&url, e, ctx))?;
            if !(300..400).contains(&resp.status()) {
                return Ok(resp);
            }
            url = self.redirect_target(&url, &resp)?;
        }
        Err(HubError::Protocol {
            url,
            message: "too many redirects".into(),
        })
    }

    fn redirect_target(&self, url: &str, resp: &ureq::Response) -> Result<String> {
        let loc = header(resp, "Location").ok_or_else(|| HubError::Protocol {
            url: url.to_string(),
            message: format!("{} without a Location header", resp.status()),
        })?;
        if loc.starts_with("http://") || loc.starts_with("https://") {
            return Ok(loc);
        }
        // Relative: resolve against the scheme://host of `url`.
        let host_end = url
            .find("://")
            .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
            .unwrap_or(url.len());
        Ok(format!("{}{}", &url[..host_end], loc))
    }

    /// The branches and tags of `repo`.
    pub fn refs(&self, repo: &str) -> Result<Refs> {
        check_repo_id(repo)?;
        if self.offline {
            return Err(self.offline_error(&format!("listing the refs of `{repo}`")));
        }
        let url = format!(
            "{}/api/{}/{repo}/refs",
            self.endpoint,
            self.cache.kind.api_segment()
        );
        let ctx = Ctx {
            repo: repo.to_string(),
            ..Default::default()
        };
        self.get_json(&url, &ctx)
    }

    /// The commit and files (with sizes and LFS sha256) of `repo` at `revision`, through
    /// `hf_hub`'s `info_request` with `?blobs=true`.
    pub fn revision_info(&self, repo: &str, revision: &str) -> Result<RevisionInfo> {
        check_repo_id(repo)?;
        if self.offline {
            return Err(self.offline_error(&format!("the file list of `{repo}@{revision}`")));
        }
        let api_repo = self.api.repo(Repo::with_revision(
            repo.to_string(),
            self.cache.kind.repo_type(),
            revision.to_string(),
        ));
        let ctx = Ctx {
            repo: repo.to_string(),
            revision: Some(revision.to_string()),
            file: None,
        };
        let url = format!(
            "{}/api/{}/{repo}/revision/{}",
            self.endpoint,
            self.cache.kind.api_segment(),
            revision.replace('/', "%2F")
        );
        self.with_retries(|_| {
            let req = api_repo
                .info_request()
                .query("blobs", "true")
                .timeout(self.timeout);
            let resp = call(req, &url).map_err(|e| self.call_error(&url, e, &ctx))?;
            let text = resp.into_string().map_err(|e| HubError::Network {
                url: url.clone(),
                message: e.to_string(),
                attempts: 1,
            })?;
            serde_json::from_str(&text).map_err(|e| HubError::Protocol {
                url: url.clone(),
                message: format!("bad JSON: {e}"),
            })
        })
    }

    /// HEAD on the resolve URL, without following a redirect to another host (its `Location` is
    /// where the bytes are), as `huggingface_hub` does.
    pub fn file_meta(&self, repo: &str, revision: &str, file: &str) -> Result<FileMeta> {
        let ctx = Ctx {
            repo: repo.to_string(),
            revision: Some(revision.to_string()),
            file: Some(file.to_string()),
        };
        let start = self.resolve_url(repo, revision, file);
        self.with_retries(|_| {
            let mut url = start.clone();
            for _ in 0..6 {
                let req = self
                    .request("HEAD", &url)
                    .set("Accept-Encoding", "identity");
                let resp = call(req, &url).map_err(|e| self.call_error(&url, e, &ctx))?;
                let redirect = (300..400).contains(&resp.status());
                let location = if redirect {
                    Some(self.redirect_target(&url, &resp)?)
                } else {
                    None
                };
                let etag = header(&resp, "X-Linked-Etag").or_else(|| header(&resp, "ETag"));
                let same_host = location
                    .as_deref()
                    .is_some_and(|l| l.starts_with(&format!("{}/", self.endpoint)));
                if redirect
                    && (etag.is_none() || same_host)
                    && header(&resp, "X-Repo-Commit").is_none()
                {
                    // A relative redirect (renamed repository): follow it.
                    url = location.expect("redirect has a location");
                    continue;
                }
                let etag = etag.ok_or_else(|| HubError::Protocol {
                    url: url.clone(),
                    message: "no ETag / X-Linked-Etag header".into(),
                })?;
                let size = header(&resp, "X-Linked-Size")
                    .or_else(|| {
                        (!redirect)
                            .then(|| header(&resp, "Content-Length"))
                            .flatten()
                    })
                    .and_then(|s| s.trim().parse().ok());
                return Ok(FileMeta {
                    commit: header(&resp, "X-Repo-Commit"),
                    etag: unquote(&etag),
                    size,
                    location: location.unwrap_or(url),
                });
            }
            Err(HubError::Protocol {
                url: start.clone(),
                message: "too many redirects".into(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sha256_of_single_and_sharded_listings() {
        let lfs = |n: &str, h: &str| Sibling {
            rfilename: n.into(),
            size: Some(1),
            lfs: Some(Lfs {
                sha256: h.into(),
                size: 1,
            }),
        };
        let single = RevisionInfo {
            sha: "c".into(),
            siblings: vec![lfs("model.safetensors", "aa"), lfs("tokenizer.model", "tt")],
        };
        assert_eq!(single.weights_sha256().as_deref(), Some("aa"));
        let sharded = RevisionInfo {
            sha: "c".into(),
            siblings: vec![
                lfs("model-00002-of-00002.safetensors", "bb"),
                lfs("model-00001-of-00002.safetensors", "aa"),
            ],
        };
        assert_eq!(
            sharded.weights_sha256(),
            Some(crate::sha256_bytes(b"aa\nbb"))
        );
        // No safetensors: the PyTorch files, as `pull` takes them.
        let pt = RevisionInfo {
            sha: "c".into(),
            siblings: vec![
                lfs("pytorch_model-00002-of-00002.bin", "bb"),
                lfs("pytorch_model-00001-of-00002.bin", "aa"),
                lfs("training_args.bin", "zz"),
            ],
        };
        assert_eq!(pt.weights_sha256(), Some(crate::sha256_bytes(b"aa\nbb")));
        let none = RevisionInfo {
            sha: "c".into(),
            siblings: vec![],
        };
        assert_eq!(none.weights_sha256(), None);
    }

    #[test]
    fn etags_are_unquoted() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("W/\"abc\""), "abc");
    }
}
