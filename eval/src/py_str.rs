//! Python's whitespace rules for `str`, which lm-eval's prompts, filters and metrics follow:
//! `str.isspace()` (what `\s` matches in a `str` regex), `strip()`, `rstrip()`, and
//! `len(re.split(r"\s+", s))`.

/// Python's `str.isspace` for one character: Unicode White_Space plus the information
/// separators U+001C..U+001F.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `str.rstrip()`.
pub fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(py_isspace)
}

/// `len(re.split(r"\s+", s))`: one more than the number of maximal whitespace runs.
pub fn count_words(s: &str) -> usize {
    let mut runs = 0;
    let mut in_ws = false;
    for c in s.chars() {
        let ws = py_isspace(c);
        if ws && !in_ws {
            runs += 1;
        }
        in_ws = ws;
    }
    runs + 1
}
