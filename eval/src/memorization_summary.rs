//! Plain-text tables of a run's memorization files for the terminal: per checkpoint, the rates on
//! the chunk(s) just trained, on chunks trained earlier and on chunks not trained yet; and the
//! checkpoint x chunk grid of one rate.

use std::path::Path;

use crate::error::{EvalError, Result};
use crate::memorization::{ChunkScore, MemorizationFile};

/// Reads one memorization file; errors name it.
pub fn read_memorization_file(path: &Path) -> Result<MemorizationFile> {
    let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
    serde_json::from_str(&text).map_err(|e| EvalError::Data {
        path: path.to_path_buf(),
        line: e.line(),
        message: e.to_string(),
    })
}

/// Pooled rates of a group of chunks (each sequence weighs the same).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GroupRates {
    pub chunks: usize,
    pub n: usize,
    pub exact_match: f64,
    pub token_match: f64,
}

impl GroupRates {
    pub fn of<'a>(chunks: impl IntoIterator<Item = &'a ChunkScore>) -> Self {
        let mut g = GroupRates::default();
        for c in chunks {
            g.chunks += 1;
            g.n += c.n;
            g.exact_match += c.exact_match * c.n as f64;
            g.token_match += c.token_match * c.n as f64;
        }
        if g.n > 0 {
            g.exact_match /= g.n as f64;
            g.token_match /= g.n as f64;
        }
        g
    }
}

/// A checkpoint's chunks in three groups: trained in its own interval, trained earlier, not
/// trained (yet, or rolled back).
pub fn groups(f: &MemorizationFile) -> [GroupRates; 3] {
    let just = |c: &&ChunkScore| c.trained_at.as_deref() == Some(f.checkpoint.as_str());
    [
        GroupRates::of(f.chunks.iter().filter(just)),
        GroupRates::of(f.chunks.iter().filter(|c| c.trained && !just(c))),
        GroupRates::of(f.chunks.iter().filter(|c| !c.trained)),
    ]
}

fn cell(g: &GroupRates) -> String {
    if g.chunks == 0 {
        "-".into()
    } else {
        format!("{:.3} / {:.3}", g.exact_match, g.token_match)
    }
}

/// One line per checkpoint: exact-match / token-match rate on the chunks just trained, trained
/// earlier and not trained.
pub fn summary_table(files: &[MemorizationFile]) -> String {
    let w = files
        .iter()
        .map(|f| f.checkpoint.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let mut s = format!(
        "{:<w$} {:>8} {:>15} {:>15} {:>15}\n",
        "checkpoint", "status", "just trained", "trained before", "not trained"
    );
    for f in files {
        let [a, b, c] = groups(f);
        s.push_str(&format!(
            "{:<w$} {:>8} {:>15} {:>15} {:>15}\n",
            f.checkpoint,
            f.status,
            cell(&a),
            cell(&b),
            cell(&c)
        ));
    }
    s
}

/// Checkpoint x chunk grid of the token-match rate (`exact = false`) or the exact-match rate, in
/// percent; chunks in training order (`c<id>`), `*` after a chunk the checkpoint was trained on.
pub fn grid(files: &[MemorizationFile], exact: bool) -> String {
    let w = files
        .iter()
        .map(|f| f.checkpoint.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let Some(first) = files.first() else {
        return String::new();
    };
    let mut s = format!("{:<w$}", "checkpoint");
    for c in &first.chunks {
        s.push_str(&format!(" {:>4}", format!("c{}", c.chunk)));
    }
    s.push('\n');
    for f in files {
        s.push_str(&format!("{:<w$}", f.checkpoint));
        for c in &f.chunks {
            let v = 100.0 * if exact { c.exact_match } else { c.token_match };
            let mark = if c.trained { "*" } else { " " };
            s.push_str(&format!(" {:>3.0}{mark}", v));
        }
        s.push('\n');
    }
    s
}
