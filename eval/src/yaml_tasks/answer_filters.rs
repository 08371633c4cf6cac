//! lm-eval's filter pipelines over a document's generations (`filters/*.py`) and the
//! `exact_match` metric they feed (its port of Hugging Face evaluate's `exact_match`).

use std::sync::OnceLock;

use super::py_regex::{Found, PyRegex};
use super::task_config::{ExactMatchOptions, FilterConfig, FilterStep};
use crate::py_str::py_strip;

/// What a pipeline made of a document's generations: still a list, or one answer (after
/// `take_first`).
#[derive(Debug, Clone, PartialEq)]
pub enum Filtered {
    Many(Vec<String>),
    One(String),
}

impl Filtered {
    /// The answer metrics compare: the one answer, or the first of the list.
    pub fn answer(&self) -> String {
        match self {
            Filtered::One(s) => s.clone(),
            Filtered::Many(xs) => xs.first().cloned().unwrap_or_default(),
        }
    }
}

/// The `group_select`th of `re.findall(s)` (Python indexing; a match with groups gives its first
/// non-empty group), stripped as Python strips; `None` where there is no such match or every
/// group is empty. Both of lm-eval's regex filters pick their match this way.
fn select_match(re: &PyRegex, s: &str, group_select: i64) -> Option<String> {
    let found = re.findall(s).ok()?;
    let n = found.len() as i64;
    let i = if group_select < 0 {
        n + group_select
    } else {
        group_select
    };
    if i < 0 || i >= n {
        return None;
    }
    let m = match &found[i as usize] {
        Found::Text(t) => t.as_str(),
        Found::Groups(gs) => gs.iter().find(|g| !g.is_empty())?.as_str(),
    };
    Some(py_strip(m).to_string())
}

/// lm-eval's `RegexFilter` on one generation.
fn regex_one(step: &FilterStep, resp: &str) -> String {
    let FilterStep::Regex {
        re,
        group_select,
        fallback,
    } = step
    else {
        return resp.to_string();
    };
    select_match(re, resp, *group_select).unwrap_or_else(|| fallback.clone())
}

/// lm-eval's `MultiChoiceRegexFilter.find_match`: [`select_match`] mapped through `convert` (the
/// last entry of a key wins, as in a Python dict); `None` where Python's result is falsy.
fn find_match(
    re: &PyRegex,
    s: &str,
    group_select: i64,
    convert: &[(String, String)],
) -> Option<String> {
    let m = select_match(re, s, group_select).filter(|m| !m.is_empty())?;
    Some(
        convert
            .iter()
            .rev()
            .find(|(k, _)| *k == m)
            .map_or(m, |(_, v)| v.clone()),
    )
}

/// A pattern matching `s` literally (the characters Python's `re.escape` escapes that are
/// special to a regex; whitespace stands for itself).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// lm-eval's `MultiChoiceRegexFilter` for one document: its fallback patterns are built from the
/// document's choices once and applied to each generation.
struct MultiChoice<'a> {
    step: &'a FilterStep,
    /// The choices' texts after the ignore options, longest first (so that a choice that is a
    /// prefix of another cannot shadow it), each to its `(X)`.
    by_text: Option<PyRegex>,
    to_alpha: Vec<(String, String)>,
    /// `: X` for the choices' letters, each to its `(X)`.
    by_letter: Option<PyRegex>,
    to_target: Vec<(String, String)>,
}

impl<'a> MultiChoice<'a> {
    fn new(step: &'a FilterStep, choices: &[String]) -> Self {
        let mut alternatives = Vec::new();
        let mut to_alpha = Vec::new();
        let mut letters = Vec::new();
        let mut to_target = Vec::new();
        for (k, c) in choices.iter().enumerate() {
            let letter = char::from_u32('A' as u32 + k as u32)
                .unwrap_or('?')
                .to_string();
            let m = ignores(step, py_strip(c));
            alternatives.push(escape(&m));
            to_alpha.push((m, format!("({letter})")));
            to_target.push((letter.clone(), format!("({letter})")));
            letters.push(letter);
        }
        // Stable, by characters (Python's `sorted(key=len, reverse=True)`).
        alternatives.sort_by_key(|a| std::cmp::Reverse(a.chars().count()));
        MultiChoice {
            step,
            by_text: PyRegex::new(&alternatives.join("|")).ok(),
            to_alpha,
            by_letter: PyRegex::new(&format!(r":[\s]*({})", letters.join("|"))).ok(),
            to_target,
        }
    }

