//! The tasks, groups and tags of task directories (`--include-path DIR`, lm-eval's own
//! `lm_eval/tasks` when pointed at it), indexed as lm-eval's `TaskIndex` does: every `*.yaml`
//! under a directory in path order, a YAML with `group:` is a group, one with `task:` a task
//! (`class:` a Python task), each `tag:` collects the tasks that name it; a later directory's
//! entry overrides an earlier one's. A file that does not load is kept with its error, for
//! `--list-tasks`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::task_config::{Problem, Refusal, TaskConfig};
use super::yaml_file;
use crate::error::{EvalError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Task,
    PyTask,
    Group,
    Tag,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub path: Option<PathBuf>,
    /// The merged config (tasks and groups).
    pub cfg: Map<String, Value>,
    /// A tag's tasks, in the order they were found.
    pub members: Vec<String>,
}

/// How a group combines one metric of its tasks (`aggregate_metric_list`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMetric {
    pub metric: String,
    /// `None`: every filter the tasks report the metric under.
    pub filters: Option<Vec<String>>,
    pub weight_by_size: bool,
}

/// A group: its members and how it aggregates them.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    pub path: PathBuf,
    pub members: Vec<String>,
    /// Every task under it, nested groups and tags expanded, in order.
    pub leaves: Vec<String>,
    pub metrics: Vec<GroupMetric>,
    pub version: Option<f64>,
}

#[derive(Debug, Default)]
pub struct TaskIndex {
    pub entries: BTreeMap<String, Entry>,
    /// YAML files that did not load, with why.
    pub broken: Vec<(PathBuf, String)>,
    /// Every YAML file seen.
    pub files: usize,
}

fn yaml_files(root: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut items: Vec<_> = std::fs::read_dir(root)?.collect::<std::io::Result<Vec<_>>>()?;
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if name != "__pycache__" && name != ".ipynb_checkpoints" {
                yaml_files(&p, out)?;
            }
        } else if name.ends_with(".yaml") {
            out.push(p);
        }
    }
    Ok(())
}

impl TaskIndex {
    /// Indexes the YAMLs under `dirs`.
    pub fn build(dirs: &[PathBuf]) -> Result<TaskIndex> {
        let mut index = TaskIndex::default();
        for root in dirs {
            if !root.is_dir() {
                return Err(EvalError::Invalid {
                    path: root.clone(),
                    message: "--include-path: not a directory of task YAMLs".into(),
                });
            }
            let mut files = Vec::new();
            yaml_files(root, &mut files).map_err(crate::error::io_err(root))?;
            // lm-eval sorts by the path's text.
            files.sort_by(|a, b| a.to_string_lossy().cmp(&b.to_string_lossy()));
            let mut here: BTreeMap<String, Entry> = BTreeMap::new();
            for f in files {
                index.files += 1;
                let cfg = match yaml_file::load(&f) {
                    Ok((cfg, _)) => cfg,
                    Err(e) => {
                        index.broken.push((f, e.to_string()));
                        continue;
                    }
                };
                Self::add(&mut here, &f, cfg, &mut index.broken);
            }
            index.entries.extend(here);
        }
        Ok(index)
    }

    fn add(
        here: &mut BTreeMap<String, Entry>,
        path: &Path,
        cfg: Map<String, Value>,
        broken: &mut Vec<(PathBuf, String)>,
    ) {
        let str_of = |k: &str| cfg.get(k).and_then(Value::as_str).map(str::to_string);
        let (name, kind) = if cfg.contains_key("class") {
            match str_of("task") {
                Some(t) => (t, Kind::PyTask),
                None => return,
            }
        } else if let Some(g) = str_of("group") {
            (g, Kind::Group)
        } else if let Some(t) = str_of("task") {
            (t, Kind::Task)
        } else {
            broken.push((path.to_path_buf(), "neither `task:` nor `group:`".into()));
            return;
        };
        if here.contains_key(&name) {
            return; // lm-eval keeps the first of duplicates within one directory
        }
        if kind != Kind::Group {
            let tags: Vec<String> = match cfg.get("tag") {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(xs)) => xs
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            for t in tags {
                let e = here.entry(t.clone()).or_insert_with(|| Entry {
                    name: t,
                    kind: Kind::Tag,
                    path: None,
                    cfg: Map::new(),
                    members: Vec::new(),
                });
                if e.kind == Kind::Tag {
                    e.members.push(name.clone());
                }
            }
        }
        here.insert(
            name.clone(),
            Entry {
                name,
                kind,
                path: Some(path.to_path_buf()),
                cfg,
                members: Vec::new(),
            },
        );
    }

