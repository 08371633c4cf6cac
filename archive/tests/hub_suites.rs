//! Hub suites in checkpoints.toml: revision patterns, number ranges, tokens per revision, and
//! errors that name the line and field.

use std::fs;

use k2_archive::hub::Revision;
use k2_archive::suites::{expand_pattern, parse_numbers};
use k2_archive::SuiteFile;

fn load(text: &str) -> Result<SuiteFile, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("checkpoints.toml");
    fs::write(&p, text).unwrap();
    SuiteFile::load(&p).map_err(|e| e.to_string())
}

const AMBER: &str = r#"format = 1

[[suite]]
name = "amber"
kind = "hub"
repo = "LLM360/Amber"
revision_pattern = "ckpt_{:03}"
numbers = ["0..=359"]
tokens_per_checkpoint = 3500000000
first_checkpoint = 0
stage = 1

[[suite]]
name = "pythia"
kind = "hub"
repo = "EleutherAI/pythia-160m-deduped"
revision_pattern = "step{}"
numbers = ["0", "1", "2", "4", "1000..=143000/1000"]
tokens_per_step = 2097152

[[suite]]
name = "k2"
kind = "hub"
repo = "LLM360/K2"
tokens_per_checkpoint = 3932160000
"#;

#[test]
fn patterns_expand_to_revisions_with_tokens() {
    let f = load(AMBER).unwrap();
    let amber = f.find("amber").unwrap();
    let revs = amber.hub_revisions().unwrap().unwrap();
    assert_eq!(revs.len(), 360);
    assert_eq!(
        (revs[0].as_str(), revs[359].as_str()),
        ("ckpt_000", "ckpt_359")
    );
    let r0 = Revision::parse("ckpt_000").unwrap();
    assert_eq!(amber.tokens_of(&r0), Some(3_500_000_000));
    let pythia = f.find("pythia").unwrap();
    let revs = pythia.hub_revisions().unwrap().unwrap();
    assert_eq!(revs.len(), 4 + 143);
    assert_eq!(revs[4], "step1000");
    assert_eq!(revs.last().unwrap(), "step143000");
    let s = Revision::parse("step143000").unwrap();
    assert_eq!(pythia.tokens_of(&s), Some(143_000 * 2_097_152));
    // No list: every checkpoint branch of the repository; K2 counts checkpoints from 1.
    let k2 = f.find("k2").unwrap();
    assert_eq!(k2.hub_revisions().unwrap(), None);
    let c1 = Revision::parse("ckpt_1").unwrap();
    assert_eq!(k2.tokens_of(&c1), Some(3_932_160_000));
    assert_eq!(
        k2.tokens_of(&Revision::parse("ministage2_ckpt_377").unwrap()),
        None
    );
}

#[test]
fn pattern_and_number_syntax() {
    assert_eq!(expand_pattern("ckpt_{:03}", 7).as_deref(), Some("ckpt_007"));
    assert_eq!(expand_pattern("step{}", 7).as_deref(), Some("step7"));
    assert_eq!(expand_pattern("step", 7), None);
    assert_eq!(expand_pattern("s{}{}", 7), None);
    assert_eq!(expand_pattern("s{:x}", 7), None);
    assert_eq!(parse_numbers("3").unwrap(), [3]);
    assert_eq!(parse_numbers("1..=3").unwrap(), [1, 2, 3]);
    assert_eq!(parse_numbers("0..=10/5").unwrap(), [0, 5, 10]);
    for bad in ["", "a", "3..=1", "1..=3/0", "1..3"] {
        assert!(parse_numbers(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_hub_suites_are_rejected_with_line_and_field() {
    let head = "format = 1\n\n[[suite]]\nname = \"x\"\nkind = \"hub\"\n";
    let e = load(head).unwrap_err();
    assert!(
        e.contains("checkpoints.toml:4:") && e.contains("suite.repo"),
        "{e}"
    );
    let e = load(&format!("{head}repo = \"a/../b\"\n")).unwrap_err();
    assert!(
        e.contains(":6:") && e.contains("not a Hub repository id"),
        "{e}"
    );
    let e = load(&format!(
        "{head}repo = \"a/b\"\nrevisions = [\"step1\"]\nrevision_pattern = \"step{{}}\"\nnumbers = [\"1\"]\n"
    ))
    .unwrap_err();
    assert!(e.contains(":8:") && e.contains("both"), "{e}");
    let e = load(&format!(
        "{head}repo = \"a/b\"\nrevision_pattern = \"step{{}}\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("suite.numbers"), "{e}");
    let e = load(&format!(
        "{head}repo = \"a/b\"\nrevision_pattern = \"step{{}}\"\nnumbers = [\"9..=1\"]\n"
    ))
    .unwrap_err();
    assert!(e.contains(":8:") && e.contains("9..=1"), "{e}");
    let e = load(&format!("{head}repo = \"a/b\"\nrevision_patern = \"x\"\n")).unwrap_err();
    assert!(e.contains("revision_patern"), "{e}");
}
