//! k2-eval: see DESIGN.md. Filled in by its own issue.
