//! SHA-256 of bytes, files and directory trees (lowercase hex).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{ArchiveError, IoContext};

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of the file at `path` (streamed, constant memory) as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let mut f = File::open(path).at(path, "open")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArchiveError::io(path, "read", e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Maps every regular file under `dir` (recursively) to its SHA-256, keyed by its path
/// relative to `dir` with `/` separators, sorted. Symlinks to files are hashed as the
/// file they point to; symlinks to directories are not followed.
pub fn hash_tree(dir: &Path) -> Result<BTreeMap<String, String>, ArchiveError> {
    let meta = fs::metadata(dir).at(dir, "stat")?;
    if !meta.is_dir() {
        return Err(ArchiveError::invalid(dir, "not a directory"));
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) -> Result<(), ArchiveError> {
    for entry in fs::read_dir(dir).at(dir, "read directory")? {
        let entry = entry.at(dir, "read directory")?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| ArchiveError::invalid(&path, "file name is not valid UTF-8"))?;
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let ft = entry.file_type().at(&path, "stat")?;
        if ft.is_dir() {
            walk(&path, &rel, out)?;
        } else if ft.is_file() || (ft.is_symlink() && path.is_file()) {
            out.insert(rel, sha256_file(&path)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
