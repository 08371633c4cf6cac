//! k2-analysis: reports from k2 runs and lm-evaluation-harness results — tables, figures and a
//! model-card-like README. Entry point: [`render_report`].

pub mod acquisition;
pub mod acquisition_plots;
pub mod acquisition_section;
pub mod acquisition_tables;
pub mod compare;
pub mod datamix;
pub mod gallery;
pub mod heatmap;
pub mod html;
pub mod inputs;
pub mod items;
pub mod items_plots;
pub mod items_section;
pub mod items_tables;
pub mod memorization;
pub mod plots;
pub mod published;
pub mod reference;
pub mod report;
pub mod samples;
pub mod stats;
pub mod tables;
pub mod token_curves;
pub mod token_curves_report;

pub use report::{render_report, ReportOptions, ReportSummary};
