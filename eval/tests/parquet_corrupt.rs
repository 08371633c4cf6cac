//! Corrupt parquet files are errors that name the file, never a crash: every third byte of a real
//! fixture file (the Hub-schema HellaSwag rows) set in turn to 0x00 and to 0xff. Some of these
//! make the `parquet` crate panic inside its readers (33 of 27,166 when every byte is tried); k2
//! reports them as corrupt files. Data bytes changed inside a page mostly read as other text:
//! parquet pages carry no checksum here, which is why downloads are verified by sha256.

use std::path::PathBuf;

use k2_eval::dataset_rows::read_rows;

#[test]
fn every_single_byte_corruption_is_an_error_or_the_same_rows() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/datasets/Rowan/hellaswag/default/train/0000.parquet");
    let good = std::fs::read(&src).unwrap();
    let rows = read_rows(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0000.parquet");
    let (mut errors, mut caught) = (0, 0);
    for i in (0..good.len()).step_by(3) {
        for b in [0x00u8, 0xff] {
            if good[i] == b {
                continue;
            }
            let mut bytes = good.clone();
            bytes[i] = b;
            std::fs::write(&path, &bytes).unwrap();
            match read_rows(&path) {
                Ok(r) => assert_eq!(r.len(), rows.len(), "byte {i} = {b:#x}: rows lost silently"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("0000.parquet"), "byte {i} = {b:#x}: {msg}");
                    errors += 1;
                    caught += msg.contains("corrupt (") as usize;
                }
            }
        }
    }
    println!("{errors} errors, {caught} of them panics inside the parquet crate");
    assert!(
        errors > 0 && caught > 0,
        "{errors} errors, {caught} panics caught"
    );
}
