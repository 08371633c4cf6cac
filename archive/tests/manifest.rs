use std::collections::BTreeMap;
use std::fs;

use k2_archive::{sha256_bytes, ArchiveError, CheckpointEntry, CheckpointStatus, Manifest};

fn entry(name: &str, step: u64, status: CheckpointStatus) -> CheckpointEntry {
    let mut files = BTreeMap::new();
    files.insert("model.safetensors".to_string(), sha256_bytes(b"weights"));
    files.insert(
        "trainer_state/optimizer.safetensors".to_string(),
        sha256_bytes(b"moments"),
    );
    CheckpointEntry {
        name: name.to_string(),
        step,
        tokens: step * 4096,
        chunks: vec![(step / 10) as u32],
        stage: 1,
        status,
        wall_time_s: 12.5,
        note: None,
        injected: Vec::new(),
        files,
    }
}

fn sample() -> Manifest {
    let mut m = Manifest::new("default", "abc123");
    m.push(entry("ckpt_0001", 10, CheckpointStatus::Ok))
        .unwrap();
    let mut e = entry("spike_ckpt_0002", 20, CheckpointStatus::Spike);
    e.note = Some("loss spike at step 19".into());
    m.push(e).unwrap();
    m.push(entry("ckpt_0002", 20, CheckpointStatus::Ok))
        .unwrap();
    m
}

#[test]
fn roundtrip_and_readable_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoints.toml");
    let m = sample();
    m.save_atomic(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("[[checkpoint]]").count(), 3, "{text}");
    assert_eq!(text.matches("[checkpoint.files]").count(), 3, "{text}");
    assert!(text.starts_with("format = 1\n"), "{text}");
    assert_eq!(Manifest::load(&path).unwrap(), m);
    // Stable: saving again gives identical bytes.
    Manifest::load(&path).unwrap().save_atomic(&path).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_eq!(m.to_toml_string().unwrap(), text);
}

#[test]
fn queries() {
    let mut m = sample();
    assert_eq!(m.get("spike_ckpt_0002").unwrap().step, 20);
    assert!(m.get("nope").is_none());
    assert_eq!(m.latest_ok().unwrap().name, "ckpt_0002");
    let names: Vec<_> = m.ok_checkpoints().iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["ckpt_0001", "ckpt_0002"]);
    m.set_status("ckpt_0002", CheckpointStatus::RolledBack)
        .unwrap();
    assert_eq!(m.latest_ok().unwrap().name, "ckpt_0001");
    assert!(m.set_status("nope", CheckpointStatus::Ok).is_err());
    // After the rollback, training may continue from step 10 again.
    m.push(entry("ckpt_0003", 15, CheckpointStatus::Ok))
        .unwrap();
    assert_eq!(Manifest::new("r", "h").latest_ok(), None);
}

#[test]
fn push_rejects_duplicates_and_regressions() {
    let mut m = sample();
    let e = m
        .push(entry("ckpt_0001", 30, CheckpointStatus::Ok))
        .unwrap_err();
    assert!(e.to_string().contains("duplicate checkpoint name"), "{e}");
    let e = m
        .push(entry("ckpt_0009", 19, CheckpointStatus::Ok))
        .unwrap_err();
    assert!(
        e.to_string().contains("step 19") && e.to_string().contains("ckpt_0002"),
        "{e}"
    );
    let e = m
        .push(entry("../evil", 30, CheckpointStatus::Ok))
        .unwrap_err();
    assert!(e.to_string().contains("invalid checkpoint name"), "{e}");
    let mut bad = entry("ckpt_0010", 30, CheckpointStatus::Ok);
    bad.files.insert("../x".into(), sha256_bytes(b""));
    assert!(m.push(bad).is_err());
    let mut bad = entry("ckpt_0010", 30, CheckpointStatus::Ok);
    bad.files.insert("x".into(), "ABC".into());
    assert!(m.push(bad).is_err());
    assert_eq!(m.checkpoints.len(), 3);
}

fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoints.toml");
    fs::write(&path, text).unwrap();
    let e = Manifest::load(&path).unwrap_err();
    assert!(matches!(e, ArchiveError::Toml { .. }), "{e:?}");
    let s = e.to_string();
    assert!(s.contains("checkpoints.toml"), "{s}");
    s
}

fn good_text() -> String {
    sample().to_toml_string().unwrap()
}

#[test]
fn syntax_error_names_file_and_line() {
    let text = good_text().replacen("stage = 1", "stage = = 1", 1);
    let line = text.lines().position(|l| l.contains("= =")).unwrap() + 1;
    let s = load_err(&text);
    assert!(s.contains(&format!("checkpoints.toml:{line}:")), "{s}");
}

#[test]
fn wrong_type_names_line_and_field() {
    let text = good_text().replacen("step = 10", "step = \"ten\"", 1);
    let line = text.lines().position(|l| l.contains("\"ten\"")).unwrap() + 1;
    let s = load_err(&text);
    assert!(s.contains(&format!("checkpoints.toml:{line}:")), "{s}");
    assert!(s.contains("field `checkpoint[0].step`"), "{s}");
}

#[test]
fn unknown_field_rejected() {
    let text = good_text().replacen("stage = 1", "stage = 1\nsurprise = true", 1);
    let line = text.lines().position(|l| l.contains("surprise")).unwrap() + 1;
    let s = load_err(&text);
    assert!(s.contains(&format!("checkpoints.toml:{line}:")), "{s}");
    assert!(s.contains("surprise"), "{s}");
    let s = load_err(&good_text().replacen("format = 1", "format = 1\nextra = 2", 1));
    assert!(s.contains("extra"), "{s}");
}

#[test]
fn missing_field_and_bad_status() {
    let s = load_err(&good_text().replacen("stage = 1\n", "", 1));
    assert!(s.contains("stage"), "{s}");
    let s = load_err(&good_text().replacen("status = \"ok\"", "status = \"fine\"", 1));
    assert!(s.contains("fine") && s.contains("status"), "{s}");
}

#[test]
fn semantic_errors_name_line() {
    let text = good_text().replacen("name = \"ckpt_0002\"", "name = \"ckpt_0001\"", 1);
    let line = text
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains("ckpt_0001"))
        .unwrap()
        + 1;
    let s = load_err(&text);
    assert!(s.contains(&format!("checkpoints.toml:{line}:")), "{s}");
    assert!(s.contains("duplicate checkpoint name"), "{s}");
    let s = load_err(&good_text().replacen("format = 1", "format = 2", 1));
    assert!(
        s.contains("checkpoints.toml:1:") && s.contains("unsupported"),
        "{s}"
    );
}

#[test]
fn missing_file_is_io_error_with_path() {
    let e = Manifest::load(std::path::Path::new("/nonexistent/k2/checkpoints.toml")).unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/k2/checkpoints.toml"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("checkpoints.toml");
    let m = Manifest::load_or_new(&p, "r", "h").unwrap();
    assert!(m.checkpoints.is_empty());
    m.save_atomic(&p).unwrap();
    assert!(Manifest::load_or_new(&p, "r", "h").is_ok());
    let e = Manifest::load_or_new(&p, "r", "other").unwrap_err();
    assert!(e.to_string().contains("config_hash"), "{e}");
}
