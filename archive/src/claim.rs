//! Claim files: how workers that share a filesystem split a sweep's work between them without
//! doing any of it twice. A worker claims a unit of work by creating `<unit>.claim` atomically
//! (`O_CREAT|O_EXCL`); the file records its host, pid and the time. A claim is stale, and may
//! be taken over, when its process is gone (same host) or it is older than the time-to-live
//! (any host). Taking over renames the stale file away first, so of two workers recovering the
//! same claim only one succeeds.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::ArchiveError;

/// What a claim file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub host: String,
    pub pid: u32,
    /// Seconds since the Unix epoch when the claim was made.
    pub time: u64,
}

/// The state of a unit's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    Free,
    Live(Claim),
    Stale(Claim),
}

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether process `pid` of this host is running (this process always is; without `/proc`
/// every process is taken as running).
pub(crate) fn pid_alive(pid: u32) -> bool {
    pid == std::process::id()
        || Path::new("/proc").join(pid.to_string()).exists()
        || !Path::new("/proc/self").exists()
}

impl Claim {
    pub fn mine() -> Claim {
        Claim {
            host: host_name(),
            pid: std::process::id(),
            time: now(),
        }
    }

    /// Gone (its process has exited on this host) or older than `ttl_s`.
    pub fn is_stale(&self, ttl_s: u64) -> bool {
        (self.host == host_name() && !pid_alive(self.pid))
            || now().saturating_sub(self.time) > ttl_s
    }
}

/// The claim at `path`, if any. A file that does not parse (a worker died while writing it) is
/// stale.
pub fn read_claim(path: &Path, ttl_s: u64) -> ClaimState {
    let Ok(text) = std::fs::read_to_string(path) else {
        return ClaimState::Free;
    };
    match serde_json::from_str::<Claim>(&text) {
        Ok(c) if c.is_stale(ttl_s) => ClaimState::Stale(c),
        Ok(c) => ClaimState::Live(c),
        Err(_) => ClaimState::Stale(Claim {
            host: String::new(),
            pid: 0,
            time: 0,
        }),
    }
}

/// Creates the claim file with its content in one step: the claim is written to a name only this
/// process uses and then hard-linked into place, which fails if the claim exists. (Creating the
/// file first and writing it after left a moment in which another worker read an empty claim,
/// took it for a corrupt, stale one and claimed the unit too.)
fn create(path: &Path) -> Result<bool, ArchiveError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(
        ".{name}.new-{}-{}",
        host_name(),
        std::process::id()
    ));
    let mut text = serde_json::to_string(&Claim::mine()).expect("a claim serialises");
    text.push('\n');
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(ArchiveError::io(&tmp, "write claim", e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(ArchiveError::io(path, "create claim", e)),
    }
}

/// Claims the unit whose claim file is `path`: true when this process now holds it. A stale
/// claim is taken over.
pub fn try_claim(path: &Path, ttl_s: u64) -> Result<bool, ArchiveError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ArchiveError::io(dir, "create directory", e))?;
    }
    remove_dead_scratch(path, ttl_s);
    if create(path)? {
        return Ok(true);
    }
    let ClaimState::Stale(_) = read_claim(path, ttl_s) else {
        return Ok(false);
    };
    // Move the stale claim aside under a name only this process uses; if another worker took it
    // over first, the rename finds nothing (or its fresh claim, which is put back).
    let aside = aside_path(path);
    if std::fs::rename(path, &aside).is_err() {
        return Ok(false);
    }
    match read_claim(&aside, ttl_s) {
        ClaimState::Live(_) => {
            // Someone's fresh claim: give it back unless yet another worker claimed meanwhile.
            let _ = std::fs::hard_link(&aside, path);
            let _ = std::fs::remove_file(&aside);
            Ok(false)
        }
        _ => {
            let _ = std::fs::remove_file(&aside);
            create(path)
        }
    }
}

/// Removes the scratch files (`.<name>.new-…`, `.<name>.stale-…`) that a claimer of `path`
/// killed between writing and removing them left behind: those of a process of this host that
/// is gone, and any older than `ttl_s`. A live process's scratch file is never touched.
fn remove_dead_scratch(path: &Path, ttl_s: u64) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = host_name();
    for e in entries.flatten() {
        let file = e.file_name();
        let file = file.to_string_lossy();
        let Some(owner) = [".new-", ".stale-"]
            .iter()
            .find_map(|kind| file.strip_prefix(&format!(".{name}{kind}")))
        else {
            continue;
        };
        let dead = owner
            .rsplit_once('-')
            .and_then(|(host, pid)| Some((host, pid.parse::<u32>().ok()?)))
            .is_some_and(|(host, pid)| host == me && !pid_alive(pid));
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age.as_secs() > ttl_s);
        if dead || old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn aside_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(
        ".{name}.stale-{}-{}",
        host_name(),
        std::process::id()
    ))
}

