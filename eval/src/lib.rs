//! k2-eval: benchmark tasks with lm-evaluation-harness's exact prompt formats, few-shot
//! construction and metrics; the scoring engine; the sweep over every checkpoint of a run.

pub mod error;
pub mod fewshot;
pub mod metrics;
pub mod pyrandom;
pub mod request;
pub mod task;
pub mod tasks;

pub use error::{EvalError, Result};
pub use request::{Request, Response};
pub use task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};
