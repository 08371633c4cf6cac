//! Reading one lm-eval task YAML as lm-eval's loader does (`tasks/_yaml_loader.py`): the file's
//! mapping, with each `include:` (a path or a list, relative to the including file) loaded first
//! and the file's own keys winning; `task_list` is not inherited; an include cycle is an error.
//! A `!function module.name` tag becomes `{"!function": "module.name"}`, so a task that needs a
//! Python hook can be named and refused rather than silently changed.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{EvalError, Result};

/// The key a `!function` tag becomes.
pub const FUNCTION_KEY: &str = "!function";

fn err(path: &Path, field: Option<&str>, message: impl Into<String>) -> EvalError {
    EvalError::TaskYaml {
        path: path.to_path_buf(),
        field: field.map(str::to_string),
        message: message.into(),
    }
}

/// The hook a value names, if it is a `!function` tag.
pub fn function_of(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get(FUNCTION_KEY).and_then(Value::as_str),
        _ => None,
    }
}

/// Every `!function` hook in a config: (the field it sits under, the hook).
pub fn hooks(cfg: &Map<String, Value>) -> Vec<(String, String)> {
    fn walk(field: &str, v: &Value, out: &mut Vec<(String, String)>) {
        if let Some(f) = function_of(v) {
            out.push((field.to_string(), f.to_string()));
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(&format!("{field}.{k}"), x, out);
                }
            }
            Value::Array(xs) => {
                for x in xs {
                    walk(field, x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in cfg {
        walk(k, v, &mut out);
    }
    out
}

fn to_json(path: &Path, v: serde_norway::Value) -> Result<Value> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(xs) => Value::Array(
            xs.into_iter()
                .map(|x| to_json(path, x))
                .collect::<Result<_>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(true) => "True".into(),
                    Y::Bool(false) => "False".into(),
                    Y::Null => "None".into(),
                    _ => return Err(err(path, None, "a mapping key that is not a scalar")),
                };
                out.insert(key, to_json(path, v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            if tag == "!function" {
                let name = match t.value {
                    Y::String(s) => s,
                    _ => return Err(err(path, None, "`!function` needs a `module.name`")),
                };
                let mut m = Map::new();
                m.insert(FUNCTION_KEY.into(), Value::String(name));
                Value::Object(m)
            } else {
                return Err(err(path, None, format!("unknown YAML tag `{tag}`")));
            }
        }
    })
}

/// The file's own mapping, without resolving `include:`.
pub fn read_mapping(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).map_err(|error| EvalError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let y: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map_or(String::new(), |l| format!("line {}: ", l.line()));
        err(path, None, format!("{at}not valid YAML: {e}"))
    })?;
    match to_json(path, y)? {
        Value::Object(m) => Ok(m),
        other => Err(err(
            path,
            None,
            format!(
                "expected a mapping of task fields, found {}",
                match other {
                    Value::Null => "an empty file",
                    Value::Array(_) => "a list",
                    _ => "a single value",
                }
            ),
        )),
    }
}

/// The file's mapping with its includes merged in, and every file read (for fingerprints).
pub fn load(path: &Path) -> Result<(Map<String, Value>, Vec<PathBuf>)> {
    let mut chain = Vec::new();
    let mut read = Vec::new();
    let m = load_inner(path, &mut chain, &mut read)?;
    Ok((m, read))
}

fn load_inner(
    path: &Path,
    chain: &mut Vec<PathBuf>,
    read: &mut Vec<PathBuf>,
) -> Result<Map<String, Value>> {
    let canon = path.canonicalize().map_err(|error| EvalError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    if chain.contains(&canon) {
        let cycle: Vec<String> = chain
            .iter()
            .chain(std::iter::once(&canon))
            .map(|p| p.display().to_string())
            .collect();
        return Err(err(
            path,
            Some("include"),
            format!("circular include: {}", cycle.join(" -> ")),
        ));
    }
    chain.push(canon.clone());
    read.push(canon);
    let mut cfg = read_mapping(path)?;
    let Some(includes) = cfg.remove("include") else {
        chain.pop();
        return Ok(cfg);
    };
    let list = match includes {
        Value::String(s) => vec![s],
        Value::Array(xs) => xs
            .into_iter()
            .map(|x| match x {
                Value::String(s) => Ok(s),
                _ => Err(err(
                    path,
                    Some("include"),
                    "expected a file name or a list of them",
                )),
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(err(
                path,
                Some("include"),
                "expected a file name or a list of them",
            ))
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut merged = Map::new();
    for inc in list {
        let p = if Path::new(&inc).is_absolute() {
            PathBuf::from(&inc)
        } else {
            dir.join(&inc)
        };
        if !p.is_file() {
            return Err(err(
                path,
                Some("include"),
                format!("`{inc}` not found (looked for {})", p.display()),
            ));
        }
        let mut inc_cfg = load_inner(&p, chain, read)?;
        inc_cfg.remove("task_list");
        merged.extend(inc_cfg);
    }
    merged.extend(cfg);
    chain.pop();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_merge_with_local_keys_winning_and_cycles_are_errors() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("_base"), "output_type: multiple_choice\nnum_fewshot: 0\ntask_list: [x]\nprocess_docs: !function utils.process_docs\n").unwrap();
        std::fs::write(
            d.path().join("t.yaml"),
            "include: _base\ntask: t\nnum_fewshot: 5\n",
        )
        .unwrap();
        let (m, files) = load(&d.path().join("t.yaml")).unwrap();
        assert_eq!(m["num_fewshot"], 5);
        assert_eq!(m["output_type"], "multiple_choice");
        assert!(!m.contains_key("task_list") && !m.contains_key("include"));
        assert_eq!(
            hooks(&m),
            vec![("process_docs".to_string(), "utils.process_docs".to_string())]
        );
        assert_eq!(files.len(), 2);

        std::fs::write(d.path().join("a.yaml"), "include: b.yaml\ntask: a\n").unwrap();
        std::fs::write(d.path().join("b.yaml"), "include: a.yaml\n").unwrap();
        let e = load(&d.path().join("a.yaml")).unwrap_err().to_string();
        assert!(
            e.contains("circular include") && e.contains("field `include`"),
            "{e}"
        );

        std::fs::write(d.path().join("bad.yaml"), "task: [unclosed\n").unwrap();
        let e = load(&d.path().join("bad.yaml")).unwrap_err().to_string();
        assert!(
            e.contains("bad.yaml") && e.contains("not valid YAML"),
            "{e}"
        );
        std::fs::write(d.path().join("miss.yaml"), "include: nowhere.yaml\n").unwrap();
        let e = load(&d.path().join("miss.yaml")).unwrap_err().to_string();
        assert!(e.contains("`nowhere.yaml` not found"), "{e}");
    }
}