    /// A file that did not load and looks like it defines `name` (its file stem is `name`, or a
    /// `task:` / `group:` line names it), as the error that says why: so that `--tasks name`
    /// names the broken file rather than an unknown task.
    pub fn broken_error(&self, name: &str) -> Option<EvalError> {
        let defines = |p: &Path| {
            p.file_stem().is_some_and(|s| s == name)
                || std::fs::read_to_string(p).is_ok_and(|t| {
                    t.lines().any(|l| {
                        ["task:", "group:"].iter().any(|k| {
                            l.trim().strip_prefix(k).is_some_and(|v| {
                                v.trim().trim_matches(|c| c == '"' || c == '\'') == name
                            })
                        })
                    })
                })
        };
        let (path, why) = self.broken.iter().find(|(p, _)| defines(p))?;
        let prefix = format!("{}: ", path.display());
        Some(EvalError::TaskYaml {
            path: path.clone(),
            field: None,
            message: format!(
                "task `{name}` is defined here, but the file does not load: {}",
                why.strip_prefix(&prefix).unwrap_or(why)
            ),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// A task's checked config.
    pub fn task_config(&self, name: &str) -> std::result::Result<TaskConfig, Problem> {
        let e = self.entries.get(name).ok_or_else(|| {
            Problem::Invalid(EvalError::UnknownTask {
                name: name.to_string(),
                suggestion: None,
            })
        })?;
        let path = e.path.clone().unwrap_or_default();
        match e.kind {
            Kind::Task => TaskConfig::from_map(&path, &e.cfg),
            Kind::PyTask => Err(Problem::Refused(Refusal::new(
                "a Python task class",
                "class",
            ))),
            _ => Err(Problem::Invalid(EvalError::TaskYaml {
                path,
                field: None,
                message: format!("`{name}` is a group or tag, not a task"),
            })),
        }
    }

    /// A group's or tag's direct members.
    pub fn members(&self, name: &str) -> std::result::Result<Vec<String>, Problem> {
        let Some(e) = self.entries.get(name) else {
            return Ok(Vec::new());
        };
        match e.kind {
            Kind::Tag => Ok(e.members.clone()),
            Kind::Group => {
                let path = e.path.clone().unwrap_or_default();
                let invalid = |m: &str| {
                    Problem::Invalid(EvalError::TaskYaml {
                        path: path.clone(),
                        field: Some("task".into()),
                        message: m.to_string(),
                    })
                };
                match e.cfg.get("task") {
                    Some(Value::String(s)) => Ok(vec![s.clone()]),
                    Some(Value::Array(xs)) => xs
                        .iter()
                        .map(|x| match x {
                            Value::String(s) => Ok(s.clone()),
                            Value::Object(_) => Err(Problem::Refused(Refusal::new(
                                "a group with an inline task config",
                                format!("group `{name}`"),
                            ))),
                            _ => Err(invalid("expected task or group names")),
                        })
                        .collect(),
                    _ => Err(invalid("missing: a group lists its tasks")),
                }
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Every task under `name` (itself, for a task), groups and tags expanded in order.
    pub fn leaves(&self, name: &str) -> std::result::Result<Vec<String>, Problem> {
        let mut out = Vec::new();
        self.collect(name, &mut out, &mut Vec::new())?;
        Ok(out)
    }

    fn collect(
        &self,
        name: &str,
        out: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> std::result::Result<(), Problem> {
        let Some(e) = self.entries.get(name) else {
            // Not a YAML: a built-in task, or an unknown name the registry reports.
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
            return Ok(());
        };
        if stack.iter().any(|s| s == name) {
            return Err(Problem::Invalid(EvalError::TaskYaml {
                path: e.path.clone().unwrap_or_default(),
                field: Some("task".into()),
                message: format!(
                    "group `{name}` contains itself ({} -> {name})",
                    stack.join(" -> ")
                ),
            }));
        }
        match e.kind {
            Kind::Task | Kind::PyTask => {
                if !out.iter().any(|o| o == name) {
                    out.push(name.to_string());
                }
            }
            Kind::Group | Kind::Tag => {
                stack.push(name.to_string());
                for m in self.members(name)? {
                    self.collect(&m, out, stack)?;
                }
                stack.pop();
            }
        }
        Ok(())
    }

    /// The group `name` with its aggregation (`None` for a task or tag).
    pub fn group(&self, name: &str) -> std::result::Result<Option<GroupSpec>, Problem> {
        let Some(e) = self.entries.get(name).filter(|e| e.kind == Kind::Group) else {
            return Ok(None);
        };
        let path = e.path.clone().unwrap_or_default();
        let invalid = |f: &str, m: &str| {
            Problem::Invalid(EvalError::TaskYaml {
                path: path.clone(),
                field: Some(f.to_string()),
                message: m.to_string(),
            })
        };
        let list = match e.cfg.get("aggregate_metric_list") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(o)) => vec![Value::Object(o.clone())],
            Some(Value::Array(xs)) => xs.clone(),
            Some(_) => return Err(invalid("aggregate_metric_list", "expected a list")),
        };
        let mut metrics = Vec::new();
        for (i, a) in list.iter().enumerate() {
            let f = format!("aggregate_metric_list[{i}]");
            let Value::Object(a) = a else {
                return Err(invalid(&f, "expected a mapping with `metric`"));
            };
            let metric = a
                .get("metric")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(&format!("{f}.metric"), "missing"))?
                .to_string();
            match a.get("aggregation") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s == "mean" => {}
                Some(_) => {
                    return Err(invalid(
                        &format!("{f}.aggregation"),
                        "`mean` is the only group aggregation lm-eval defines",
                    ))
                }
            }
            let filters = match a.get("filter_list") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(vec![s.clone()]),
                Some(Value::Array(xs)) => Some(
                    xs.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                ),
                Some(_) => {
                    return Err(invalid(
                        &format!("{f}.filter_list"),
                        "expected filter names",
                    ))
                }
            };
            let weight_by_size = match a.get("weight_by_size") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(invalid(
                        &format!("{f}.weight_by_size"),
                        "expected true or false",
                    ))
                }
            };
            metrics.push(GroupMetric {
                metric,
                filters,
                weight_by_size,
            });
        }
        let version = match e.cfg.get("metadata") {
            Some(Value::Object(m)) => m.get("version").and_then(Value::as_f64),
            _ => None,
        };
        Ok(Some(GroupSpec {
            name: name.to_string(),
            path,
            members: self.members(name)?,
            leaves: self.leaves(name)?,
            metrics,
            version,
        }))
    }
}
