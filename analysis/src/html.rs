//! The self-contained HTML page: the README's markdown rendered to HTML by `pulldown-cmark`
//! (headings, paragraphs, lists, tables, `<details>`), every figure inlined as SVG, simple CSS, no
//! external files.

use std::path::Path;

use anyhow::{Context, Result};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

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

/// The SVG text of `dir/<figures/x.svg>` without an XML declaration.
fn svg_for(dir: &Path, png_rel: &str) -> Result<String> {
    let svg = dir.join(Path::new(png_rel).with_extension("svg"));
    let text = std::fs::read_to_string(&svg).with_context(|| format!("{}", svg.display()))?;
    let start = text.find("<svg").unwrap_or(0);
    Ok(text[start..].to_string())
}

/// Whether a link points at a figure's SVG (dropped: the SVG is inline already).
fn is_figure_svg(url: &str) -> bool {
    url.starts_with("figures/") && url.ends_with(".svg")
}

/// Renders the report markdown `md` (as written by [`crate::render_report`]) to one
/// self-contained HTML page with `pulldown-cmark` (CommonMark plus tables); images
/// `![alt](figures/x.png)` become the inline `figures/x.svg` read from `dir`, and links to the
/// figures' SVG files are dropped.
pub fn markdown_to_html(md: &str, title: &str, dir: &Path) -> Result<String> {
    let mut events: Vec<Event> = Vec::new();
    let mut image: Option<(String, String)> = None;
    let mut dropped_links = 0usize;
    for ev in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Image { dest_url, .. }) => {
                image = Some((dest_url.to_string(), String::new()));
            }
            Event::End(TagEnd::Image) => {
                let (url, alt) = image.take().unwrap_or_default();
                events.push(Event::Html(
                    format!(
                        "<figure role=\"img\" aria-label=\"{}\">\n{}\n</figure>\n",
                        escape(&alt),
                        svg_for(dir, &url)?
                    )
                    .into(),
                ));
            }
            Event::Text(t) | Event::Code(t) if image.is_some() => {
                if let Some((_, alt)) = image.as_mut() {
                    alt.push_str(&t);
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) if is_figure_svg(&dest_url) => {
                dropped_links += 1;
                // with the space before it
                if let Some(Event::Text(t)) = events.last_mut() {
                    *t = t.trim_end().to_string().into();
                }
            }
            Event::End(TagEnd::Link) if dropped_links > 0 => dropped_links -= 1,
            _ if dropped_links > 0 || image.is_some() => {}
            ev => events.push(ev),
        }
    }
    // A paragraph that holds only a figure is the figure.
    let mut body: Vec<Event> = Vec::with_capacity(events.len());
    let mut k = 0;
    while k < events.len() {
        let figure_alone = matches!(events[k], Event::Start(Tag::Paragraph))
            && matches!(events.get(k + 1), Some(Event::Html(h)) if h.starts_with("<figure"))
            && matches!(events.get(k + 2), Some(Event::End(TagEnd::Paragraph)));
        if figure_alone {
            body.push(events[k + 1].clone());
            k += 3;
        } else {
            body.push(events[k].clone());
            k += 1;
        }
    }
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(title)
    );
    pulldown_cmark::html::push_html(&mut out, body.into_iter());
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup() {
        let h = markdown_to_html(
            "a `x<y` **b** [SVG](figures/t.svg) [c](http://e/)\n",
            "T",
            Path::new("."),
        )
        .unwrap();
        assert!(
            h.contains(
                "<p>a <code>x&lt;y</code> <strong>b</strong> <a href=\"http://e/\">c</a></p>"
            ),
            "{h}"
        );
    }

    #[test]
    fn figures_are_inline_svg() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("figures")).unwrap();
        std::fs::write(
            d.path().join("figures/f.svg"),
            "<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>\n",
        )
        .unwrap();
        let h = markdown_to_html("![Loss & lr](figures/f.png)\n", "T", d.path()).unwrap();
        assert!(
            h.contains(
                "<figure role=\"img\" aria-label=\"Loss &amp; lr\">\n<svg width=\"1\"></svg>"
            ),
            "{h}"
        );
        assert!(!h.contains("<p><figure"), "{h}");
        assert!(!h.contains("<?xml"), "{h}");
    }

    #[test]
    fn tables_lists_headings() {
        let md = "# T\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | `2` |\n\n1. x\n2. y\n\n<details><summary>m</summary>\n\ntext\n\n</details>\n";
        let h = markdown_to_html(md, "T", Path::new(".")).unwrap();
        assert!(h.contains("<h1>T</h1>"), "{h}");
        assert!(h.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"), "{h}");
        assert!(h.contains("<th>a</th><th>b</th>"), "{h}");
        assert!(h.contains("<td>1</td><td><code>2</code></td>"), "{h}");
        assert!(h.contains("<ol>\n<li>x</li>\n<li>y</li>\n</ol>"), "{h}");
        assert!(
            h.contains("<details><summary>m</summary>\n<p>text</p>\n</details>"),
            "{h}"
        );
        assert!(!h.contains("|---"), "{h}");
    }
}
