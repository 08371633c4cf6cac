//! Reading task data files: JSONL / text with errors that name the file and 1-based line, and the
//! typed field accessors the task loaders share.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{io_err, EvalError, Result};

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(io_err(path))
}

pub fn read_string(path: &Path) -> Result<String> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|e| EvalError::Data {
        path: path.to_path_buf(),
        line: 0,
        message: format!("not UTF-8: {e}"),
    })
}

pub fn err(path: &Path, line: usize, message: impl Into<String>) -> EvalError {
    EvalError::Data {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Parse a JSONL file into (1-based line number, object) pairs, skipping blank lines.
pub fn jsonl(path: &Path, text: &str) -> Result<Vec<(usize, Value)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| err(path, i + 1, format!("invalid JSON: {e}")))?;
        if !v.is_object() {
            return Err(err(path, i + 1, "expected a JSON object"));
        }
        out.push((i + 1, v));
    }
    Ok(out)
}

pub fn get_str(path: &Path, line: usize, v: &Value, field: &str) -> Result<String> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(err(path, line, format!("field `{field}` is not a string"))),
        None => Err(err(path, line, format!("missing field `{field}`"))),
    }
}

pub fn get_str_list(path: &Path, line: usize, v: &Value, field: &str) -> Result<Vec<String>> {
    match v.get(field) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    err(
                        path,
                        line,
                        format!("field `{field}` has a non-string element"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(err(path, line, format!("field `{field}` is not a list"))),
        None => Err(err(path, line, format!("missing field `{field}`"))),
    }
}

/// A gold index field, checked against the number of choices.
pub fn get_gold(path: &Path, line: usize, v: &Value, field: &str, n: usize) -> Result<usize> {
    let g = match v.get(field) {
        Some(x) => x.as_u64().ok_or_else(|| {
            err(
                path,
                line,
                format!("field `{field}` is not a non-negative integer"),
            )
        })?,
        None => return Err(err(path, line, format!("missing field `{field}`"))),
    };
    check_gold(path, line, g as usize, n)
}

pub fn check_gold(path: &Path, line: usize, g: usize, n: usize) -> Result<usize> {
    if g >= n {
        return Err(err(
            path,
            line,
            format!("gold {g} out of range for {n} choices"),
        ));
    }
    Ok(g)
}

/// Read a JSONL file into records: blank lines are skipped, and a malformed line is an
/// [`EvalError::Data`] naming the file and the 1-based line. Returns the records and the sha256 of
/// the file's bytes.
pub fn read_jsonl_records<T: DeserializeOwned>(path: &Path) -> Result<(Vec<T>, String)> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        EvalError::Data {
            path: path.to_path_buf(),
            line,
            message: format!("invalid UTF-8: {e}"),
        }
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str(line).map_err(|e| EvalError::Data {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(rec);
    }
    Ok((out, sha))
}

/// A field of a row, any type.
pub fn get_field<'a>(path: &Path, line: usize, v: &'a Value, field: &str) -> Result<&'a Value> {
    v.get(field)
        .ok_or_else(|| err(path, line, format!("missing field `{field}`")))
}

/// An integer field; a string of digits counts (HellaSwag's `label` is `"3"`, WinoGrande's
/// `answer` is `"1"`).
pub fn get_int(path: &Path, line: usize, v: &Value, field: &str) -> Result<i64> {
    match get_field(path, line, v, field)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| err(path, line, format!("field `{field}` is not an integer"))),
        Value::String(s) => s.trim().parse().map_err(|_| {
            err(
                path,
                line,
                format!("field `{field}` is `{s}`, not an integer"),
            )
        }),
        _ => Err(err(
            path,
            line,
            format!("field `{field}` is not an integer"),
        )),
    }
}

/// An integer field used as an index into `n` choices.
pub fn get_index(path: &Path, line: usize, v: &Value, field: &str, n: usize) -> Result<usize> {
    let g = get_int(path, line, v, field)?;
    if g < 0 {
        return Err(err(
            path,
            line,
            format!("field `{field}` is negative ({g})"),
        ));
    }
    check_gold(path, line, g as usize, n)
}

/// `choices.label.index(answerKey)` (ARC, OpenBookQA): the choices' texts and the gold index.
pub fn labelled_choices(
    path: &Path,
    line: usize,
    v: &Value,
    choices_field: &str,
    key_field: &str,
) -> Result<(Vec<String>, usize)> {
    let choices = get_field(path, line, v, choices_field)?;
    let texts = get_str_list(path, line, choices, "text")
        .map_err(|e| err(path, line, format!("`{choices_field}`: {e}")))?;
    let labels = get_str_list(path, line, choices, "label")
        .map_err(|e| err(path, line, format!("`{choices_field}`: {e}")))?;
    if texts.is_empty() || texts.len() != labels.len() {
        return Err(err(
            path,
            line,
            format!(
                "`{choices_field}` has {} texts and {} labels",
                texts.len(),
                labels.len()
            ),
        ));
    }
    let key = get_str(path, line, v, key_field)?;
    let key = key.trim_start();
    let gold = labels.iter().position(|l| l == key).ok_or_else(|| {
        err(
            path,
            line,
            format!("`{key_field}` `{key}` is not among the labels {labels:?}"),
        )
    })?;
    Ok((texts, gold))
}
