//! The Hugging Face Hub client: checkpoint revision names and their training order, the standard
//! HF cache layout (shared with Python tools), metadata and ranged, verified, resumable downloads,
//! and pulling / listing / evicting checkpoint revisions.

pub mod cache;
pub mod client;
pub mod dataset;
pub mod download;
pub mod duplicates;
pub mod error;
pub mod list;
pub mod pull;
pub mod revisions;

pub use cache::{HubCache, RepoKind};
pub use client::{HubClient, RevisionInfo};
pub use dataset::{pull_split, SplitFiles, SplitRef, PARQUET_EXPORT};
pub use duplicates::Duplicates;
pub use error::HubError;
pub use list::{add_weights, list_revisions, tokens_of, ListedRevision};
pub use pull::{cached, pull, pull_listed, PullOptions, Pulled, PulledFile};
pub use revisions::{training_order, Revision, Scheme};
