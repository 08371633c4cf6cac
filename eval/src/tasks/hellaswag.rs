//! HellaSwag (lm-eval `hellaswag`, version 1.0).
//!
//! lm-eval 0.4 `hellaswag.yaml`: `dataset_path: Rowan/hellaswag` (a repository with a loading
//! script: its data is read from the Hub's parquet export), validation split, few-shot from
//! `train` (neither `fewshot_split` nor `test_split` is set, so `n + 1` are drawn and equal docs
//! dropped); `utils.process_docs`: `query = preprocess(activity_label + ": " + ctx_a + " " +
//! ctx_b.capitalize())`, `choices = [preprocess(e) for e in endings]`, gold = `int(label)`, where
//! `preprocess` = strip; `" [title]"` → `". "`; `re.sub(r"\[.*?\]", "")`; `"  "` → `" "`.
//! Metrics acc + acc_norm.

use crate::data;
use crate::datasets::{Dataset, Load, SplitRows};
use crate::error::Result;
use crate::fewshot::{McDoc, McTask};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str =
    "lm-eval hellaswag v1.0: preprocess(label: ctx_a Ctx_b) + ' '+preprocess(ending)";
pub const DATASET: Dataset = Dataset::new("Rowan/hellaswag", None);

/// Python's `str.capitalize()`: first character upper-cased, the rest lower-cased.
pub fn py_capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            // Python uses the title case of the first character; for the text here (ASCII
            // and Latin letters) that equals the upper case.
            let mut out: String = first.to_uppercase().collect();
            for c in chars {
                out.extend(c.to_lowercase());
            }
            out
        }
    }
}

/// lm-eval's hellaswag `preprocess`.
pub fn preprocess(text: &str) -> String {
    let text = text.trim_matches(|c: char| c.is_whitespace());
    let text = text.replace(" [title]", ". ");
    // re.sub("\\[.*?\\]", "", text): non-greedy, `.` does not match "\n".
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']');
        let newline = after.find('\n');
        match close {
            Some(c) if newline.is_none_or(|n| n > c) => {
                out.push_str(&rest[..open]);
                rest = &after[c + 1..];
            }
            _ => {
                // No match starting at this '['; keep it and continue after it.
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("  ", " ")
}

#[derive(Debug)]
pub struct Hellaswag(pub McTask);

fn docs(rows: &SplitRows) -> Result<Vec<McDoc>> {
    rows.iter()
        .map(|(path, line, v)| {
            let label = data::get_str(path, line, v, "activity_label")?;
            let ctx_a = data::get_str(path, line, v, "ctx_a")?;
            let ctx_b = data::get_str(path, line, v, "ctx_b")?;
            let endings = data::get_str_list(path, line, v, "endings")?;
            if endings.is_empty() {
                return Err(data::err(path, line, "no endings"));
            }
            let gold = data::get_index(path, line, v, "label", endings.len())?;
            Ok(McDoc {
                text: preprocess(&format!("{label}: {ctx_a} {}", py_capitalize(&ctx_b))),
                choices: endings.iter().map(|e| preprocess(e)).collect(),
                gold,
            })
        })
        .collect()
}

impl Hellaswag {
    pub fn load(load: &Load) -> Result<Self> {
        let eval = load.split(&DATASET, "validation")?;
        let train = load.fewshot_split(&DATASET, "train")?;
        McTask::from_splits(
            "hellaswag",
            VERSION,
            &eval,
            train.as_ref(),
            docs,
            true,
            FORMAT_ID,
            true,
        )
        .map(Hellaswag)
    }
}

crate::delegate_mc_task!(Hellaswag);