    /// The regex, else a choice's text, else a `: X` letter, else the fallback.
    fn answer(&self, resp: &str) -> String {
        let FilterStep::MultiChoiceRegex {
            re,
            group_select,
            fallback,
            ..
        } = self.step
        else {
            return resp.to_string();
        };
        let g = *group_select;
        find_match(re, resp, g, &[])
            .or_else(|| {
                let by_text = self.by_text.as_ref()?;
                find_match(by_text, &ignores(self.step, resp), g, &self.to_alpha)
            })
            .or_else(|| find_match(self.by_letter.as_ref()?, resp, g, &self.to_target))
            .unwrap_or_else(|| fallback.clone())
    }
}

/// `multi_choice_regex`'s `filter_ignores`: `regexes_to_ignore` removed, then lowercased and
/// Unicode punctuation removed as configured.
fn ignores(step: &FilterStep, s: &str) -> String {
    let FilterStep::MultiChoiceRegex {
        ignore_case,
        ignore_punctuation,
        regexes_to_ignore,
        ..
    } = step
    else {
        return s.to_string();
    };
    static PUNCT: OnceLock<regex::Regex> = OnceLock::new();
    let mut s = s.to_string();
    for r in regexes_to_ignore {
        s = r.sub(&s, "", 0).unwrap_or(s);
    }
    if *ignore_case {
        s = s.to_lowercase();
    }
    if *ignore_punctuation {
        let punct = PUNCT.get_or_init(|| regex::Regex::new(r"\p{P}").expect("valid regex"));
        s = punct.replace_all(&s, "").into_owned();
    }
    s
}

/// Runs one pipeline over a document's generations (`choices`: the document's `choices` field,
/// which `multi_choice_regex` reads).
pub fn apply(filter: &FilterConfig, resps: &[String], choices: &[String]) -> Filtered {
    let mut cur = Filtered::Many(resps.to_vec());
    for step in &filter.steps {
        let map = |f: &dyn Fn(&str) -> String, cur: Filtered| match cur {
            Filtered::Many(xs) => Filtered::Many(xs.iter().map(|x| f(x)).collect()),
            // After take_first a string is iterated character by character in lm-eval, which
            // no YAML relies on; the one answer is mapped whole.
            Filtered::One(s) => Filtered::One(f(&s)),
        };
        cur = match step {
            FilterStep::TakeFirst => match cur {
                Filtered::Many(xs) => Filtered::One(xs.into_iter().next().unwrap_or_default()),
                one => one,
            },
            FilterStep::TakeFirstK(k) => match cur {
                Filtered::Many(xs) => Filtered::Many(xs.into_iter().take(*k).collect()),
                one => one,
            },
            FilterStep::MajorityVote => match cur {
                Filtered::Many(xs) => {
                    // Counter.most_common(1): the highest count, the first seen among ties.
                    let mut counts: Vec<(String, usize)> = Vec::new();
                    for x in xs {
                        match counts.iter_mut().find(|(s, _)| *s == x) {
                            Some(c) => c.1 += 1,
                            None => counts.push((x, 1)),
                        }
                    }
                    let best = counts.iter().map(|c| c.1).max().unwrap_or(0);
                    let vote = counts.into_iter().find(|c| c.1 == best).map(|c| c.0);
                    Filtered::Many(vote.into_iter().collect())
                }
                one => one,
            },
            FilterStep::Regex { .. } => map(&|s| regex_one(step, s), cur),
            FilterStep::MultiChoiceRegex { .. } => {
                let mc = MultiChoice::new(step, choices);
                map(&|s| mc.answer(s), cur)
            }
            FilterStep::Lowercase => map(&|s| s.to_lowercase(), cur),
            FilterStep::Uppercase => map(&|s| s.to_uppercase(), cur),
            FilterStep::RemoveWhitespace => map(&|s| py_strip(s).to_string(), cur),
        };
    }
    cur
}

