//! The repository's top-level checkpoints.toml names the suites the tools know.

#[test]
fn top_level_manifest_names_the_default_run() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints.toml");
    let suites = k2_archive::SuiteFile::load(&p).unwrap();
    let d = suites.find("default").expect("default suite");
    assert_eq!(d.path.as_deref(), Some("runs/default"));
}
