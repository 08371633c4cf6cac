//! `k2 hub list`: a repository's checkpoint branches in training order, with the tokens each
//! had seen (from the name, or from the suite in `checkpoints.toml` that names the repository).

use super::client::HubClient;
use super::duplicates::Duplicates;
use super::error::Result;
use super::revisions::Revision;
use crate::suites::Suite;

/// One branch of a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedRevision {
    pub name: String,
    pub commit: String,
    /// `None` for branches that are not checkpoints (`main`).
    pub parsed: Option<Revision>,
    pub tokens: Option<u64>,
    /// The weights' sha256 (filled by [`add_weights`]).
    pub weights_sha256: Option<String>,
    /// An earlier revision with byte-identical weights (filled by [`add_weights`]).
    pub duplicate_of: Option<String>,
}

/// Tokens seen at `name`: from the name itself, else from the suite's tokens per step / per
/// checkpoint.
pub fn tokens_of(name: &str, suite: Option<&Suite>) -> Option<u64> {
    let r = Revision::parse(name)?;
    r.tokens.or_else(|| suite?.tokens_of(&r))
}

/// The branches of `repo` in training order (checkpoints first), from the Hub, or from the
/// cache's `refs/` when offline.
pub fn list_revisions(
    client: &HubClient,
    repo: &str,
    suite: Option<&Suite>,
) -> Result<Vec<ListedRevision>> {
    let pairs: Vec<(String, String)> = if client.offline {
        cached_refs(client, repo)
    } else {
        client
            .refs(repo)?
            .branches
            .into_iter()
            .map(|b| (b.name, b.target_commit))
            .collect()
    };
    let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    Ok(super::revisions::training_order(&names)
        .into_iter()
        .map(|name| {
            let commit = pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            ListedRevision {
                parsed: Revision::parse(&name),
                tokens: tokens_of(&name, suite),
                name,
                commit,
                weights_sha256: None,
                duplicate_of: None,
            }
        })
        .collect())
}

/// Fills in each revision's weights sha256 from the Hub's file listing (LFS sha256s; no download;
/// offline: from the cache) and marks revisions whose weights equal an earlier one's.
pub fn add_weights(client: &HubClient, repo: &str, revs: &mut [ListedRevision]) -> Result<()> {
    let mut dups = Duplicates::default();
    for r in revs.iter_mut() {
        r.weights_sha256 = if client.offline {
            super::pull::cached(client, repo, &r.name)
                .ok()
                .map(|p| p.weights_sha256)
        } else {
            let at = if r.commit.is_empty() {
                &r.name
            } else {
                &r.commit
            };
            client.revision_info(repo, at)?.weights_sha256()
        };
        if let Some(w) = &r.weights_sha256 {
            r.duplicate_of = dups.check(&r.name, w);
        }
    }
    Ok(())
}

/// `refs/*` of the cached repository: (revision, commit).
fn cached_refs(client: &HubClient, repo: &str) -> Vec<(String, String)> {
    let dir = client.cache.repo_dir(repo).join("refs");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let commit = std::fs::read_to_string(e.path()).ok()?;
            (!name.starts_with('.')).then(|| (name, commit.trim().to_string()))
        })
        .collect()
}
