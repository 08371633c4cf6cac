//! k2-analysis: see DESIGN.md. Filled in by its own issue.
