use std::fs;
use std::path::Path;

use k2_archive::{
    append_line_durable, commit_dir_atomic, remove_stale_tmp, tmp_dir_for, tmp_file_for,
    truncate_jsonl_after, write_file_atomic, ArchiveError,
};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn write_atomic_replaces_and_leaves_no_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/file.toml");
    write_file_atomic(&path, b"one").unwrap();
    write_file_atomic(&path, b"two").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"two");
    assert_eq!(names(&dir.path().join("a/b")), ["file.toml"]);
    let tmp = tmp_file_for(&path).unwrap();
    assert_eq!(
        tmp.file_name().unwrap().to_str().unwrap(),
        format!(
            ".file.toml.tmp-{}-{}",
            k2_archive::claim::host_name(),
            std::process::id()
        )
    );
    assert_eq!(tmp.parent(), path.parent());
}

#[test]
fn failed_write_keeps_old_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.toml");
    write_file_atomic(&path, b"old").unwrap();
    // Block the temp name so the write cannot even start; the rename never happens.
    fs::create_dir(tmp_file_for(&path).unwrap()).unwrap();
    let e = write_file_atomic(&path, b"new").unwrap_err();
    assert!(matches!(e, ArchiveError::Io { .. }));
    assert!(e.to_string().contains("metrics.toml.tmp-"), "{e}");
    assert_eq!(fs::read(&path).unwrap(), b"old");

    // Rename onto a non-empty directory fails: the temp file is cleaned up.
    let target = dir.path().join("occupied");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("x"), b"x").unwrap();
    let e = write_file_atomic(&target, b"new").unwrap_err();
    assert!(e.to_string().contains("occupied"), "{e}");
    assert!(!tmp_file_for(&target).unwrap().exists());
}

#[cfg(unix)]
#[test]
fn read_only_dir_keeps_old_content() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("ro");
    fs::create_dir(&sub).unwrap();
    let path = sub.join("f.txt");
    write_file_atomic(&path, b"old").unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o555)).unwrap();
    let res = write_file_atomic(&path, b"new");
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    if let Err(e) = res {
        assert!(e.to_string().contains("ro/"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(&sub), ["f.txt"]);
    } // else: running as root, permissions are not enforced.
}

#[test]
fn commit_dir() {
    let dir = tempfile::tempdir().unwrap();
    let final_dir = dir.path().join("ckpt_0001");
    let tmp = tmp_dir_for(&final_dir);
    assert_eq!(
        tmp,
        dir.path().join(format!(
            ".ckpt_0001.tmp-{}-{}",
            k2_archive::claim::host_name(),
            std::process::id()
        ))
    );
    fs::create_dir_all(tmp.join("trainer_state")).unwrap();
    fs::write(tmp.join("model.safetensors"), b"w").unwrap();
    fs::write(tmp.join("trainer_state/rng.json"), b"{}").unwrap();
    commit_dir_atomic(&tmp, &final_dir).unwrap();
    assert!(!tmp.exists());
    assert_eq!(
        fs::read(final_dir.join("trainer_state/rng.json")).unwrap(),
        b"{}"
    );

    // Refuses to replace an existing directory.
    fs::create_dir(&tmp).unwrap();
    let e = commit_dir_atomic(&tmp, &final_dir).unwrap_err();
    assert!(matches!(e, ArchiveError::AlreadyExists { .. }));
    assert!(e.to_string().contains("ckpt_0001"), "{e}");
    assert!(final_dir.join("model.safetensors").exists());
    // Missing staging dir is an error naming it.
    let e = commit_dir_atomic(&dir.path().join(".nope.tmp"), &dir.path().join("nope")).unwrap_err();
    assert!(e.to_string().contains(".nope.tmp"), "{e}");
}

#[test]
fn stale_tmp_removal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join(".ckpt_0003.tmp/trainer_state")).unwrap();
    fs::write(d.join(".ckpt_0003.tmp/trainer_state/x"), b"x").unwrap();
    fs::write(d.join(".checkpoints.toml.tmp-12345"), b"half").unwrap();
    fs::create_dir(d.join("ckpt_0002")).unwrap();
    fs::write(d.join("checkpoints.toml"), b"format = 1").unwrap();
    fs::write(d.join(".hidden"), b"").unwrap();
    // Temps name their owner: a live process's in-flight write (this one's) and another host's
    // are left alone; a dead process's on this host is removed.
    let host = k2_archive::claim::host_name();
    let live = format!(".metrics.json.tmp-{host}-{}", std::process::id());
    fs::write(d.join(&live), b"in flight").unwrap();
    fs::write(d.join(".a.json.tmp-elsewhere-7"), b"other host").unwrap();
    let dead = format!(".b.json.tmp-{host}-4000000000");
    fs::write(d.join(&dead), b"dead writer").unwrap();
    let removed = remove_stale_tmp(d).unwrap();
    let mut want = vec![
        d.join(".checkpoints.toml.tmp-12345"),
        d.join(".ckpt_0003.tmp"),
        d.join(&dead),
    ];
    want.sort();
    assert_eq!(removed, want);
    let mut left = vec![
        ".a.json.tmp-elsewhere-7".to_string(),
        ".hidden".into(),
        live.clone(),
        "checkpoints.toml".into(),
        "ckpt_0002".into(),
    ];
    left.sort();
    assert_eq!(names(d), left);
    fs::remove_file(d.join(&live)).unwrap();
    fs::remove_file(d.join(".a.json.tmp-elsewhere-7")).unwrap();
    assert!(remove_stale_tmp(d).unwrap().is_empty());
    assert!(remove_stale_tmp(&d.join("missing")).unwrap().is_empty());
}

#[test]
fn jsonl_append_and_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/metrics.jsonl");
    for step in 1..=5 {
        append_line_durable(&path, &format!("{{\"step\":{step},\"loss\":1.5}}")).unwrap();
    }
    assert!(append_line_durable(&path, "a\nb").is_err());
    let kept = truncate_jsonl_after(&path, |v| v["step"].as_u64().is_some_and(|s| s <= 3)).unwrap();
    assert_eq!(kept, 3);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.ends_with("{\"step\":3,\"loss\":1.5}\n"), "{text}");
    assert_eq!(names(path.parent().unwrap()), ["metrics.jsonl"]);
    // Missing file: nothing to keep.
    assert_eq!(
        truncate_jsonl_after(&dir.path().join("none.jsonl"), |_| true).unwrap(),
        0
    );
}

#[test]
fn jsonl_malformed_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    fs::write(&path, "{\"step\":1}\n\n{\"step\":2\n{\"step\":3}\n").unwrap();
    let e = truncate_jsonl_after(&path, |_| true).unwrap_err();
    assert!(matches!(e, ArchiveError::JsonLine { line: 3, .. }), "{e:?}");
    assert!(e.to_string().contains("metrics.jsonl:3:"), "{e}");
    // Untouched on error.
    assert!(fs::read_to_string(&path).unwrap().contains("{\"step\":2\n"));
}

#[test]
fn jsonl_torn_final_line_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    fs::write(&path, "{\"step\":1}\n{\"step\":2}\n{\"st").unwrap();
    assert_eq!(truncate_jsonl_after(&path, |_| true).unwrap(), 2);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\"step\":1}\n{\"step\":2}\n"
    );
    append_line_durable(&path, "{\"step\":3}").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);
}
