//! A `kind = "hub"` suite as a checkpoint source: its revisions in training order, pulled into
//! the HF cache (verified against the Hub's sha256s), evicted on release when this source pulled
//! them. Offline (`HF_HUB_OFFLINE=1`) only the cache is read.

use std::collections::HashMap;
use std::path::Path;

use super::{CheckpointSource, Materialised, SourceCheckpoint, SourceError, SourceResult};
use crate::hub::{self, HubClient, HubError, PullOptions, Revision, RevisionInfo};
use crate::Suite;

/// Checks a pulled `config.json` before any weights move; the error says why the job cannot load
/// this model (it stops the sweep).
pub type ConfigCheck = Box<dyn Fn(&Path) -> Result<(), String>>;

pub struct HubSource {
    pub client: HubClient,
    pub suite: Suite,
    repo: String,
    config_check: Option<ConfigCheck>,
    listings: HashMap<String, RevisionInfo>,
}

/// Errors after which no other revision of the repository can succeed. (Offline, a revision
/// missing from the cache fails alone: the others may be there.)
fn classify(e: HubError) -> SourceError {
    if matches!(
        e,
        HubError::Gated { .. } | HubError::RepoNotFound { .. } | HubError::DiskFull { .. }
    ) {
        SourceError::Fatal(e.to_string())
    } else {
        SourceError::Checkpoint(e.to_string())
    }
}

impl HubSource {
    pub fn new(
        client: HubClient,
        suite: Suite,
        config_check: Option<ConfigCheck>,
    ) -> SourceResult<Self> {
        let repo = suite
            .repo
            .clone()
            .ok_or_else(|| SourceError::Fatal(format!("suite `{}` has no repo", suite.name)))?;
        Ok(HubSource {
            client,
            suite,
            repo,
            config_check,
            listings: HashMap::new(),
        })
    }

    fn listing(&mut self, rev: &str) -> SourceResult<RevisionInfo> {
        if let Some(i) = self.listings.get(rev) {
            return Ok(i.clone());
        }
        let info = self
            .client
            .revision_info(&self.repo, rev)
            .map_err(classify)?;
        self.listings.insert(rev.to_string(), info.clone());
        Ok(info)
    }
}

impl CheckpointSource for HubSource {
    fn model(&self) -> String {
        self.repo.clone()
    }

    /// The suite's list or pattern, else every checkpoint branch the Hub (offline: the cache)
    /// lists.
    fn checkpoints(&mut self) -> SourceResult<Vec<SourceCheckpoint>> {
        let names = match self
            .suite
            .hub_revisions()
            .map_err(|e| SourceError::Fatal(format!("suite `{}`: {e}", self.suite.name)))?
        {
            Some(list) => list,
            None => hub::list_revisions(&self.client, &self.repo, Some(&self.suite))
                .map_err(|e| SourceError::Fatal(e.to_string()))?
                .into_iter()
                .filter(|r| r.parsed.is_some())
                .map(|r| r.name)
                .collect(),
        };
        Ok(hub::training_order(&names)
            .into_iter()
            .map(|name| SourceCheckpoint {
                // The step of `stepN`, the number of `ckpt_N`.
                step: Revision::parse(&name).map(|r| r.number),
                tokens: hub::tokens_of(&name, Some(&self.suite)),
                name,
                status: None,
            })
            .collect())
    }

    /// The listing's LFS sha256s (offline: the cached snapshot's).
    fn expected_weights(&mut self, c: &SourceCheckpoint) -> SourceResult<Option<String>> {
        if self.client.offline {
            return hub::cached(&self.client, &self.repo, &c.name)
                .map(|p| Some(p.weights_sha256))
                .map_err(classify);
        }
        Ok(self.listing(&c.name)?.weights_sha256())
    }

    fn materialise(
        &mut self,
        c: &SourceCheckpoint,
        say: &mut dyn FnMut(String),
    ) -> SourceResult<Materialised> {
        let (repo, rev) = (self.repo.clone(), c.name.as_str());
        let (pulled, owned) = if self.client.offline {
            (
                hub::cached(&self.client, &repo, rev).map_err(classify)?,
                false,
            )
        } else {
            let info = self.listing(rev)?;
            // A snapshot that was there before this sweep is not its to evict.
            let was_cached = self.client.cache.snapshot_dir(&repo, &info.sha).is_dir();
            // config.json first: a model the job cannot load stops the sweep before any weights
            // move.
            if info.sibling("tokenizer.json").is_none() && info.sibling("tokenizer.model").is_none()
            {
                return Err(SourceError::Fatal(format!(
                    "{repo}@{rev} has neither tokenizer.json nor tokenizer.model; the sweep stops \
                     before downloading weights"
                )));
            }
            hub::pull::pull_file(&self.client, &repo, rev, &info, "config.json")
                .map_err(classify)?;
            if let Some(check) = &self.config_check {
                let cfg = self
                    .client
                    .cache
                    .snapshot_dir(&repo, &info.sha)
                    .join("config.json");
                check(&cfg).map_err(|why| {
                    SourceError::Fatal(format!(
                        "{repo}@{rev}: {why}; the sweep stops before downloading weights"
                    ))
                })?;
            }
            let p = hub::pull_listed(
                &self.client,
                &repo,
                rev,
                &info,
                &PullOptions::default(),
                &mut |_| {},
            )
            .map_err(classify)?;
            (p, !was_cached)
        };
        if pulled.bytes_downloaded > 0 {
            say(format!(
                "{rev}: pulled {} bytes into {}",
                pulled.bytes_downloaded,
                pulled.dir.display()
            ));
        }
        Ok(Materialised {
            view_dir: Some(self.client.cache.view_dir(&repo, &pulled.commit)),
            dir: pulled.dir,
            weights_sha256: pulled.weights_sha256,
            commit: Some(pulled.commit),
            bytes_downloaded: pulled.bytes_downloaded,
            owned,
        })
    }

    /// Evicts the snapshot and its converted view.
    fn release(&mut self, _c: &SourceCheckpoint, m: &Materialised) -> SourceResult<u64> {
        let Some(commit) = &m.commit else {
            return Ok(0);
        };
        let freed = self
            .client
            .cache
            .evict(&self.repo, commit)
            .map_err(|e| SourceError::Fatal(e.to_string()))?;
        if let Some(view) = &m.view_dir {
            if view.exists() {
                std::fs::remove_dir_all(view)
                    .map_err(|e| SourceError::Fatal(format!("{}: {e}", view.display())))?;
            }
        }
        Ok(freed)
    }
}
