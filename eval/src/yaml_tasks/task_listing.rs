//! `k2 eval --list-tasks`: what k2 can run from task directories, and what it cannot and why,
//! grouped by reason, with counts. The check is the one `--tasks` makes before reading data
//! (config fields, hooks, templates, regexes, metrics, filters); a task listed as runnable can
//! still fail on its data (a field its template names that the rows lack).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::task_config::Problem;
use super::task_index::{Kind, TaskIndex};
use crate::registry;

/// The survey of an index.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: usize,
    pub tasks: Vec<String>,
    pub groups: Vec<String>,
    pub tags: Vec<String>,
    /// YAML names k2 runs with its own implementation (the built-in tasks).
    pub native: Vec<String>,
    /// reason -> (name, detail)
    pub refused: BTreeMap<String, Vec<(String, String)>>,
    /// Task YAMLs that are not valid (bad field, shape), with the error.
    pub invalid: Vec<(String, String)>,
    /// Files that did not load or define no task or group (templates).
    pub broken: Vec<(PathBuf, String)>,
    pub groups_refused: Vec<(String, String)>,
    pub tags_refused: Vec<(String, String)>,
}

impl Listing {
    pub fn of(index: &TaskIndex) -> Listing {
        let mut l = Listing {
            files: index.files,
            broken: index.broken.clone(),
            ..Default::default()
        };
        let mut ok: BTreeMap<&str, bool> = BTreeMap::new();
        for (name, e) in &index.entries {
            if e.kind != Kind::Task && e.kind != Kind::PyTask {
                continue;
            }
            if registry::entry_of(name).is_some() {
                l.native.push(name.clone());
                ok.insert(name, true);
                continue;
            }
            match index.task_config(name) {
                Ok(_) => {
                    l.tasks.push(name.clone());
                    ok.insert(name, true);
                }
                Err(Problem::Refused(r)) => {
                    l.refused
                        .entry(r.reason)
                        .or_default()
                        .push((name.clone(), r.detail));
                    ok.insert(name, false);
                }
                Err(Problem::Invalid(e)) => {
                    l.invalid.push((name.clone(), e.to_string()));
                    ok.insert(name, false);
                }
            }
        }
        for (name, e) in &index.entries {
            if e.kind != Kind::Group && e.kind != Kind::Tag {
                continue;
            }
            let verdict = match index.leaves(name) {
                Ok(leaves) => {
                    let bad: Vec<&String> = leaves
                        .iter()
                        .filter(|t| {
                            !ok.get(t.as_str())
                                .copied()
                                .unwrap_or(registry::entry_of(t).is_some())
                        })
                        .collect();
                    let group_ok = e.kind != Kind::Group || index.group(name).is_ok();
                    if bad.is_empty() && group_ok && !leaves.is_empty() {
                        Ok(())
                    } else if !group_ok {
                        Err("its aggregation or members are not ones k2 reads".to_string())
                    } else {
                        Err(format!(
                            "{} of its {} tasks k2 cannot run (first: {})",
                            bad.len(),
                            leaves.len(),
                            bad.first().map_or("-", |s| s.as_str())
                        ))
                    }
                }
                Err(Problem::Refused(r)) => Err(r.to_string()),
                Err(Problem::Invalid(e)) => Err(e.to_string()),
            };
            match (e.kind, verdict) {
                (Kind::Group, Ok(())) => l.groups.push(name.clone()),
                (Kind::Tag, Ok(())) => l.tags.push(name.clone()),
                (Kind::Group, Err(w)) => l.groups_refused.push((name.clone(), w)),
                (_, Err(w)) => l.tags_refused.push((name.clone(), w)),
                _ => {}
            }
        }
        l
    }

    /// The report: counts, then reasons with counts (and every name when `verbose`).
    pub fn render(&self, verbose: bool) -> String {
        let refused: usize = self.refused.values().map(Vec::len).sum();
        let total = self.tasks.len() + self.native.len() + refused + self.invalid.len();
        let mut s = format!(
            "{} YAML files: {} tasks, {} groups, {} tags ({} files define no task or group, or do not load)\n",
            self.files,
            total,
            self.groups.len() + self.groups_refused.len(),
            self.tags.len() + self.tags_refused.len(),
            self.broken.len()
        );
        s.push_str(&format!(
            "k2 runs {} of the {} tasks ({} from their YAML, {} with its built-in implementation), {} of the groups and {} of the tags\n",
            self.tasks.len() + self.native.len(),
            total,
            self.tasks.len(),
            self.native.len(),
            self.groups.len(),
            self.tags.len()
        ));
        let list = |names: &[String]| -> String {
            let mut out = String::new();
            let mut line = String::from("   ");
            for n in names {
                if line.len() + n.len() > 100 {
                    out.push_str(&line);
                    out.push('\n');
                    line = String::from("   ");
                }
                line.push(' ');
                line.push_str(n);
            }
            if line.trim().is_empty() {
                return out;
            }
            out + &line + "\n"
        };
        if verbose {
            s.push_str("\nruns:\n");
            s.push_str(&list(&self.tasks));
            if !self.native.is_empty() {
                s.push_str("built-in:\n");
                s.push_str(&list(&self.native));
            }
            s.push_str("groups:\n");
            s.push_str(&list(&self.groups));
        }
        let mut reasons: Vec<(&String, &Vec<(String, String)>)> = self.refused.iter().collect();
        reasons.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        s.push_str(&format!(
            "\ncannot run ({} tasks), by reason:\n",
            refused + self.invalid.len()
        ));
        for (reason, names) in reasons {
            s.push_str(&format!("  {:>6}  {reason}\n", names.len()));
            if verbose {
                for (n, d) in names {
                    s.push_str(&format!("            {n}: {d}\n"));
                }
            }
        }
        if !self.invalid.is_empty() {
            s.push_str(&format!(
                "  {:>6}  invalid task config\n",
                self.invalid.len()
            ));
            if verbose {
                for (n, e) in &self.invalid {
                    s.push_str(&format!("            {n}: {e}\n"));
                }
            }
        }
        if verbose && !self.broken.is_empty() {
            s.push_str("files that define no task or group, or do not load:\n");
            for (_, why) in &self.broken {
                s.push_str(&format!("    {why}\n"));
            }
        }
        if verbose {
            for (what, xs) in [
                ("groups", &self.groups_refused),
                ("tags", &self.tags_refused),
            ] {
                if !xs.is_empty() {
                    s.push_str(&format!("{what} k2 cannot run:\n"));
                    for (n, w) in xs {
                        s.push_str(&format!("    {n}: {w}\n"));
                    }
                }
            }
        }
        s
    }
}
