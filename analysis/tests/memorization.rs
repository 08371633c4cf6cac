//! The report's memorization heat maps from constructed `<run>/memorization/<ckpt>.json` files:
//! every cell equals the file's value, columns follow the training order, trained cells are
//! framed, spike checkpoints are labelled, and the PNG + SVG are written.

use std::path::Path;

use k2_analysis::memorization::{
    memorization_heatmap, memorization_section, memorization_table, read_memorization, MemMetric,
};
use serde_json::json;

/// A file as `k2 analyze memorization` writes it (chunk order 1, 0, 2: chunk 1 is trained first).
fn write_file(
    run: &Path,
    name: &str,
    status: &str,
    step: u64,
    values: &[(f64, f64)],
    trained: &[&str],
) {
    let order = [1u32, 0, 2];
    let chunks: Vec<_> = order
        .iter()
        .enumerate()
        .map(|(pos, &chunk)| {
            let at = trained.get(pos).copied().filter(|s| !s.is_empty());
            json!({
                "chunk": chunk, "position": pos, "stage": 0,
                "trained": at.is_some(), "trained_at": at,
                "n": 4, "exact_match": values[pos].0, "token_match": values[pos].1,
                "sample_indices": [0, 1, 2, 3], "matched_tokens": [0, 0, 0, 0]
            })
        })
        .collect();
    let f = json!({
        "format": 1, "run": "r", "checkpoint": name, "status": status, "step": step,
        "tokens": step * 100, "chunks_in_interval": [], "weights_sha256": "0".repeat(64),
        "data_index_sha256": "1".repeat(64),
        "settings": {"samples_per_chunk": 4, "prompt_len": 32, "continuation_len": 32, "seed": 42},
        "tie_break": "argmax, lowest token id wins ties", "chunks": chunks
    });
    let dir = run.join("memorization");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), f.to_string()).unwrap();
}

#[test]
fn memorization_heatmap_cells_equal_the_files_and_figures_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path();
    write_file(
        run,
        "ckpt_0002",
        "ok",
        20,
        &[(0.5, 0.75), (0.0, 0.25), (0.0, 0.125)],
        &["ckpt_0001", "ckpt_0002", ""],
    );
    write_file(
        run,
        "ckpt_0001",
        "ok",
        10,
        &[(0.25, 0.5), (0.0, 0.0), (0.0, 0.0625)],
        &["ckpt_0001", "", ""],
    );
    write_file(
        run,
        "spike_ckpt_0002",
        "spike",
        20,
        &[(0.0, 0.1), (0.0, 0.2), (0.0, 0.3)],
        &["ckpt_0001", "spike_ckpt_0002", ""],
    );

    let files = read_memorization(run).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.checkpoint.as_str()).collect();
    assert_eq!(names, ["ckpt_0001", "ckpt_0002", "spike_ckpt_0002"]);

    let hm = memorization_heatmap(&files, MemMetric::TokenMatch, "t".into());
    assert_eq!(
        hm.cols,
        [
            "chunk 1 (stage 1)",
            "chunk 0 (stage 1)",
            "chunk 2 (stage 1)"
        ]
    );
    assert!(
        hm.rows[2].starts_with("spike_ckpt_0002 (spike) · "),
        "{:?}",
        hm.rows
    );
    assert_eq!(
        hm.values,
        vec![
            vec![Some(0.5), Some(0.0), Some(0.0625)],
            vec![Some(0.75), Some(0.25), Some(0.125)],
            vec![Some(0.1), Some(0.2), Some(0.3)],
        ]
    );
    assert_eq!(hm.outlined, vec![(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]);
    assert_eq!((hm.vmin, hm.vmax), (0.0, 0.75));
    let ex = memorization_heatmap(&files, MemMetric::ExactMatch, "e".into());
    assert_eq!(ex.values[0], vec![Some(0.25), Some(0.0), Some(0.0)]);
    assert_eq!((ex.vmin, ex.vmax), (0.0, 0.5));

    // ckpt_0002: just trained = chunk 0 (0.0 / 0.25), earlier = chunk 1, not trained = chunk 2
    let table = memorization_table(&files);
    let line = table.lines().find(|l| l.contains("| ckpt_0002")).unwrap();
    assert!(
        line.contains("0.000 / 0.250 (1)")
            && line.contains("0.500 / 0.750 (1)")
            && line.contains("0.000 / 0.125 (1)"),
        "{line}"
    );

    let figs = tmp.path().join("figures");
    std::fs::create_dir_all(&figs).unwrap();
    let (md, written) = memorization_section(run, &figs, "r").unwrap().unwrap();
    assert!(md.contains("figures/memorization_token_match.png"), "{md}");
    assert_eq!(written.len(), 4);
    for p in written {
        assert!(
            std::fs::metadata(&p).unwrap().len() > 1000,
            "{}",
            p.display()
        );
    }
}

#[test]
fn memorization_reader_names_bad_files_and_tolerates_none() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(read_memorization(tmp.path()).unwrap().is_empty());
    assert!(memorization_section(tmp.path(), tmp.path(), "r")
        .unwrap()
        .is_none());
    write_file(
        tmp.path(),
        "ckpt_0001",
        "ok",
        10,
        &[(1.5, 0.5), (0.0, 0.0), (0.0, 0.0)],
        &["", "", ""],
    );
    let e = read_memorization(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("ckpt_0001.json") && e.contains("exact_match 1.5"),
        "{e}"
    );
    std::fs::write(tmp.path().join("memorization/ckpt_0001.json"), "{}").unwrap();
    let e = read_memorization(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("ckpt_0001.json") && e.contains("not a memorization file"),
        "{e}"
    );
}
