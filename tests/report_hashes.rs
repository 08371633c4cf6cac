//! The committed reports (`reports/*`) list the sha256 of every checkpoint they were rendered
//! from. Training is bit-exact, so the code must still train those bits from the report's own
//! config: when a change of kernels, a dependency upgrade or a changed default alters the
//! training bits, this test fails and says to regenerate the report, rather than leaving a report
//! that no longer describes what k2 trains. The first checkpoint is enough to catch a change of
//! bits (`K2_FAILPOINT=checkpoint-committed` stops the run right after it is committed).

mod common;

use std::path::Path;

use common::*;

/// The `config.toml` block and the sha256 listed for `ckpt_0001` in a report's README.
fn report_config_and_first_hash(readme: &Path) -> (String, String) {
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text
        .find("```toml\n")
        .unwrap_or_else(|| panic!("{}: no training config block", readme.display()))
        + "```toml\n".len();
    let end = start + text[start..].find("```").unwrap();
    let config = text[start..end].to_string();
    let row = text
        .lines()
        .find(|l| l.starts_with("| ckpt_0001 ") && l.contains('`'))
        .unwrap_or_else(|| panic!("{}: no ckpt_0001 row with a sha256", readme.display()));
    let hash = row.split('`').nth(1).unwrap().to_string();
    assert_eq!(hash.len(), 64, "{row}");
    (config, hash)
}

fn check(report: &str) {
    let readme = repo().join("reports").join(report).join("README.md");
    let (config, want) = report_config_and_first_hash(&readme);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("config.toml");
    std::fs::write(&cfg, config).unwrap();
    let run = tmp.path().join("run");
    let out = run_cmd(
        k2().args(["train", "--quiet", "--device", "cpu", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(&run)
            .env("K2_FAILPOINT", "checkpoint-committed"),
    );
    let weights = run.join("ckpt_0001/model.safetensors");
    let bytes = std::fs::read(&weights).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}",
            weights.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let got = k2_archive::sha256_bytes(&bytes);
    assert_eq!(
        got, want,
        "reports/{report} lists ckpt_0001 = {want}, but the code now trains {got} from the \
         report's own config: the training bits changed (kernels, reduction order, a dependency \
         upgrade, or a default). If the change is intended, regenerate the report (`k2 quickstart \
         --config configs/{report}.toml`, or plain `k2 quickstart` for the default) in its own \
         commit and say why the bits moved; see docs/determinism.md."
    );
}

#[test]
fn the_default_report_lists_what_the_code_trains() {
    check("default");
}

#[test]
fn the_acquisition_report_lists_what_the_code_trains() {
    check("acquisition");
}
