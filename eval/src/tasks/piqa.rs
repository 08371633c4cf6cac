//! PIQA (lm-eval `piqa`, version 1.0): `"Question: {{goal}}\nAnswer:"`, choices [sol1, sol2],
//! gold = label, acc + acc_norm, validation split.
//! Data: the raw `piqa/valid.jsonl` + line-aligned `piqa/valid-labels.lst`.
//! Few-shot: lm-eval's pool is the train split (not available offline); the eval split is used
//! (draw n+1, drop docs equal to the evaluated one — PIQA docs have no id, so equality is by content).

use std::path::Path;

use crate::data;
use crate::error::Result;
use crate::fewshot::{sha256_hex, McDoc, McTask};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str = "lm-eval piqa v1.0: Question: {goal}\\nAnswer: + ' '+sol";

#[derive(Debug)]
pub struct Piqa(pub McTask);

impl Piqa {
    /// Loads `data_root/piqa/valid.jsonl` and `data_root/piqa/valid-labels.lst`.
    pub fn load(data_root: &Path) -> Result<Self> {
        let path = data_root.join("piqa/valid.jsonl");
        let lpath = data_root.join("piqa/valid-labels.lst");
        let text = data::read_string(&path)?;
        let ltext = data::read_string(&lpath)?;
        let labels: Vec<&str> = ltext.lines().collect();
        let rows = data::jsonl(&path, &text)?;
        if rows.len() != labels.iter().filter(|l| !l.trim().is_empty()).count() {
            return Err(data::err(
                &lpath,
                labels.len(),
                format!(
                    "{} labels for {} rows of {}",
                    labels.len(),
                    rows.len(),
                    path.display()
                ),
            ));
        }
        let mut docs = Vec::new();
        for (line, v) in rows {
            let goal = data::get_str(&path, line, &v, "goal")?;
            let sol1 = data::get_str(&path, line, &v, "sol1")?;
            let sol2 = data::get_str(&path, line, &v, "sol2")?;
            let lab = labels.get(line - 1).map(|s| s.trim()).unwrap_or("");
            let gold: usize = lab
                .parse()
                .map_err(|_| data::err(&lpath, line, format!("bad label `{lab}`")))?;
            let gold = data::check_gold(&lpath, line, gold, 2)?;
            docs.push(McDoc {
                text: format!("Question: {goal}\nAnswer:"),
                choices: vec![sol1, sol2],
                gold,
            });
        }
        Ok(Piqa(McTask::from_eval_split(
            "piqa",
            VERSION,
            docs,
            &format!(
                "data:{}|labels:{}",
                sha256_hex(text.as_bytes()),
                sha256_hex(ltext.as_bytes())
            ),
            FORMAT_ID,
            true,
            true,
        )))
    }
}

crate::delegate_mc_task!(Piqa);
