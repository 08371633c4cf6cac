//! lm-eval's Jinja templates (`utils.apply_template`: Jinja2 with `StrictUndefined`,
//! `keep_trailing_newline=True` and a `regex_replace` filter), rendered with minijinja so that
//! the text is what Jinja2 renders: Python's string methods (`.strip()`, `.split()`,
//! `.replace()`, ...), Python's `str()` of values (`None`, `True`, `1.0`, `['a', 'b']`) and
//! Python's `re.sub` in `regex_replace`.
//!
//! [`check`] finds what k2 cannot render identically before any document is read: a syntax
//! error, a method or filter outside the set that behaves as in Python/Jinja2.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::py_literal;
use super::py_regex::PyRegex;

/// String, dict and list methods minijinja-contrib's `pycompat` implements as Python does.
const METHODS: &[&str] = &[
    "upper",
    "lower",
    "islower",
    "isupper",
    "isspace",
    "isdigit",
    "isnumeric",
    "isalnum",
    "isalpha",
    "isascii",
    "strip",
    "lstrip",
    "rstrip",
    "replace",
    "split",
    "splitlines",
    "count",
    "find",
    "rfind",
    "startswith",
    "endswith",
    "join",
    "keys",
    "values",
    "items",
    "get",
    "index",
    "capitalize",
];

/// Jinja2 filters whose minijinja counterparts render the same text for lm-eval's uses.
const FILTERS: &[&str] = &[
    "join",
    "replace",
    "trim",
    "lower",
    "upper",
    "first",
    "last",
    "length",
    "count",
    "int",
    "string",
    "default",
    "d",
    "list",
    "reverse",
    "sort",
    "unique",
    "abs",
    "min",
    "max",
    "sum",
    "map",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "batch",
    "slice",
    "safe",
    "e",
    "escape",
    "regex_replace",
    "capitalize",
];

/// The template environment of one task.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

fn python_str(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    if v.is_undefined() {
        return String::new();
    }
    py_literal::str_of(&to_json(v))
}

/// A template value as JSON (for its Python text form).
fn to_json(v: &Value) -> serde_json::Value {
    use minijinja::value::ValueKind as K;
    use serde_json::Value as J;
    match v.kind() {
        K::Undefined | K::None => J::Null,
        K::Bool => J::Bool(v.is_true()),
        K::Number => {
            if let Some(i) = v.as_i64().filter(|_| v.is_integer()) {
                J::from(i)
            } else {
                f64::try_from(v.clone())
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(J::Null, J::Number)
            }
        }
        K::String => J::String(v.as_str().unwrap_or_default().to_string()),
        K::Map => {
            let mut m = serde_json::Map::new();
            if let Ok(keys) = v.try_iter() {
                for k in keys {
                    let val = v.get_item(&k).unwrap_or_default();
                    m.insert(python_str(&k), to_json(&val));
                }
            }
            J::Object(m)
        }
        K::Seq | K::Iterable => J::Array(
            v.try_iter()
                .map(|it| it.map(|x| to_json(&x)).collect())
                .unwrap_or_default(),
        ),
        _ => J::String(v.to_string()),
    }
}

/// A document as a template value.
fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::from(s.as_str()),
        J::Array(xs) => Value::from(xs.iter().map(from_json).collect::<Vec<_>>()),
        J::Object(m) => Value::from(
            m.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// Python methods beyond minijinja-contrib's `pycompat`: `list.index(x)` / `str.index(sub)`
/// (the first position; an error when absent, as Python raises) and `str.capitalize()`.
fn python_method(
    state: &mut minijinja::State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    use minijinja::value::ValueKind;
    match (value.kind(), method, args) {
        (ValueKind::Seq, "index", [x]) => {
            let pos = value.try_iter()?.position(|v| &v == x);
            pos.map(|p| Value::from(p as i64)).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{} is not in list", python_str(x)),
                )
            })
        }
        (ValueKind::String, "index", [x]) => {
            let (s, sub) = (
                value.as_str().unwrap_or_default(),
                x.as_str().unwrap_or_default(),
            );
            s.find(sub)
                .map(|b| Value::from(s[..b].chars().count() as i64))
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "substring not found"))
        }
        (ValueKind::String, "capitalize", []) => {
            let s = value.as_str().unwrap_or_default();
            let mut cs = s.chars();
            Ok(Value::from(match cs.next() {
                Some(first) => {
                    first.to_uppercase().collect::<String>() + &cs.as_str().to_lowercase()
                }
                None => String::new(),
            }))
        }
        _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

