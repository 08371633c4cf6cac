//! lm-evaluation-harness's tasks as data: task and group YAMLs (`include:` inheritance, tags,
//! groups with their aggregation), Jinja templates rendered as Jinja2 renders them, and the
//! output types, filters and metrics of lm-eval 0.4, run by k2's engine. What needs Python
//! (`!function` hooks, task classes) or a construct k2 cannot reproduce exactly is refused with
//! its reason.

pub mod answer_filters;
pub mod group_results;
pub mod py_literal;
pub mod py_regex;
pub mod task_config;
pub mod task_index;
pub mod task_listing;
pub mod template;
pub mod yaml_file;
pub mod yaml_task;
