//! The memorization section of the report: `<run>/memorization/<ckpt>.json` (written by
//! `k2 analyze memorization`) as checkpoint x chunk heat maps of the exact-match and token-match
//! rates (chunks in training order, the chunks each checkpoint was trained on framed) and a table
//! of the rates on the chunks just trained, trained earlier and not trained yet.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::heatmap::{write_heatmap, Heatmap};
use crate::tables::{fmt_tokens, simple_table};

/// The memorization file's schema, shared with its writer (`k2 analyze memorization`).
pub use k2_archive::memorization_file::{
    ChunkScore as MemChunk, MemorizationFile as MemFile, Settings as MemSettings,
};

/// Which rate a heat map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemMetric {
    ExactMatch,
    TokenMatch,
}

impl MemMetric {
    fn of(self, c: &MemChunk) -> f64 {
        match self {
            MemMetric::ExactMatch => c.exact_match,
            MemMetric::TokenMatch => c.token_match,
        }
    }

    fn name(self) -> &'static str {
        match self {
            MemMetric::ExactMatch => "exact-match rate",
            MemMetric::TokenMatch => "token-match rate",
        }
    }

    fn stem(self) -> &'static str {
        match self {
            MemMetric::ExactMatch => "memorization_exact_match",
            MemMetric::TokenMatch => "memorization_token_match",
        }
    }
}

/// `<run>/memorization`.
pub fn memorization_dir(run: &Path) -> PathBuf {
    k2_archive::RunLayout::new(run).memorization_dir()
}

/// Reads every `<run>/memorization/*.json`, in step order (a spike checkpoint after the `ok` one
/// of the same step). No directory: an empty list. Errors name the file.
pub fn read_memorization(run: &Path) -> Result<Vec<MemFile>> {
    let dir = memorization_dir(run);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let text = std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()))?;
        let f: MemFile = serde_json::from_str(&text)
            .map_err(|e| anyhow!("{}: not a memorization file: {e}", p.display()))?;
        for c in &f.chunks {
            for (field, v) in [
                ("exact_match", c.exact_match),
                ("token_match", c.token_match),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    bail!(
                        "{}: chunk {}: {field} {v} is not in 0..=1",
                        p.display(),
                        c.chunk
                    );
                }
            }
        }
        out.push(f);
    }
    out.sort_by_key(|f| (f.step, f.status == "spike"));
    Ok(out)
}

/// Checkpoint (row, training order) x chunk (column, in the order of the latest checkpoint's
/// file, i.e. training order) heat map of one rate; cells of chunks the checkpoint was trained on
/// are framed.
pub fn memorization_heatmap(files: &[MemFile], metric: MemMetric, title: String) -> Heatmap {
    let cols: Vec<&MemChunk> = files
        .last()
        .map(|f| f.chunks.iter().collect())
        .unwrap_or_default();
    let rows = files
        .iter()
        .map(|f| {
            let spike = if f.status == "ok" {
                String::new()
            } else {
                format!(" ({})", f.status)
            };
            format!("{}{spike} · {}", f.checkpoint, fmt_tokens(f.tokens))
        })
        .collect();
    let mut values = Vec::with_capacity(files.len());
    let mut outlined = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let mut row = Vec::with_capacity(cols.len());
        for (j, col) in cols.iter().enumerate() {
            let c = f.chunks.iter().find(|c| c.chunk == col.chunk);
            row.push(c.map(|c| metric.of(c)));
            if c.is_some_and(|c| c.trained) {
                outlined.push((i, j));
            }
        }
        values.push(row);
    }
    let all: Vec<f64> = values.iter().flatten().flatten().copied().collect();
    let hi = all.iter().copied().fold(0.0, f64::max);
    // 0 to the maximum rounded up to 0.05: the scale starts at "nothing reproduced"
    let vmax = ((hi / 0.05).ceil() * 0.05).clamp(0.05, 1.0);
    Heatmap {
        title,
        rows,
        cols: cols
            .iter()
            .map(|c| format!("chunk {} (stage {})", c.chunk, c.stage + 1))
            .collect(),
        values,
        vmin: 0.0,
        vmax,
        scale_label: format!("{}\n(fraction)", metric.name()),
        row_breaks: Vec::new(),
        outlined,
        outline_label: "trained on\n(chunk seen)".into(),
    }
}

