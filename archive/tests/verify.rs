use std::fs;
use std::path::Path;

use k2_archive::{
    ckpt_name, hash_tree, verify_checkpoint, verify_run, CheckpointEntry, CheckpointStatus,
    Manifest, Problem, RunLayout,
};

fn make_ckpt(run: &Path, index: u32) -> CheckpointEntry {
    let name = ckpt_name(index);
    let dir = run.join(&name);
    fs::create_dir_all(dir.join("trainer_state")).unwrap();
    fs::write(dir.join("model.safetensors"), format!("weights {index}")).unwrap();
    fs::write(dir.join("trainer_state/state.json"), b"{\"step\":1}").unwrap();
    CheckpointEntry {
        name,
        step: index as u64 * 100,
        tokens: index as u64 * 1000,
        chunks: vec![index - 1],
        stage: 1,
        status: CheckpointStatus::Ok,
        wall_time_s: 1.0,
        note: None,
        injected: Vec::new(),
        files: hash_tree(&dir).unwrap(),
    }
}

#[test]
fn intact_checkpoint_has_no_problems() {
    let run = tempfile::tempdir().unwrap();
    let e = make_ckpt(run.path(), 1);
    assert_eq!(verify_checkpoint(run.path(), &e).unwrap(), vec![]);
}

#[test]
fn detects_flipped_byte_missing_and_extra_files() {
    let run = tempfile::tempdir().unwrap();
    let e = make_ckpt(run.path(), 1);
    let dir = run.path().join(&e.name);
    let model = dir.join("model.safetensors");
    let mut bytes = fs::read(&model).unwrap();
    bytes[3] ^= 1;
    fs::write(&model, &bytes).unwrap();
    fs::remove_file(dir.join("trainer_state/state.json")).unwrap();
    fs::write(dir.join("trainer_state/extra.bin"), b"?").unwrap();
    let problems = verify_checkpoint(run.path(), &e).unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        matches!(&problems[0], Problem::HashMismatch { file, .. } if file == "model.safetensors")
    );
    assert!(
        matches!(&problems[1], Problem::MissingFile { file, .. } if file == "trainer_state/state.json")
    );
    assert!(
        matches!(&problems[2], Problem::ExtraFile { file, .. } if file == "trainer_state/extra.bin")
    );
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text[0].starts_with("ckpt_0001: file model.safetensors has sha256"),
        "{}",
        text[0]
    );
    assert!(text[1].contains("missing"), "{}", text[1]);
    assert!(text[2].contains("not listed"), "{}", text[2]);
}

#[test]
fn verify_whole_run() {
    let run = tempfile::tempdir().unwrap();
    let layout = RunLayout::new(run.path());
    let mut m = Manifest::new("t", "h");
    m.push(make_ckpt(run.path(), 1)).unwrap();
    m.push(make_ckpt(run.path(), 2)).unwrap();
    m.save_atomic(&layout.manifest_path()).unwrap();
    fs::remove_dir_all(layout.ckpt_dir("ckpt_0002")).unwrap();
    let report = verify_run(run.path()).unwrap();
    assert_eq!(report.len(), 2);
    assert_eq!(report[0], ("ckpt_0001".to_string(), vec![]));
    assert_eq!(report[1].0, "ckpt_0002");
    assert!(
        matches!(&report[1].1[..], [Problem::MissingDir { path, .. }] if path.ends_with("ckpt_0002"))
    );
    // No manifest: error naming it.
    let empty = tempfile::tempdir().unwrap();
    let e = verify_run(empty.path()).unwrap_err();
    assert!(e.to_string().contains("checkpoints.toml"), "{e}");
}
