//! k2-eval: benchmark tasks with lm-evaluation-harness's exact prompt formats, few-shot
//! construction and metrics; the scoring engine; the one sweep over every checkpoint of any
//! source, with its jobs (benchmarks, memorization).

pub mod acquisition_job;
pub mod bench;
pub mod benchmark_job;
pub mod checkpoint_file;
pub mod data;
pub mod dataset_rows;
pub mod datasets;
pub mod encode;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod fewshot;
pub mod gallery_job;
pub mod greedy;
pub mod memorization;
pub mod memorization_job;
pub mod memorization_summary;
pub mod metrics;
pub mod model_view;
pub mod prefix_tree;
pub mod prepared;
pub mod py_str;
pub mod pyrandom;
pub mod registry;
pub mod request;
pub mod results;
pub mod results_layout;
pub mod scorer;
pub mod sources;
pub mod sp_tokenizer;
pub mod suites;
pub mod summary;
pub mod sweep;
pub mod task;
pub mod tasks;
pub mod token_curves_job;
pub mod yaml_tasks;

pub use error::{EvalError, Result};
pub use request::{Request, Response};
pub use task::{Aggregation, DocResult, MetricSpec, MetricValue, Task};
