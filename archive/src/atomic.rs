//! Crash-safe file and directory writes: temp name, fsync, rename, fsync the parent.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::error::{ArchiveError, IoContext};

/// The directory holding `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name_of(path: &Path) -> Result<String, ArchiveError> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| ArchiveError::invalid(path, "path has no file name"))
}

/// fsync a directory so that renames / creations inside it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), ArchiveError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .at(dir, "fsync directory")?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// The owner suffix of this process's temp names: `<host>-<pid>`.
fn owner() -> String {
    format!("{}-{}", crate::claim::host_name(), std::process::id())
}

/// The temp file used by [`write_file_atomic`] for `path`: `.<name>.tmp-<host>-<pid>` next to
/// it, naming the process that writes it.
pub fn tmp_file_for(path: &Path) -> Result<PathBuf, ArchiveError> {
    let name = file_name_of(path)?;
    Ok(path.with_file_name(format!(".{name}.tmp-{}", owner())))
}

/// Whether the writer of temp entry `name` may still be at work: its name says it is a live
/// process on this host, or a process on another host (which cannot be checked from here).
/// Entries without an owner (older k2) and of dead processes are stale.
fn owner_alive(name: &str) -> bool {
    let Some(i) = name.rfind(".tmp-") else {
        return false;
    };
    let Some((host, pid)) = name[i + 5..].rsplit_once('-') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != crate::claim::host_name() {
        return true;
    }
    crate::claim::pid_alive(pid)
}

