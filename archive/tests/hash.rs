use std::fs;

use k2_archive::{hash_tree, sha256_bytes, sha256_file};

#[test]
fn file_hash_matches_bytes_hash() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&p, &data).unwrap();
    assert_eq!(sha256_file(&p).unwrap(), sha256_bytes(&data));
    assert_eq!(
        sha256_bytes(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let e = sha256_file(&dir.path().join("missing.bin")).unwrap_err();
    assert!(e.to_string().contains("missing.bin"), "{e}");
}

#[test]
fn tree_is_relative_sorted_and_recursive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("trainer_state/rng")).unwrap();
    fs::write(d.join("model.safetensors"), b"m").unwrap();
    fs::write(d.join("config.json"), b"c").unwrap();
    fs::write(d.join("trainer_state/rng/cpu.bin"), b"r").unwrap();
    fs::create_dir(d.join("empty")).unwrap();
    let t = hash_tree(d).unwrap();
    let keys: Vec<_> = t.keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "config.json",
            "model.safetensors",
            "trainer_state/rng/cpu.bin"
        ]
    );
    assert_eq!(t["trainer_state/rng/cpu.bin"], sha256_bytes(b"r"));
    let e = hash_tree(&d.join("model.safetensors")).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}
