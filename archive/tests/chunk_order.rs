use std::fs;

use k2_archive::{ArchiveError, ChunkOrder};

#[test]
fn defer_moves_chunk_to_end_and_records_it() {
    let mut c = ChunkOrder::from_order(vec![3, 1, 4, 0, 2]).unwrap();
    assert_eq!(c.defer(1, 1600, "loss spike after ckpt_0160").unwrap(), 1);
    assert_eq!(c.order, [3, 4, 0, 2, 1]);
    assert_eq!(c.deferrals.len(), 1);
    assert_eq!(c.deferrals[0].chunk, 1);
    assert_eq!(c.deferrals[0].from_position, 1);
    assert_eq!(c.deferrals[0].at_step, 1600);
    assert!(c.defer(5, 0, "x").is_err());
    assert_eq!(c.chunk_at(0), Some(3));
    assert_eq!(c.len(), 5);
    c.validate().unwrap();
}

#[test]
fn roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("chunk_order.toml");
    let mut c = ChunkOrder::identity(6);
    c.defer(2, 20, "spike").unwrap();
    c.save_atomic(&p).unwrap();
    assert_eq!(ChunkOrder::load(&p).unwrap(), c);
    let text = fs::read_to_string(&p).unwrap();
    assert!(text.contains("[[deferrals]]"), "{text}");
}

#[test]
fn permutation_validation() {
    let e = ChunkOrder::from_order(vec![0, 2, 2]).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("duplicate chunk id(s) 2") && s.contains("missing chunk id(s) 1"),
        "{s}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("chunk_order.toml");
    fs::write(&p, "format = 1\norder = [0, 1, 5]\n").unwrap();
    let e = ChunkOrder::load(&p).unwrap_err();
    assert!(matches!(e, ArchiveError::Toml { .. }));
    let s = e.to_string();
    assert!(
        s.contains("chunk_order.toml:2:") && s.contains("`order`"),
        "{s}"
    );
    assert!(
        s.contains("out-of-range chunk id(s) 5") && s.contains("missing chunk id(s) 2"),
        "{s}"
    );
    // An invalid order is never written.
    let bad = ChunkOrder {
        format: 1,
        order: vec![1, 1],
        deferrals: vec![],
        injections: vec![],
    };
    assert!(bad
        .save_atomic(&p)
        .unwrap_err()
        .to_string()
        .contains("chunk_order.toml"));
}

#[test]
fn bad_toml_names_file_line_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("chunk_order.toml");
    fs::write(
        &p,
        "format = 1\norder = [0]\n\n[[deferrals]]\nchunk = 0\nfrom_position = -1\nat_step = 1\nreason = \"x\"\n",
    )
    .unwrap();
    let s = ChunkOrder::load(&p).unwrap_err().to_string();
    assert!(
        s.contains("chunk_order.toml:6:") && s.contains("field `deferrals[0].from_position`"),
        "{s}"
    );
    fs::write(&p, "format = 1\norder = [0]\nextra = 1\n").unwrap();
    let s = ChunkOrder::load(&p).unwrap_err().to_string();
    assert!(
        s.contains("chunk_order.toml:3:") && s.contains("extra"),
        "{s}"
    );
}