/// Atomically replaces `path` with `bytes`: write `.<name>.tmp-<pid>` in the same
/// directory, fsync it, rename it over `path`, fsync the directory. Creates parent dirs.
/// On failure the old content of `path` is untouched and the temp file is removed.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    let parent = parent_of(path);
    fs::create_dir_all(parent).at(parent, "create directory")?;
    let tmp = tmp_file_for(path)?;
    let result = (|| {
        let mut f = File::create(&tmp).at(&tmp, "create")?;
        f.write_all(bytes).at(&tmp, "write")?;
        f.sync_all().at(&tmp, "fsync")?;
        drop(f);
        fs::rename(&tmp, path).at(path, "rename temp file onto")?;
        fsync_dir(parent)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The staging directory for `final_dir`: the sibling `.<name>.tmp-<host>-<pid>`.
pub fn tmp_dir_for(final_dir: &Path) -> PathBuf {
    let name = final_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dir".to_string());
    final_dir.with_file_name(format!(".{name}.tmp-{}", owner()))
}

/// fsync every regular file under `dir` (recursively) and every directory itself.
fn fsync_tree(dir: &Path) -> Result<(), ArchiveError> {
    for entry in fs::read_dir(dir).at(dir, "read directory")? {
        let entry = entry.at(dir, "read directory")?;
        let path = entry.path();
        let ft = entry.file_type().at(&path, "stat")?;
        if ft.is_dir() {
            fsync_tree(&path)?;
        } else if ft.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .at(&path, "fsync")?;
        }
    }
    fsync_dir(dir)
}

/// Publishes a fully written staging directory: fsync everything in `tmp_dir`, rename it
/// to `final_dir` (an error if `final_dir` already exists), fsync the parent directory.
pub fn commit_dir_atomic(tmp_dir: &Path, final_dir: &Path) -> Result<(), ArchiveError> {
    let meta = fs::metadata(tmp_dir).at(tmp_dir, "stat staging directory")?;
    if !meta.is_dir() {
        return Err(ArchiveError::invalid(
            tmp_dir,
            "staging path is not a directory",
        ));
    }
    if fs::symlink_metadata(final_dir).is_ok() {
        return Err(ArchiveError::AlreadyExists {
            path: final_dir.to_path_buf(),
        });
    }
    fsync_tree(tmp_dir)?;
    let parent = parent_of(final_dir);
    fs::create_dir_all(parent).at(parent, "create directory")?;
    fs::rename(tmp_dir, final_dir).at(final_dir, "rename staging directory onto")?;
    fsync_dir(parent)?;
    let tmp_parent = parent_of(tmp_dir);
    if tmp_parent != parent {
        fsync_dir(tmp_parent)?;
    }
    Ok(())
}

/// Whether `name` looks like one of our temp names (`.<name>.tmp-<host>-<pid>`, or the
/// owner-less `.<name>.tmp` / `.<name>.tmp-<pid>` of older k2).
pub fn is_tmp_name(name: &str) -> bool {
    name.len() > 1 && name.starts_with('.') && name[1..].contains(".tmp")
}

/// Removes leftover temp entries (`.*.tmp*`, files or directories) directly inside `dir`, e.g.
/// after a crash: those whose owner (in the name) is gone, and owner-less ones; a live
/// process's in-flight write is left alone. Returns the removed paths, sorted. A missing `dir`
/// removes nothing.
pub fn remove_stale_tmp(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    remove_stale_where(dir, |name, _| is_tmp_name(name))
}

/// Removes the leftover temp files of the files `names` directly inside `dir` (`.<name>.tmp*`),
/// leaving every other temp entry alone: a worker that now owns these files cleans up after one
/// that died writing them, without touching what concurrent workers are writing beside them.
pub fn remove_stale_tmp_of(dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, ArchiveError> {
    remove_stale_where(dir, |name, is_dir| {
        !is_dir && names.iter().any(|n| name.starts_with(&format!(".{n}.tmp")))
    })
}

/// Removes the entries of `dir` that `select` picks (by name and whether it is a directory) and
/// whose owner is not alive; returns them sorted.
fn remove_stale_where(
    dir: &Path,
    select: impl Fn(&str, bool) -> bool,
) -> Result<Vec<PathBuf>, ArchiveError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ArchiveError::io(dir, "read directory", e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.at(dir, "read directory")?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        let is_dir = entry.file_type().at(&path, "stat")?.is_dir();
        if !select(name, is_dir) || owner_alive(name) {
            continue;
        }
        if is_dir {
            fs::remove_dir_all(&path).at(&path, "remove stale directory")?;
        } else {
            fs::remove_file(&path).at(&path, "remove stale file")?;
        }
        removed.push(path);
    }
    if !removed.is_empty() {
        fsync_dir(dir)?;
    }
    removed.sort();
    Ok(removed)
}

/// Appends `line` plus a newline to `path` (created if missing) and fsyncs it.
/// `line` must not contain a newline (it would break the one-record-per-line format).
pub fn append_line_durable(path: &Path, line: &str) -> Result<(), ArchiveError> {
    if line.contains('\n') || line.contains('\r') {
        return Err(ArchiveError::invalid(
            path,
            "refusing to append a line that contains a line break",
        ));
    }
    let existed = path.exists();
    if !existed {
        let parent = parent_of(path);
        fs::create_dir_all(parent).at(parent, "create directory")?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .at(path, "open for append")?;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf).at(path, "append")?;
    f.sync_data().at(path, "fsync")?;
    if !existed {
        fsync_dir(parent_of(path))?;
    }
    Ok(())
}

/// Atomically rewrites the JSON-lines file `path`, keeping only the records for which
/// `keep` returns true (e.g. metrics up to the step being resumed from).
/// Returns the number of records kept. A missing file keeps nothing and returns 0.
/// Blank lines are dropped. A malformed line is an error naming the file and line number,
/// except a malformed *final line without a trailing newline*, which is a write torn by a
/// crash and is dropped.
pub fn truncate_jsonl_after(
    path: &Path,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Result<usize, ArchiveError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(ArchiveError::io(path, "open", e)),
    };
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut kept = 0usize;
    let mut line_no = 0usize;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw).at(path, "read")?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let terminated = raw.last() == Some(&b'\n');
        let text = match std::str::from_utf8(&raw) {
            Ok(t) => t.trim_end_matches(['\n', '\r']),
            Err(_) if !terminated => break, // torn final write
            Err(e) => {
                return Err(ArchiveError::JsonLine {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: format!("not UTF-8: {e}"),
                })
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => {
                if keep(&v) {
                    out.extend_from_slice(text.as_bytes());
                    out.push(b'\n');
                    kept += 1;
                }
            }
            Err(_) if !terminated => break, // torn final write
            Err(e) => {
                return Err(ArchiveError::JsonLine {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: e.to_string(),
                })
            }
        }
    }
    write_file_atomic(path, &out)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_names() {
        assert!(is_tmp_name(".ckpt_0001.tmp"));
        assert!(is_tmp_name(".checkpoints.toml.tmp-42"));
        assert!(!is_tmp_name("ckpt_0001"));
        assert!(!is_tmp_name(".hidden"));
        assert!(!is_tmp_name("."));
        let me = owner();
        assert_eq!(
            tmp_dir_for(Path::new("runs/a/ckpt_0001")),
            Path::new(&format!("runs/a/.ckpt_0001.tmp-{me}"))
        );
        assert_eq!(
            tmp_file_for(Path::new("d/x.json")).unwrap(),
            Path::new(&format!("d/.x.json.tmp-{me}"))
        );
        assert!(owner_alive(&format!(".x.json.tmp-{me}")));
        assert!(owner_alive(".x.json.tmp-some-other-host-1"));
        let host = crate::claim::host_name();
        assert!(!owner_alive(&format!(".x.json.tmp-{host}-4000000000")));
        assert!(!owner_alive(".x.json.tmp-42"));
        assert!(!owner_alive(".ckpt_0001.tmp"));
    }
}
