//! Task definitions, one file per task family.
