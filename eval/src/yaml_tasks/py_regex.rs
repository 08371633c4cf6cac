//! Python's `re` as lm-eval's YAMLs use it (filters' `regex_pattern`, `exact_match`'s
//! `regexes_to_ignore`, the `regex_replace` template filter), on fancy-regex: look-around and
//! back-references work, `$` matches at the end or before a final newline as Python's does,
//! `re.findall` returns groups as Python's does, and `re.sub` expands `\1`, `\g<name>`.

use fancy_regex::Regex;

/// A compiled Python pattern.
#[derive(Debug, Clone)]
pub struct PyRegex {
    re: Regex,
    groups: usize,
}

/// One item of Python's `re.findall`: the match, the one group, or every group.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Text(String),
    Groups(Vec<String>),
}

/// Python's pattern syntax in fancy-regex's: `$` (without the `m` flag) is `(?=\n?\z)`, `\Z`
/// is `\z`.
fn translate(p: &str) -> String {
    let multiline = p.starts_with("(?m") || p.contains("(?m)");
    let mut out = String::with_capacity(p.len() + 8);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                if n == 'Z' {
                    out.push_str("\\z");
                } else {
                    out.push('\\');
                    out.push(n);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` right after `[` or `[^` is a literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '[' if in_class => out.push_str("\\["),
            '$' if !in_class && !multiline => out.push_str("(?=\\n?\\z)"),
            c => out.push(c),
        }
    }
    out
}

impl PyRegex {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let re = Regex::new(&translate(pattern)).map_err(|e| {
            format!("pattern `{pattern}` is not one k2 can match as Python does: {e}")
        })?;
        let groups = re.captures_len() - 1;
        Ok(PyRegex { re, groups })
    }

    /// Python's `re.findall`.
    pub fn findall(&self, s: &str) -> Result<Vec<Found>, String> {
        let mut out = Vec::new();
        for caps in self.re.captures_iter(s) {
            let caps = caps.map_err(|e| e.to_string())?;
            let group = |i: usize| {
                caps.get(i)
                    .map_or(String::new(), |m| m.as_str().to_string())
            };
            out.push(match self.groups {
                0 => Found::Text(group(0)),
                1 => Found::Text(group(1)),
                n => Found::Groups((1..=n).map(group).collect()),
            });
        }
        Ok(out)
    }

    /// Python's `re.sub(pattern, repl, s, count)` (`count` 0: every match).
    pub fn sub(&self, s: &str, repl: &str, count: usize) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for (n, caps) in self.re.captures_iter(s).enumerate() {
            if count > 0 && n >= count {
                break;
            }
            let caps = caps.map_err(|e| e.to_string())?;
            let m = caps.get(0).expect("group 0 is the match");
            out.push_str(&s[last..m.start()]);
            let groups: Vec<Option<&str>> = (0..self.re.captures_len())
                .map(|i| caps.get(i).map(|m| m.as_str()))
                .collect();
            expand(repl, &groups, &self.re, &mut out)?;
            last = m.end();
        }
        out.push_str(&s[last..]);
        Ok(out)
    }
}

/// Python's replacement template: `\1`..`\99`, `\g<n>`, `\g<name>`, and the string escapes.
fn expand(repl: &str, groups: &[Option<&str>], re: &Regex, out: &mut String) -> Result<(), String> {
    let mut chars = repl.chars().peekable();
    let group = |i: usize, out: &mut String| -> Result<(), String> {
        match groups.get(i) {
            None => Err(format!("invalid group reference {i}")),
            Some(m) => {
                out.push_str(m.unwrap_or(""));
                Ok(())
            }
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => return Err("bad escape (end of pattern)".into()),
            Some(d @ '0'..='9') => {
                let mut i = d.to_digit(10).unwrap_or(0) as usize;
                if let Some(e) = chars.peek().and_then(|e| e.to_digit(10)) {
                    i = i * 10 + e as usize;
                    chars.next();
                }
                group(i, out)?;
            }
            Some('g') => {
                if chars.next() != Some('<') {
                    return Err("missing `<` after \\g".into());
                }
                let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                match name.parse::<usize>() {
                    Ok(i) => group(i, out)?,
                    Err(_) => match re.capture_names().position(|n| n == Some(name.as_str())) {
                        Some(i) => group(i, out)?,
                        None => return Err(format!("unknown group name `{name}`")),
                    },
                }
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_matches_before_a_final_newline_as_in_python() {
        // re.sub(r"\.$", "", "False.\n") == "False\n"
        assert_eq!(
            PyRegex::new(r"\.$")
                .unwrap()
                .sub("False.\n", "", 0)
                .unwrap(),
            "False\n"
        );
        assert_eq!(
            PyRegex::new(r"\.$").unwrap().sub("a.b.", "", 0).unwrap(),
            "a.b"
        );
        assert_eq!(
            PyRegex::new(r"[$]").unwrap().sub("a$b", "", 0).unwrap(),
            "ab"
        );
    }

    #[test]
    fn findall_and_sub_follow_python() {
        let r = PyRegex::new(r"#### (\-?[0-9\.\,]+)").unwrap();
        assert_eq!(
            r.findall("x #### 42 y #### 7").unwrap(),
            vec![Found::Text("42".into()), Found::Text("7".into())]
        );
        let r = PyRegex::new(r"(-?[$0-9.,]{2,})|(-?[0-9]+)").unwrap();
        assert_eq!(
            r.findall("is 5").unwrap(),
            vec![Found::Groups(vec!["".into(), "5".into()])]
        );
        let r = PyRegex::new(r"\b(True|False)\b").unwrap();
        assert_eq!(
            r.findall("so False.").unwrap(),
            vec![Found::Text("False".into())]
        );
        let r = PyRegex::new(r"(\w+) (?P<second>\w+)").unwrap();
        assert_eq!(r.sub("ab cd ef", r"\g<second>-\1", 0).unwrap(), "cd-ab ef");
        assert_eq!(
            PyRegex::new("a").unwrap().sub("aaa", "b", 2).unwrap(),
            "bba"
        );
        assert!(PyRegex::new(r"(?<=a)b").is_ok(), "look-behind works");
    }
}
