//! The corpus sources; one module per source.

pub mod arithmetic;
pub mod code;
pub mod code_long;
pub mod facts;
pub mod math_long;
pub mod stories;

use crate::rng::{SplitMix64, DOC_DOMAIN};
use crate::{Source, SourceInfo};

/// Length range of stage-1 documents (inclusive, bytes).
pub const STAGE1_CHARS: (usize, usize) = (200, 1500);
/// Length range of stage-2 documents (inclusive, bytes).
pub const STAGE2_CHARS: (usize, usize) = (600, 4000);

pub const NAMES: &[&str] = &[
    "stories",
    "facts",
    "arithmetic",
    "code",
    "math_long",
    "code_long",
];

pub const INFO: &[SourceInfo] = &[
    info("stories", "web", "refinedweb", 1.0, 1),
    info("facts", "wiki", "redpajama.wikipedia", 6.0, 1),
    info("arithmetic", "math", "dm-math", 3.0, 1),
    info("code", "code", "starcoder", 0.5, 1),
    info(
        "math_long",
        "math",
        "open-web-math / algebraic-stack",
        1.0,
        2,
    ),
    info("code_long", "code", "python (stage-2 code)", 1.0, 2),
];

const fn info(
    name: &'static str,
    domain: &'static str,
    k2_subset: &'static str,
    repeat: f64,
    stage: u8,
) -> SourceInfo {
    let (min_chars, max_chars) = if stage == 1 {
        STAGE1_CHARS
    } else {
        STAGE2_CHARS
    };
    SourceInfo {
        name,
        domain,
        k2_subset,
        repeat,
        stage,
        min_chars,
        max_chars,
    }
}

/// A source backed by a generator function of a seeded PRNG.
struct Generated {
    name: &'static str,
    domain: &'static str,
    generate: fn(&mut SplitMix64) -> String,
}

impl Source for Generated {
    fn name(&self) -> &'static str {
        self.name
    }
    fn domain(&self) -> &'static str {
        self.domain
    }
    fn document(&self, index: u64) -> String {
        let mut rng = SplitMix64::for_item(DOC_DOMAIN, self.name, index);
        (self.generate)(&mut rng)
    }
}

pub(crate) fn make(name: &str) -> Option<Box<dyn Source>> {
    let generate: fn(&mut SplitMix64) -> String = match name {
        "stories" => stories::generate,
        "facts" => facts::generate,
        "arithmetic" => arithmetic::generate,
        "code" => code::generate,
        "math_long" => math_long::generate,
        "code_long" => code_long::generate,
        _ => return None,
    };
    let info = INFO.iter().find(|i| i.name == name)?;
    Some(Box::new(Generated {
        name: info.name,
        domain: info.domain,
        generate,
    }))
}
