//! The prompt gallery of a run, read back: each prompt's continuation at every checkpoint
//! (`<run>/gallery/<checkpoint>/k2_gallery.samples.jsonl`, written by `k2 analyze gallery`),
//! as terminal text and as the report's section, spike checkpoints marked.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use k2_archive::{CheckpointStatus, Manifest, RunLayout};

use crate::samples::read_samples;

/// The gallery's task name (its files' stem); the same as `k2_eval::tasks::gallery::GALLERY_TASK`,
/// which this crate does not depend on.
pub const GALLERY_TASK: &str = "k2_gallery";

/// One prompt of the gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryPrompt {
    pub id: String,
    pub text: String,
}

/// One checkpoint's continuations, in prompt order (`None`: not generated for this prompt).
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryRow {
    pub checkpoint: String,
    pub step: u64,
    pub tokens: u64,
    pub spike: bool,
    pub texts: Vec<Option<String>>,
}

/// A run's gallery.
#[derive(Debug, Clone, PartialEq)]
pub struct Gallery {
    pub prompts: Vec<GalleryPrompt>,
    pub rows: Vec<GalleryRow>,
}

/// The gallery of `run`: its `ok` and `spike` checkpoints that have one, in step order (a spike
/// checkpoint after the `ok` one of its step). None when no checkpoint has one. Prompts are
/// listed in the order the latest checkpoint's file has them, then any only older files have.
pub fn load_gallery(run: &Path) -> Result<Option<Gallery>> {
    let layout = RunLayout::new(run);
    let manifest = Manifest::load(&layout.manifest_path())
        .with_context(|| format!("reading the manifest of {}", run.display()))?;
    let mut ckpts: Vec<_> = manifest
        .checkpoints
        .iter()
        .filter(|c| matches!(c.status, CheckpointStatus::Ok | CheckpointStatus::Spike))
        .collect();
    ckpts.sort_by_key(|c| (c.step, c.status == CheckpointStatus::Spike));
    let mut read = Vec::new();
    for c in ckpts {
        let path = run
            .join("gallery")
            .join(&c.name)
            .join(format!("{GALLERY_TASK}.samples.jsonl"));
        // The results file marks a finished checkpoint; samples without it are a write cut off.
        if !path.with_file_name(format!("{GALLERY_TASK}.json")).exists() {
            continue;
        }
        read.push((c, read_samples(&path)?));
    }
    if read.is_empty() {
        return Ok(None);
    }
    let mut prompts: Vec<GalleryPrompt> = Vec::new();
    for (_, samples) in read.iter().rev() {
        for s in samples {
            if !prompts.iter().any(|p| p.id == s.target) {
                prompts.push(GalleryPrompt {
                    id: s.target.clone(),
                    text: s.prompt.clone(),
                });
            }
        }
    }
    let rows = read
        .iter()
        .map(|(c, samples)| GalleryRow {
            checkpoint: c.name.clone(),
            step: c.step,
            tokens: c.tokens,
            spike: c.status == CheckpointStatus::Spike,
            texts: prompts
                .iter()
                .map(|p| {
                    samples
                        .iter()
                        .find(|s| s.target == p.id && s.prompt == p.text)
                        .map(|s| s.prediction.clone())
                })
                .collect(),
        })
        .collect();
    Ok(Some(Gallery { prompts, rows }))
}

/// One line: newlines shown as `⏎`, tabs as spaces, at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let one: String = s.replace('\n', "⏎").replace('\t', " ");
    if one.chars().count() > max {
        format!("{}…", one.chars().take(max).collect::<String>())
    } else {
        one
    }
}

/// Markdown-safe text for a table cell: pipes, backslashes, emphasis and HTML characters escaped.
fn md_cell(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            _ => out.push(c),
        }
    }
    out
}

/// The gallery as terminal text: per prompt, one line per checkpoint.
pub fn gallery_text(g: &Gallery) -> String {
    let width = g
        .rows
        .iter()
        .map(|r| r.checkpoint.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let mut s = String::new();
    for (i, p) in g.prompts.iter().enumerate() {
        let _ = writeln!(s, "[{}] {}", p.id, one_line(&p.text, 100));
        for r in &g.rows {
            let text = r.texts[i]
                .as_deref()
                .map_or("-".to_string(), |t| one_line(t, 100));
            let mark = if r.spike { "  (spike)" } else { "" };
            let _ = writeln!(s, "  {:<width$}  {text}{mark}", r.checkpoint);
        }
        s.push('\n');
    }
    s
}

/// The report's gallery section.
pub fn gallery_section(g: &Gallery) -> String {
    let mut s = String::from("## Prompt gallery\n\n");
    let _ = writeln!(
        s,
        "As in K2's Prompt Gallery: every checkpoint continues the same prompts greedily (argmax, \
         KV cache), stopping at the prompt's stop string, EOS or its token limit. Newlines are \
         shown as ⏎; **spike** marks a checkpoint saved at a loss spike and rolled back (off the \
         lineage). Written by `k2 analyze gallery` to `gallery/<checkpoint>/{GALLERY_TASK}.samples.jsonl`.\n"
    );
    for (i, p) in g.prompts.iter().enumerate() {
        let _ = writeln!(
            s,
            "**`{}`**: {}\n",
            p.id.replace('`', "'"),
            md_cell(&one_line(&p.text, 200))
        );
        s.push_str("| checkpoint | tokens | continuation |\n|---|---:|---|\n");
        for r in &g.rows {
            let name = if r.spike {
                format!("{} **spike**", md_cell(&r.checkpoint))
            } else {
                md_cell(&r.checkpoint)
            };
            let text = r.texts[i]
                .as_deref()
                .map_or("-".to_string(), |t| md_cell(&one_line(t, 200)));
            let _ = writeln!(s, "| {name} | {} | {text} |", r.tokens);
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_one_line_and_escaped() {
        assert_eq!(one_line("a\nb\tc", 10), "a⏎b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(md_cell("a|b <c> *d*"), "a\\|b &lt;c&gt; \\*d\\*");
    }

    #[test]
    fn sections_mark_spikes_and_missing_generations() {
        let g = Gallery {
            prompts: vec![
                GalleryPrompt {
                    id: "story".into(),
                    text: "Once".into(),
                },
                GalleryPrompt {
                    id: "new".into(),
                    text: "x".into(),
                },
            ],
            rows: vec![
                GalleryRow {
                    checkpoint: "ckpt_0001".into(),
                    step: 1,
                    tokens: 10,
                    spike: false,
                    texts: vec![Some(" upon\na time".into()), None],
                },
                GalleryRow {
                    checkpoint: "spike_ckpt_0002".into(),
                    step: 2,
                    tokens: 20,
                    spike: true,
                    texts: vec![Some("| | |".into()), Some("y".into())],
                },
            ],
        };
        let md = gallery_section(&g);
        assert!(md.contains("| ckpt\\_0001 | 10 |  upon⏎a time |"), "{md}");
        assert!(
            md.contains("| spike\\_ckpt\\_0002 **spike** | 20 | \\| \\| \\| |"),
            "{md}"
        );
        assert!(md.contains("| ckpt\\_0001 | 10 | - |"), "{md}");
        let text = gallery_text(&g);
        assert!(text.contains("[story] Once\n"), "{text}");
        assert!(text.contains("spike_ckpt_0002  | | |  (spike)"), "{text}");
    }
}