/// Pooled (exact-match, token-match, chunks) over some chunks of a file; None for no chunks.
fn pooled<'a>(chunks: impl Iterator<Item = &'a MemChunk>) -> Option<(f64, f64, usize)> {
    let (mut e, mut t, mut n, mut k) = (0.0, 0.0, 0usize, 0usize);
    for c in chunks {
        e += c.exact_match * c.n as f64;
        t += c.token_match * c.n as f64;
        n += c.n;
        k += 1;
    }
    (k > 0 && n > 0).then(|| (e / n as f64, t / n as f64, k))
}

fn pooled_cell(p: Option<(f64, f64, usize)>) -> String {
    p.map_or("–".into(), |(e, t, k)| format!("{e:.3} / {t:.3} ({k})"))
}

/// Per checkpoint: exact-match / token-match rate on the chunk(s) of its own interval, on the
/// chunks trained earlier and on the chunks not trained (number of chunks in brackets).
pub fn memorization_table(files: &[MemFile]) -> String {
    let rows = files
        .iter()
        .map(|f| {
            let just = |c: &&MemChunk| c.trained_at.as_deref() == Some(f.checkpoint.as_str());
            vec![
                f.checkpoint.clone(),
                f.status.clone(),
                f.tokens.to_string(),
                pooled_cell(pooled(f.chunks.iter().filter(just))),
                pooled_cell(pooled(f.chunks.iter().filter(|c| c.trained && !just(c)))),
                pooled_cell(pooled(f.chunks.iter().filter(|c| !c.trained))),
            ]
        })
        .collect();
    simple_table(
        &[
            "checkpoint",
            "status",
            "tokens",
            "just trained",
            "trained earlier",
            "not trained",
        ],
        rows,
    )
}

/// The report's memorization section and its figures, or None when the run has no memorization
/// files.
pub fn memorization_section(
    run: &Path,
    fig_dir: &Path,
    series: &str,
) -> Result<Option<(String, Vec<PathBuf>)>> {
    let files = read_memorization(run)?;
    let Some(first) = files.first() else {
        return Ok(None);
    };
    let s = &first.settings;
    if let Some(f) = files.iter().find(|f| f.settings != *s) {
        bail!(
            "{}: measured with other settings than {} ({:?} vs {:?}); rerun `k2 analyze memorization`",
            memorization_dir(run).join(format!("{}.json", f.checkpoint)).display(),
            first.checkpoint,
            f.settings,
            s
        );
    }
    let mut md = String::new();
    let mut figures = Vec::new();
    writeln!(md, "## Memorization\n")?;
    writeln!(
        md,
        "As in LLM360's Analysis360: for {} training sequences sampled from each data chunk (`random.Random({}).sample`), the first {} tokens are the prompt and the model's greedy continuation of {} tokens (argmax, lowest token id on ties) is compared with the sequence's true next {} tokens. **Exact-match rate**: fraction of sequences whose whole continuation is reproduced; **token-match rate**: mean fraction of continuation tokens reproduced. Columns: chunks in training order (`chunk_order.toml`); rows: checkpoints in training order; red frame: the checkpoint has been trained on the chunk. Written by `k2 analyze memorization` to `memorization/<checkpoint>.json`.\n",
        s.samples_per_chunk, s.seed, s.prompt_len, s.continuation_len, s.continuation_len
    )?;
    for metric in [MemMetric::ExactMatch, MemMetric::TokenMatch] {
        let title = format!(
            "{series}: memorization, {} per checkpoint x chunk",
            metric.name()
        );
        let hm = memorization_heatmap(&files, metric, title);
        figures.extend(write_heatmap(&hm, &fig_dir.join(metric.stem()))?);
        writeln!(
            md,
            "![memorization heat map, {}](figures/{}.png)\n",
            metric.name(),
            metric.stem()
        )?;
        writeln!(
            md,
            "{}: colour scale {:.2}–{:.2}. [SVG](figures/{}.svg)\n",
            metric.name(),
            hm.vmin,
            hm.vmax,
            metric.stem()
        )?;
    }
    writeln!(md, "Exact-match / token-match rate pooled over the chunk(s) trained in the checkpoint's own interval, the chunks trained before it, and the chunks not trained yet (number of chunks in brackets):\n")?;
    writeln!(md, "{}\n", memorization_table(&files))?;
    Ok(Some((md, figures)))
}