const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

fn normalize(s: &str, o: &ExactMatchOptions) -> String {
    let mut s = s.to_string();
    for re in &o.regexes_to_ignore {
        s = re.sub(&s, "", 0).unwrap_or(s);
    }
    if o.ignore_case {
        s = s.to_lowercase();
    }
    if o.ignore_punctuation {
        s.retain(|c| !PUNCTUATION.contains(c));
    }
    if o.ignore_numbers {
        s.retain(|c| !c.is_ascii_digit());
    }
    s
}

/// lm-eval's `exact_match_hf_evaluate` for one prediction and one reference: 1.0 or 0.0.
pub fn exact_match(prediction: &str, reference: &str, o: &ExactMatchOptions) -> f64 {
    if normalize(prediction, o) == normalize(reference, o) {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::py_regex::PyRegex;
    use super::*;

    fn bbh_flexible() -> FilterConfig {
        FilterConfig {
            name: "flexible-extract".into(),
            steps: vec![
                FilterStep::Regex {
                    re: PyRegex::new(r"\b(True|False)\b").unwrap(),
                    group_select: 0,
                    fallback: "[invalid]".into(),
                },
                FilterStep::TakeFirst,
            ],
        }
    }

    #[test]
    fn pipelines_and_exact_match_follow_lm_eval() {
        assert_eq!(
            apply(&bbh_flexible(), &["It is False, not True".into()], &[]),
            Filtered::One("False".into())
        );
        assert_eq!(
            apply(&bbh_flexible(), &["no idea".into()], &[]),
            Filtered::One("[invalid]".into())
        );
        let vote = FilterConfig {
            name: "maj".into(),
            steps: vec![FilterStep::MajorityVote, FilterStep::TakeFirst],
        };
        assert_eq!(
            apply(
                &vote,
                &["a".into(), "b".into(), "b".into(), "a".into()],
                &[]
            ),
            Filtered::One("a".into())
        );
        let o = ExactMatchOptions {
            regexes_to_ignore: [r"\.$", ",", "\n", r"\\", "\""]
                .iter()
                .map(|p| PyRegex::new(p).unwrap())
                .collect(),
            ignore_case: true,
            ..Default::default()
        };
        assert_eq!(exact_match("False.\n", "false", &o), 1.0);
        assert_eq!(exact_match("1,000", "1000", &o), 1.0);
        assert_eq!(exact_match("True", "False", &o), 0.0);
        let p = ExactMatchOptions {
            ignore_punctuation: true,
            ..Default::default()
        };
        assert_eq!(exact_match("(A)", "A", &p), 1.0);
    }

    /// lm-eval's three stages: the regex, the choices' texts (longest first, after the ignore
    /// options), `: X` letters; else the fallback. Group -1 takes the last match.
    #[test]
    fn multi_choice_regex_follows_lm_evals_stages() {
        let step = |group_select| FilterStep::MultiChoiceRegex {
            re: PyRegex::new(r"(\([A-Z]\))").unwrap(),
            group_select,
            fallback: "[invalid]".into(),
            ignore_case: true,
            ignore_punctuation: true,
            regexes_to_ignore: vec![],
        };
        let f = FilterConfig {
            name: "flexible-extract".into(),
            steps: vec![step(0)],
        };
        let choices: Vec<String> = ["Paris", "Paris, France", "Rome!", "the dog."]
            .map(String::from)
            .to_vec();
        let resps: Vec<String> = [
            "I think (C), not (A)",
            "It's PARIS, France for sure",
            "so the answer: D",
            "nothing here",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            apply(&f, &resps, &choices),
            Filtered::Many(vec![
                "(C)".into(),
                "(B)".into(),
                "(D)".into(),
                "[invalid]".into()
            ])
        );
        let last = FilterConfig {
            name: "x".into(),
            steps: vec![step(-1)],
        };
        assert_eq!(
            apply(&last, &resps[..1], &choices),
            Filtered::Many(vec!["(A)".into()])
        );
    }
}
