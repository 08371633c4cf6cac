//! `code_long` (stage 2, domain code, stands in for K2's stage-2 python):
//! longer programs: a module docstring, several helper functions, a small
//! class and a `main` that calls the helpers by the names they were defined with.

use crate::rng::SplitMix64;
use crate::sources::code::{function, names, NOUNS};
use crate::sources::STAGE2_CHARS;
use crate::text::capitalize;

fn class_block(rng: &mut SplitMix64) -> (String, String) {
    let noun = rng.pick(NOUNS);
    let class = capitalize(noun.trim_end_matches('s'));
    let field = rng.pick(&["size", "name", "value", "count", "limit"]);
    let k = rng.range(2, 9);
    let text = format!(
        "class {class}:\n    def __init__(self, {field}):\n        self.{field} = {field}\n\n    def grow(self):\n        self.{field} = self.{field} + {k}\n        return self.{field}\n\n    def show(self):\n        print(\"{class}\", self.{field})"
    );
    (class, text)
}

pub fn generate(rng: &mut SplitMix64) -> String {
    let (_, max) = STAGE2_CHARS;
    let target = rng.range(900, 3200) as usize;
    let mut parts = vec![format!(
        "\"\"\"Module {}: helpers for {}.\"\"\"",
        rng.range(1, 999),
        rng.pick(NOUNS)
    )];
    let (class, class_text) = class_block(rng);
    let mut defined: Vec<(String, &'static str)> = Vec::new();
    let mut len = parts[0].len();
    // Reserve room for the class and main.
    let reserve = class_text.len() + 500;
    loop {
        let (text, def) = if rng.chance(70) {
            let n = names(rng);
            let text = format!(
                "def {f}({xs}):\n    {acc} = 0\n    for {x} in {xs}:\n        if {x} > {k}:\n            {acc} = {acc} + {x}\n    return {acc}",
                f = n.func,
                xs = n.xs,
                acc = n.acc,
                x = n.x,
                k = n.k
            );
            (text, Some((n.func, n.xs)))
        } else {
            (function(rng), None)
        };
        if len + text.len() + 2 + reserve > max {
            break;
        }
        len += text.len() + 2;
        parts.push(text);
        if let Some(d) = def {
            defined.push(d);
        }
        if len + class_text.len() + 200 >= target && !defined.is_empty() {
            break;
        }
    }
    parts.push(class_text);
    let mut main = vec!["def main():".to_string()];
    for (f, xs) in defined.iter().take(4) {
        main.push(format!(
            "    {xs} = [{}, {}, {}]",
            rng.range(0, 20),
            rng.range(0, 20),
            rng.range(0, 20)
        ));
        main.push(format!("    print({f}({xs}))"));
    }
    let var = class.to_ascii_lowercase();
    main.push(format!("    {var} = {class}({})", rng.range(1, 9)));
    main.push(format!("    {var}.grow()"));
    main.push(format!("    {var}.show()"));
    parts.push(main.join("\n"));
    parts.push("if __name__ == \"__main__\":\n    main()".to_string());
    parts.join("\n\n")
}
