//! k2-analysis: reports from k2 runs and lm-evaluation-harness results — tables, figures and a
//! model-card-like README. Entry point: [`render_report`].

pub mod inputs;
pub mod plots;
pub mod report;
pub mod tables;

pub use report::{render_report, ReportOptions, ReportSummary};
