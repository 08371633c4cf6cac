//! Task definitions, one file per task family.

pub mod arc;
pub mod boolq;
pub mod gallery;
pub mod gsm8k;
pub mod hellaswag;
pub mod lambada;
pub mod mmlu;
pub mod openbookqa;
pub mod piqa;
pub mod probes;
pub mod truthfulqa;
pub mod wikitext;
pub mod winogrande;
