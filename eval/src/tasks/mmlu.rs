//! MMLU (lm-eval `mmlu_<subject>`, version 1.0; group `mmlu` aggregated weight_by_size).
//!
//! lm-eval (tasks/mmlu/default/_default_template_yaml): test split, few-shot = dev split with
//! `first_n`, description "The following are multiple choice questions (with answers) about
//! <subject with _ → space>.\n\n", `doc_to_text: "{{question.strip()}}\nA. {{choices[0]}}\nB.
//! {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"`, choices ["A","B","C","D"],
//! acc only. Data: Hendrycks' headerless CSVs `mmlu/{test,dev}/<subject>_{test,dev}.csv`
//! (question, A, B, C, D, answer letter; RFC 4180 quoting; record-ending CRLF is dropped,
//! quoted newlines are kept, as Python's csv module does).

use std::path::Path;

use crate::data;
use crate::error::{io_err, Result};
use crate::fewshot::{sha256_hex, FewshotSource, McDoc, McTask};

pub const VERSION: f64 = 1.0;
pub const FORMAT_ID: &str =
    "lm-eval mmlu v1.0: desc + {q.strip()}\\nA. ..\\nD. ..\\nAnswer: + ' '+letter; dev first_n";

/// One CSV record with the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Parse RFC 4180 CSV (`"` quoting, `""` escapes, quoted commas/newlines). A record ends at an
/// unquoted `\n` (a preceding `\r` is dropped). Blank lines are skipped.
pub fn parse_csv(path: &Path, text: &str) -> Result<Vec<CsvRecord>> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut in_quotes = false;
    let mut field_started_quoted = false;
    let mut chars = text.chars().peekable();
    let mut record_empty = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        in_quotes = false;
                    }
                }
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !field_started_quoted => {
                in_quotes = true;
                field_started_quoted = true;
                record_empty = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                field_started_quoted = false;
                record_empty = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if !record_empty || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    out.push(CsvRecord {
                        line: start_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                field_started_quoted = false;
                record_empty = true;
                line += 1;
                start_line = line;
            }
            _ => {
                field.push(c);
                record_empty = false;
            }
        }
    }
    if in_quotes {
        return Err(data::err(path, start_line, "unterminated quoted field"));
    }
    if !record_empty || !field.is_empty() {
        fields.push(field);
        out.push(CsvRecord {
            line: start_line,
            fields,
        });
    }
    Ok(out)
}

/// The 57 subjects: the `<subject>_test.csv` files under `data_root/mmlu/test`, sorted.
pub fn mmlu_subjects(data_root: &Path) -> Result<Vec<String>> {
    let dir = data_root.join("mmlu/test");
    let mut v = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
        let e = e.map_err(io_err(&dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(s) = name.strip_suffix("_test.csv") {
            v.push(s.to_string());
        }
    }
    v.sort();
    Ok(v)
}

fn read_split(path: &Path) -> Result<(Vec<McDoc>, String)> {
    let text = data::read_string(path)?;
    let mut docs = Vec::new();
    for rec in parse_csv(path, &text)? {
        if rec.fields.len() != 6 {
            return Err(data::err(
                path,
                rec.line,
                format!(
                    "expected 6 fields (question,A,B,C,D,answer), got {}",
                    rec.fields.len()
                ),
            ));
        }
        let ans = rec.fields[5].trim();
        let gold = match ans {
            "A" => 0,
            "B" => 1,
            "C" => 2,
            "D" => 3,
            _ => {
                return Err(data::err(
                    path,
                    rec.line,
                    format!("answer `{ans}` is not one of A, B, C, D"),
                ))
            }
        };
        let f = &rec.fields;
        docs.push(McDoc {
            text: format!(
                "{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:",
                f[0].trim_matches(|c: char| c.is_whitespace()),
                f[1],
                f[2],
                f[3],
                f[4]
            ),
            choices: ["A", "B", "C", "D"].map(String::from).to_vec(),
            gold,
        });
    }
    Ok((docs, sha256_hex(text.as_bytes())))
}

/// lm-eval's MMLU description for a subject.
pub fn description(subject: &str) -> String {
    format!(
        "The following are multiple choice questions (with answers) about {}.\n\n",
        subject.replace('_', " ")
    )
}

#[derive(Debug)]
pub struct Mmlu(pub McTask);

impl Mmlu {
    /// Loads `mmlu_<subject>` from `data_root/mmlu/test/<subject>_test.csv` (eval) and
    /// `data_root/mmlu/dev/<subject>_dev.csv` (few-shot, first_n).
    pub fn load(data_root: &Path, subject: &str) -> Result<Self> {
        let tpath = data_root.join(format!("mmlu/test/{subject}_test.csv"));
        let dpath = data_root.join(format!("mmlu/dev/{subject}_dev.csv"));
        let (docs, th) = read_split(&tpath)?;
        let (dev, dh) = read_split(&dpath)?;
        let name = format!("mmlu_{subject}");
        let fp = format!("{name}|test:{th}|dev:{dh}|v{VERSION}|{FORMAT_ID}");
        Ok(Mmlu(McTask::new(
            name,
            VERSION,
            docs,
            description(subject),
            FewshotSource::FirstN(dev),
            false,
            fp,
            0,
        )))
    }

    /// All 57 subject tasks, in subject order.
    pub fn load_all(data_root: &Path) -> Result<Vec<Mmlu>> {
        mmlu_subjects(data_root)?
            .iter()
            .map(|s| Mmlu::load(data_root, s))
            .collect()
    }
}

crate::delegate_mc_task!(Mmlu);