fn regex_replace(
    s: String,
    pattern: String,
    repl: String,
    count: Option<usize>,
) -> Result<String, Error> {
    let re = PyRegex::new(&pattern)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("regex_replace: {e}")))?;
    re.sub(&s, &repl, count.unwrap_or(0))
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("regex_replace: {e}")))
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        if let Ok(syntax) = SyntaxConfig::builder().keep_trailing_newline(true).build() {
            env.set_syntax(syntax);
        }
        env.set_unknown_method_callback(python_method);
        env.add_filter("regex_replace", regex_replace);
        env.set_formatter(|out, _state, value| {
            out.write_str(&python_str(value))
                .map_err(|_| Error::new(ErrorKind::WriteFailure, "formatting a value"))
        });
        Templates { env }
    }

    /// Renders `source` with the document's fields as variables.
    pub fn render(&self, source: &str, doc: &serde_json::Value) -> Result<String, String> {
        let ctx = from_json(doc);
        self.env.render_str(source, ctx).map_err(describe)
    }
}

fn describe(e: Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Whether a string is a Jinja template rather than plain text.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// What in `source` k2 cannot render as Jinja2 does: a syntax error, or a method or filter
/// outside the supported set (named in the error).
pub fn check(source: &str) -> Result<(), String> {
    let t = Templates::new();
    t.env.template_from_str(source).map_err(describe)?;
    let blocks = regex::Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").expect("valid regex");
    let method = regex::Regex::new(r"\.\s*([A-Za-z_]\w*)\s*\(").expect("valid regex");
    let filter = regex::Regex::new(r"\|\s*([A-Za-z_]\w*)").expect("valid regex");
    for b in blocks.find_iter(source) {
        // Text inside string literals is not code.
        let code = strip_string_literals(b.as_str());
        for c in method.captures_iter(&code) {
            let m = &c[1];
            if !METHODS.contains(&m) {
                return Err(format!("the method `.{m}()`"));
            }
        }
        for c in filter.captures_iter(&code) {
            let f = &c[1];
            if !FILTERS.contains(&f) {
                return Err(format!("the filter `|{f}`"));
            }
        }
    }
    Ok(())
}

fn strip_string_literals(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in code.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    out.push(c);
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_as_jinja2_does() {
        let t = Templates::new();
        let doc = json!({"text": "The cat sat on the mat", "support": "  padded\n", "a": "x", "b": "y's",
                         "n": 3, "f": 1.0, "none": null, "flag": true, "xs": ["p", "q"]});
        let r = |s: &str| t.render(s, &doc).unwrap();
        assert_eq!(
            r("{{text.split(' ')[:-1]|join(' ')}}"),
            "The cat sat on the"
        );
        assert_eq!(r("{{' '+text.split(' ')[-1]}}"), " mat");
        assert_eq!(r("{{support.lstrip()}}Q"), "padded\nQ");
        assert_eq!(r("{{support.strip()}}|"), "padded|");
        assert_eq!(r("{{[a, b]}}"), "['x', \"y's\"]");
        assert_eq!(
            r("{{n}} {{f}} {{none}} {{flag}} {{xs}}"),
            "3 1.0 None True ['p', 'q']"
        );
        assert_eq!(
            r("{{text.replace('cat', 'dog')}}"),
            "The dog sat on the mat"
        );
        assert_eq!(r("{% if n > 2 %}big{% else %}small{% endif %}"), "big");
        assert_eq!(
            r("{% for x in xs %}{{loop.index}}.{{x}} {% endfor %}"),
            "1.p 2.q "
        );
        assert_eq!(
            r("{{ text | regex_replace('(\\w+) sat', '\\\\1 stood') }}"),
            "The cat stood on the mat"
        );
        assert_eq!(r("line\n"), "line\n", "keep_trailing_newline");
        assert!(t
            .render("{{missing}}", &doc)
            .unwrap_err()
            .contains("undefined"));
    }

    #[test]
    fn check_names_what_cannot_be_rendered() {
        assert!(check("{{a.strip()}} {{b|join(', ')}}").is_ok());
        assert!(check("{{'{}'.format(a)}}")
            .unwrap_err()
            .contains("`.format()`"));
        assert!(check("{{a|wordwrap}}").unwrap_err().contains("`|wordwrap`"));
        assert!(check("{{a.strip(}}").is_err());
        assert!(check("text with a.b(c) outside tags").is_ok());
        assert!(check("{{ 'x.y(z)' + a }}").is_ok());
    }
}