/// Keeps this process's claims fresh while it works on them: every `every`, each claim file that
/// is still this process's gets the current time, so a time-to-live of a few heartbeats tells a
/// dead worker on another host from a slow one. Stops when dropped.
pub struct Heartbeat {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a [`Heartbeat`] for `paths`.
pub fn heartbeat(paths: Vec<PathBuf>, every: std::time::Duration) -> Heartbeat {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let tick = std::time::Duration::from_millis(20).min(every);
        let mut waited = std::time::Duration::ZERO;
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(tick);
            waited += tick;
            if waited < every {
                continue;
            }
            waited = std::time::Duration::ZERO;
            let me = Claim::mine();
            for p in &paths {
                let ours = std::fs::read_to_string(p)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Claim>(&t).ok())
                    .is_some_and(|c| c.host == me.host && c.pid == me.pid);
                if ours {
                    let mut text = serde_json::to_string(&me).expect("a claim serialises");
                    text.push('\n');
                    // A failed refresh only lets the claim age; the work goes on.
                    let _ = crate::write_file_atomic(p, text.as_bytes());
                }
            }
        }
    });
    Heartbeat {
        stop,
        thread: Some(thread),
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Gives up a claim this process holds (after its results are written, or on failure).
pub fn release_claim(path: &Path) -> Result<(), ArchiveError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ArchiveError::io(path, "remove claim", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_keeps_a_claim_fresh() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.claim");
        let mut old = Claim::mine();
        old.time -= 100;
        std::fs::write(&p, serde_json::to_string(&old).unwrap()).unwrap();
        let other = d.path().join("other.claim");
        let theirs = Claim {
            host: "elsewhere".into(),
            pid: 1,
            time: now() - 100,
        };
        std::fs::write(&other, serde_json::to_string(&theirs).unwrap()).unwrap();
        assert!(matches!(read_claim(&p, 10), ClaimState::Stale(_)));
        {
            let _hb = heartbeat(
                vec![p.clone(), other.clone()],
                std::time::Duration::from_millis(40),
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        assert!(matches!(read_claim(&p, 10), ClaimState::Live(_)));
        // Another worker's claim is never touched.
        assert!(matches!(read_claim(&other, 10), ClaimState::Stale(c) if c == theirs));
    }

    #[test]
    fn one_claim_per_unit_and_stale_claims_are_recovered() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/task.claim");
        assert_eq!(read_claim(&p, 60), ClaimState::Free);
        assert!(try_claim(&p, 60).unwrap());
        assert!(
            !try_claim(&p, 60).unwrap(),
            "a live claim is not taken twice"
        );
        assert!(matches!(read_claim(&p, 60), ClaimState::Live(c) if c.pid == std::process::id()));
        // A claim of a process that no longer exists on this host is stale.
        let dead = Claim {
            host: host_name(),
            pid: u32::MAX - 1,
            time: now(),
        };
        std::fs::write(&p, serde_json::to_string(&dead).unwrap()).unwrap();
        assert!(matches!(read_claim(&p, 60), ClaimState::Stale(_)));
        assert!(try_claim(&p, 60).unwrap());
        // Another host's claim is stale only after the time-to-live.
        let old = Claim {
            host: "elsewhere".into(),
            pid: 1,
            time: now() - 100,
        };
        std::fs::write(&p, serde_json::to_string(&old).unwrap()).unwrap();
        assert!(matches!(read_claim(&p, 1000), ClaimState::Live(_)));
        assert!(!try_claim(&p, 1000).unwrap());
        assert!(try_claim(&p, 10).unwrap());
        // Scratch files of a claimer killed mid-claim are removed; a live process's are kept.
        let dir = p.parent().unwrap();
        let dead_tmp = dir.join(format!(".task.claim.new-{}-{}", host_name(), u32::MAX - 1));
        let dead_aside = dir.join(format!(
            ".task.claim.stale-{}-{}",
            host_name(),
            u32::MAX - 1
        ));
        let parent = std::os::unix::process::parent_id();
        let live_tmp = dir.join(format!(".task.claim.new-{}-{parent}", host_name()));
        for f in [&dead_tmp, &dead_aside, &live_tmp] {
            std::fs::write(f, "{").unwrap();
        }
        assert!(!try_claim(&p, 1000).unwrap());
        assert!(!dead_tmp.exists() && !dead_aside.exists());
        assert!(live_tmp.exists());
        std::fs::remove_file(&live_tmp).unwrap();
        // A half-written claim is stale.
        std::fs::write(&p, "{\"host\":").unwrap();
        assert!(try_claim(&p, 1000).unwrap());
        release_claim(&p).unwrap();
        assert_eq!(read_claim(&p, 60), ClaimState::Free);
        release_claim(&p).unwrap();
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert!(left.is_empty(), "no aside files left: {left:?}");
    }
}
