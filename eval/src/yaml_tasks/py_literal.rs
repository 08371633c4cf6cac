//! Python's text forms of values, as lm-eval's templates produce and consume them: `repr()` of
//! strings, floats, lists and dicts (what Jinja2 prints for a list in a template), and
//! `ast.literal_eval` of that text (how lm-eval turns a rendered `doc_to_choice` or a
//! list-shaped `doc_to_target` back into values).

use serde_json::{Map, Number, Value};

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for exponents
/// -4..16, scientific (`1e-05`, `1.5e+16`) otherwise; `inf`, `nan`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{:e}", x.abs());
    let (mant, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        let e = if exp < 0 {
            format!("-{:02}", -exp)
        } else {
            format!("+{exp:02}")
        };
        format!("{sign}{m}e{e}")
    }
}

/// Whether Python's `str.isprintable()` holds for `c` (control, format, line/paragraph
/// separators, and spaces other than U+0020 are not printable; unassigned code points are
/// treated as printable here).
fn printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let u = c as u32;
    !(c.is_control()
        || c.is_whitespace()
        || (0xad == u)
        || (0x600..=0x605).contains(&u)
        || u == 0x61c
        || u == 0x6dd
        || u == 0x70f
        || (0x200b..=0x200f).contains(&u)
        || (0x202a..=0x202e).contains(&u)
        || (0x2060..=0x2064).contains(&u)
        || (0x2066..=0x206f).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xd800..=0xdfff).contains(&u)
        || (0xe000..=0xf8ff).contains(&u))
}

/// Python's `repr(str)`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if printable(c) => out.push(c),
            c => {
                let u = c as u32;
                if u < 0x100 {
                    out.push_str(&format!("\\x{u:02x}"));
                } else if u < 0x10000 {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `str()` of a JSON value as a dataset row holds it (`None`, `True`, `1.0`, lists and
/// dicts as their repr).
pub fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr()` of a JSON value.
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => number_repr(n),
        Value::String(s) => str_repr(s),
        Value::Array(xs) => {
            let items: Vec<String> = xs.iter().map(repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", str_repr(k), repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

fn number_repr(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_repr(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// `ast.literal_eval` of strings, numbers, `True`/`False`/`None`, lists, tuples (as lists) and
/// dicts with string keys. The error says what could not be read.
pub fn literal_eval(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected `{}` at character {} of a Python literal",
            &text[p.i..].chars().next().unwrap_or(' '),
            p.i
        ));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            None => Err("empty Python literal".into()),
            Some(b'[') => self.seq(b']'),
            Some(b'(') => self.seq(b')'),
            Some(b'{') => self.dict(),
            Some(b'\'' | b'"') => self.strings(),
            Some(b'r' | b'R' | b'u' | b'U')
                if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                self.strings()
            }
            Some(b'-' | b'+' | b'0'..=b'9' | b'.') => self.number(),
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
                {
                    self.i += 1;
                }
                match &self.text[start..self.i] {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::Null),
                    "" => Err(format!(
                        "unexpected `{}` in a Python literal",
                        &self.text[start..].chars().next().unwrap_or(' ')
                    )),
                    w => Err(format!("`{w}` is not a Python literal")),
                }
            }
        }
    }

    fn seq(&mut self, close: u8) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected `,` or `{}` in a Python literal",
                        close as char
                    ))
                }
            }
        }
    }

    fn dict(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut m = Map::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(Value::Object(m));
            }
            let k = match self.value()? {
                Value::String(s) => s,
                other => repr(&other),
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err("expected `:` in a Python dict literal".into());
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            m.insert(k, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err("expected `,` or `}` in a Python dict literal".into()),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
            self.ws();
        }
        let body_start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'.' | b'_'))
        {
            // exponent signs
            if matches!(self.s[self.i], b'e' | b'E')
                && matches!(self.s.get(self.i + 1), Some(b'-' | b'+'))
            {
                self.i += 1;
            }
            self.i += 1;
        }
        let neg = self.s[start] == b'-';
        let body: String = self.text[body_start..self.i].replace('_', "");
        if let Ok(i) = body.parse::<i64>() {
            if !body.starts_with('0') || body == "0" {
                return Ok(Value::from(if neg { -i } else { i }));
            }
        }
        let f: f64 = match body.as_str() {
            "inf" => f64::INFINITY,
            _ => body
                .parse()
                .map_err(|_| format!("`{}` is not a Python number", &self.text[start..self.i]))?,
        };
        let f = if neg { -f } else { f };
        Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("`{}` is not a finite number", &self.text[start..self.i]))
    }

    /// One or more adjacent string literals (Python concatenates them).
    fn strings(&mut self) -> Result<Value, String> {
        let mut out = String::new();
        loop {
            out.push_str(&self.string()?);
            let save = self.i;
            self.ws();
            match self.peek() {
                Some(b'\'' | b'"') => {}
                _ => {
                    self.i = save;
                    return Ok(Value::String(out));
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let mut raw = false;
        while let Some(c) = self.peek() {
            match c {
                b'r' | b'R' => raw = true,
                b'u' | b'U' => {}
                _ => break,
            }
            self.i += 1;
        }
        let q = self.peek().ok_or("unterminated string literal")?;
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut out = String::new();
        let rest = &self.text[self.i..];
        let mut chars = rest.char_indices().peekable();
        while let Some((k, c)) = chars.next() {
            if c as u32 == q as u32 {
                if !triple {
                    self.i += k + 1;
                    return Ok(out);
                }
                if rest[k..].starts_with(&format!("{0}{0}{0}", q as char)) {
                    self.i += k + 3;
                    return Ok(out);
                }
                out.push(c);
                continue;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else {
                break;
            };
            if raw {
                out.push('\\');
                out.push(e);
                continue;
            }
            match e {
                '\n' => {}
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = (0..n)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    let code = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("bad escape `\\{e}{hex}` in a string literal"))?;
                    out.push(code);
                }
                '0'..='7' => {
                    let mut v = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match chars.peek() {
                            Some((_, d @ '0'..='7')) => {
                                v = v * 8 + d.to_digit(8).unwrap_or(0);
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        Err("unterminated string literal".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_does() {
        for (x, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456789012345.0, "123456789012345.0"),
            (1e16, "1e+16"),
            (-2.5, "-2.5"),
            (1.5e300, "1.5e+300"),
            (3.14159, "3.14159"),
        ] {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn reprs_round_trip_through_literal_eval() {
        let v = json!(["it's", "say \"hi\"", "both ' \"", "tab\there\n", 3, -1.5, null, true, {"a": [1]}]);
        let text = repr(&v);
        assert_eq!(
            text,
            r#"["it's", 'say "hi"', 'both \' "', 'tab\there\n', 3, -1.5, None, True, {'a': [1]}]"#
        );
        assert_eq!(literal_eval(&text).unwrap(), v);
        assert_eq!(literal_eval("('a', 'b',)").unwrap(), json!(["a", "b"]));
        assert_eq!(literal_eval("'a' 'b'").unwrap(), json!("ab"));
        assert_eq!(literal_eval(" 7 ").unwrap(), json!(7));
        assert_eq!(literal_eval("'\\x41\\u00e9'").unwrap(), json!("Aé"));
        assert!(literal_eval("[1, 2").is_err());
        assert!(literal_eval("foo").unwrap_err().contains("`foo`"));
    }
}
