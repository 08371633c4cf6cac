use std::fs;
use std::path::Path;

use k2_archive::{ArchiveError, SuiteFile, SuiteKind};

const GOOD: &str = r#"format = 1

[[suite]]
name = "default"
kind = "run"
path = "runs/default"
description = "built-in tiny run"

[[suite]]
name = "pythia-70m"
kind = "hub"
repo = "EleutherAI/pythia-70m"
revisions = ["step1000", "step2000"]
tokens_per_checkpoint = 2097152000
"#;

fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("checkpoints.toml");
    fs::write(&p, text).unwrap();
    (dir, p)
}

fn err(text: &str) -> String {
    let (_d, p) = write(text);
    let e = SuiteFile::load(&p).unwrap_err();
    assert!(matches!(e, ArchiveError::Toml { .. }), "{e:?}");
    let s = e.to_string();
    assert!(s.contains("checkpoints.toml:"), "{s}");
    s
}

#[test]
fn load_find_roundtrip() {
    let (dir, p) = write(GOOD);
    let f = SuiteFile::load(&p).unwrap();
    assert_eq!(f.suites.len(), 2);
    let d = f.find("default").unwrap();
    assert_eq!(d.kind, SuiteKind::Run);
    assert_eq!(
        d.run_dir(Path::new("/repo")).unwrap(),
        Path::new("/repo/runs/default")
    );
    let h = f.find("pythia-70m").unwrap();
    assert_eq!(h.kind, SuiteKind::Hub);
    assert_eq!(h.revisions.as_deref().unwrap(), ["step1000", "step2000"]);
    assert_eq!(h.tokens_per_checkpoint, Some(2_097_152_000));
    assert!(f.find("nope").is_none());
    let p2 = dir.path().join("again.toml");
    f.save_atomic(&p2).unwrap();
    assert_eq!(SuiteFile::load(&p2).unwrap(), f);
}

#[test]
fn duplicate_name_rejected_with_line() {
    let s = err(&GOOD.replace("name = \"pythia-70m\"", "name = \"default\""));
    assert!(
        s.contains("checkpoints.toml:10:") && s.contains("duplicate suite name"),
        "{s}"
    );
    assert!(s.contains("suite.name"), "{s}");
}

#[test]
fn run_requires_path() {
    let s = err(&GOOD.replace("path = \"runs/default\"\n", ""));
    assert!(
        s.contains("checkpoints.toml:4:") && s.contains("suite.path"),
        "{s}"
    );
}

#[test]
fn unknown_field_and_bad_kind() {
    let s = err(&GOOD.replace("kind = \"run\"", "kind = \"run\"\nbranch = \"x\""));
    assert!(
        s.contains("checkpoints.toml:6:") && s.contains("field `suite[0].branch`"),
        "{s}"
    );
    let s = err(&GOOD.replace("kind = \"run\"", "kind = \"local\""));
    assert!(
        s.contains("checkpoints.toml:5:") && s.contains("local"),
        "{s}"
    );
    let s = err(&GOOD.replace(
        "tokens_per_checkpoint = 2097152000",
        "tokens_per_checkpoint = \"2B\"",
    ));
    assert!(s.contains("field `suite[1].tokens_per_checkpoint`"), "{s}");
    let s = err("format = 1\n[[suite]\n");
    assert!(s.contains("checkpoints.toml:2:"), "{s}");
}
