//! The self-contained HTML page: the README's markdown rendered to HTML (headings, paragraphs,
//! lists, tables, `<details>`), every figure inlined as SVG, simple CSS, no external files.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1,h2,h3{line-height:1.2}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}\
code{background:#f3f3f3;padding:0 .25em;border-radius:3px;font-size:90%}\
table{border-collapse:collapse;margin:1em 0;font-size:90%;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;white-space:nowrap}th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;font-size:90%}\
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}";

/// Escapes `&`, `<`, `>` and `"`.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline markdown: `code`, **bold**, [text](url) (links to `figures/*.svg` are dropped, the SVG
/// being inline already). Text is escaped.
pub fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('`') {
            if let Some(end) = r.find('`') {
                let _ = write!(out, "<code>{}</code>", escape(&r[..end]));
                rest = &r[end + 1..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix("**") {
            if let Some(end) = r.find("**") {
                let _ = write!(out, "<strong>{}</strong>", inline(&r[..end]));
                rest = &r[end + 2..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('[') {
            if let Some(mid) = r.find("](") {
                if let Some(end) = r[mid + 2..].find(')') {
                    let text = &r[..mid];
                    let url = &r[mid + 2..mid + 2 + end];
                    if !(url.starts_with("figures/") && url.ends_with(".svg")) {
                        let _ = write!(out, "<a href=\"{}\">{}</a>", escape(url), inline(text));
                    }
                    rest = &r[mid + 2 + end + 1..];
                    continue;
                }
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out.trim_end().to_string()
}

fn table(lines: &[&str]) -> String {
    let row = |l: &str| -> Vec<String> {
        let t = l.trim().trim_start_matches('|').trim_end_matches('|');
        t.split('|').map(|c| c.trim().to_string()).collect()
    };
    let mut out = String::from("<table>\n");
    for (i, l) in lines.iter().enumerate() {
        if i == 1 && l.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
            continue;
        }
        let tag = if i == 0 { "th" } else { "td" };
        out.push_str("<tr>");
        for c in row(l) {
            let _ = write!(out, "<{tag}>{}</{tag}>", inline(&c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// The SVG text of `dir/<figures/x.svg>` without an XML declaration.
fn svg_for(dir: &Path, png_rel: &str) -> Result<String> {
    let svg = dir.join(Path::new(png_rel).with_extension("svg"));
    let text = std::fs::read_to_string(&svg).with_context(|| format!("{}", svg.display()))?;
    let start = text.find("<svg").unwrap_or(0);
    Ok(text[start..].to_string())
}

/// Renders the report markdown `md` (as written by [`crate::render_report`]) to one
/// self-contained HTML page; images `![alt](figures/x.png)` become the inline `figures/x.svg`
/// read from `dir`.
pub fn markdown_to_html(md: &str, title: &str, dir: &Path) -> Result<String> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(title)
    );
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, out: &mut String| {
        if !para.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(&para.join(" ")));
            para.clear();
        }
    };
    while i < lines.len() {
        let l = lines[i];
        let t = l.trim();
        if t.is_empty() {
            flush(&mut para, &mut out);
            i += 1;
        } else if let Some(h) = ["### ", "## ", "# "].iter().find(|p| t.starts_with(**p)) {
            flush(&mut para, &mut out);
            let n = h.len() - 1;
            let _ = writeln!(out, "<h{n}>{}</h{n}>", inline(&t[h.len()..]));
            i += 1;
        } else if t.starts_with('|') {
            flush(&mut para, &mut out);
            let start = i;
            while i < lines.len() && lines[i].trim().starts_with('|') {
                i += 1;
            }
            out.push_str(&table(&lines[start..i]));
        } else if t.starts_with("- ") {
            flush(&mut para, &mut out);
            out.push_str("<ul>\n");
            while i < lines.len() && lines[i].trim().starts_with("- ") {
                let _ = writeln!(out, "<li>{}</li>", inline(&lines[i].trim()[2..]));
                i += 1;
            }
            out.push_str("</ul>\n");
        } else if t
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        {
            flush(&mut para, &mut out);
            out.push_str("<ol>\n");
            while i < lines.len() {
                let Some((n, rest)) = lines[i].trim().split_once(". ") else {
                    break;
                };
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
                    break;
                }
                let _ = writeln!(out, "<li>{}</li>", inline(rest));
                i += 1;
            }
            out.push_str("</ol>\n");
        } else if let Some(r) = t.strip_prefix("![") {
            flush(&mut para, &mut out);
            let (alt, url) = r
                .split_once("](")
                .map(|(a, u)| (a, u.trim_end_matches(')')))
                .unwrap_or((r, ""));
            let _ = writeln!(
                out,
                "<figure role=\"img\" aria-label=\"{}\">\n{}\n</figure>",
                escape(alt),
                svg_for(dir, url)?
            );
            i += 1;
        } else if t.starts_with("<details>") || t.starts_with("</details>") {
            // our own markup: `<details><summary>NAME</summary>` and `</details>`
            flush(&mut para, &mut out);
            if let Some(name) = t
                .strip_prefix("<details><summary>")
                .and_then(|r| r.strip_suffix("</summary>"))
            {
                let _ = writeln!(out, "<details><summary>{}</summary>", escape(name));
            } else {
                let _ = writeln!(out, "{t}");
            }
            i += 1;
        } else {
            para.push(t);
            i += 1;
        }
    }
    flush(&mut para, &mut out);
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup() {
        assert_eq!(
            inline("a `x<y` **b** [SVG](figures/t.svg) [c](http://e/)"),
            "a <code>x&lt;y</code> <strong>b</strong>  <a href=\"http://e/\">c</a>"
        );
    }

    #[test]
    fn tables_lists_headings() {
        let md = "# T\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | `2` |\n\n1. x\n2. y\n\n<details><summary>m</summary>\n\ntext\n\n</details>\n";
        let h = markdown_to_html(md, "T", Path::new(".")).unwrap();
        assert!(h.contains("<h1>T</h1>"));
        assert!(h.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"));
        assert!(
            h.contains("<tr><th>a</th><th>b</th></tr>\n<tr><td>1</td><td><code>2</code></td></tr>")
        );
        assert!(h.contains("<ol>\n<li>x</li>\n<li>y</li>\n</ol>"));
        assert!(h.contains("<details><summary>m</summary>\n<p>text</p>\n</details>"));
        assert!(!h.contains("|---"));
    }
}
