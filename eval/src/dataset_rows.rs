//! The rows of a dataset's data files as JSON objects, whatever the file's format: parquet (the
//! Hub's format; read with arrow-rs's `parquet` record API, snappy and zstd pages), JSON Lines,
//! or a JSON array. Errors name the file and the 1-based row (the line, for JSON Lines).

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::data;
use crate::error::{io_err, Result};

/// One row and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The 1-based row of its file (the line, in JSON Lines).
    pub line: usize,
    pub value: Value,
}

/// The rows of one data file, by its extension.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let name = path.to_string_lossy();
    if name.ends_with(".parquet") {
        parquet_rows(path)
    } else if name.ends_with(".jsonl") {
        let text = data::read_string(path)?;
        Ok(data::jsonl(path, &text)?
            .into_iter()
            .map(|(line, value)| Row { line, value })
            .collect())
    } else if name.ends_with(".json") {
        json_rows(path)
    } else if name.ends_with(".csv") {
        csv_rows(path)
    } else {
        Err(data::err(
            path,
            0,
            "not a data file k2 reads (.parquet, .jsonl, .json or .csv)",
        ))
    }
}

/// A CSV file with a header, each column typed as pandas' `read_csv` (what `datasets` uses)
/// infers it: integers if every value is one, else floats if every value is a number, else
/// strings; an empty field is null.
fn csv_rows(path: &Path) -> Result<Vec<Row>> {
    let bytes = data::read(path)?;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| data::err(path, 1, format!("invalid CSV header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut records: Vec<Vec<String>> = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| data::err(path, i + 2, format!("invalid CSV: {e}")))?;
        records.push(rec.iter().map(str::to_string).collect());
    }
    let kinds: Vec<u8> = (0..header.len())
        .map(|c| {
            let vals = records
                .iter()
                .filter_map(|r| r.get(c))
                .filter(|v| !v.is_empty());
            let (mut int, mut num) = (true, true);
            for v in vals {
                int &= v.parse::<i64>().is_ok();
                num &= v.parse::<f64>().is_ok();
            }
            if int {
                0
            } else if num {
                1
            } else {
                2
            }
        })
        .collect();
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(i, rec)| {
            let mut m = serde_json::Map::new();
            for (c, name) in header.iter().enumerate() {
                let v = rec.get(c).map(String::as_str).unwrap_or("");
                let value = if v.is_empty() {
                    Value::Null
                } else {
                    match kinds[c] {
                        0 => v.parse::<i64>().map(Value::from).unwrap_or(Value::Null),
                        1 => v
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or(Value::Null, Value::Number),
                        _ => Value::String(v.to_string()),
                    }
                };
                m.insert(name.clone(), value);
            }
            Row {
                line: i + 2,
                value: Value::Object(m),
            }
        })
        .collect())
}

fn json_rows(path: &Path) -> Result<Vec<Row>> {
    let text = data::read_string(path)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| data::err(path, e.line(), format!("invalid JSON: {e}")))?;
    let Value::Array(items) = v else {
        // Some datasets store JSON Lines under `.json`.
        return Ok(data::jsonl(path, &text)?
            .into_iter()
            .map(|(line, value)| Row { line, value })
            .collect());
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            if value.is_object() {
                Ok(Row { line: i + 1, value })
            } else {
                Err(data::err(path, i + 1, "expected a JSON object"))
            }
        })
        .collect()
}

thread_local! {
    /// Set while this thread reads a parquet file: a panic inside the `parquet` crate is then an
    /// error about the file, not a message on stderr.
    static READING_PARQUET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The panic hook in place before ours, which prints every panic but the parquet reader's.
fn quiet_parquet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !READING_PARQUET.with(|r| r.get()) {
                previous(info);
            }
        }));
    });
}

/// Reads a parquet file's rows. The `parquet` crate panics on some corrupt files (out-of-range
/// slices in its bit readers, negative column offsets in a footer; found by the fuzz test): such a
/// panic is caught and reported as a corrupt file, naming it.
fn parquet_rows(path: &Path) -> Result<Vec<Row>> {
    quiet_parquet_panics();
    READING_PARQUET.with(|r| r.set(true));
    let got = std::panic::catch_unwind(|| parquet_rows_unguarded(path));
    READING_PARQUET.with(|r| r.set(false));
    got.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(data::err(
            path,
            0,
            format!("not a readable parquet file: corrupt ({why})"),
        ))
    })
}

fn parquet_rows_unguarded(path: &Path) -> Result<Vec<Row>> {
    let bad = |row: usize, e: parquet::errors::ParquetError| {
        data::err(path, row, format!("not a readable parquet file: {e}"))
    };
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(0, e))?;
    let expected = reader.metadata().file_metadata().num_rows().max(0) as usize;
    let mut out = Vec::with_capacity(expected);
    for (i, row) in reader.into_iter().enumerate() {
        let row = row.map_err(|e| bad(i + 1, e))?;
        out.push(Row {
            line: i + 1,
            value: row.to_json_value(),
        });
    }
    if out.len() != expected {
        return Err(data::err(
            path,
            out.len(),
            format!(
                "the footer lists {expected} rows, the pages hold {}",
                out.len()
            ),
        ));
    }
    Ok(out)
}
