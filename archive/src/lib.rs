//! k2-archive: the on-disk archive contract of a k2 run.
//!
//! Atomic, fsynced writes; the run manifest (`checkpoints.toml`) with the sha256 of every
//! checkpoint file; verification; the run directory layout; the repository's suite list;
//! the data chunk order; the Hugging Face Hub client (`hub`); the checkpoint sources a sweep reads
//! (`source`) and the claim files its workers share (`claim`). See `DESIGN.md`, "The archive
//! contract".

pub mod acquisition_file;
pub mod atomic;
pub mod chunk_order;
pub mod claim;
pub mod error;
pub mod events;
pub mod hash;
pub mod hub;
pub mod injection_record;
pub mod json_file;
pub mod layout;
pub mod manifest;
pub mod memorization_file;
pub mod metrics_log;
pub mod results_file;
pub mod run_data;
pub mod source;
pub mod suites;
pub mod sweep_summary;
pub mod token_curves_file;
mod toml_io;
pub mod verify;

pub use acquisition_file::{
    read_acquisition_file, read_dense, AcquisitionFile, DenseLine, ProbeScore, ACQUISITION_FORMAT,
};
pub use atomic::{
    append_line_durable, commit_dir_atomic, is_tmp_name, remove_stale_tmp, remove_stale_tmp_of,
    tmp_dir_for, tmp_file_for, truncate_jsonl_after, write_file_atomic,
};
pub use chunk_order::{ChunkOrder, Deferral, CHUNK_ORDER_FORMAT};
pub use error::{ArchiveError, Location};
pub use events::{SpikeEvent, SpikeKind};
pub use hash::{hash_tree, sha256_bytes, sha256_file};
pub use injection_record::{InjectedSteps, InjectionRecord};
pub use json_file::{read_versioned_json, write_json_atomic};
pub use layout::{ckpt_name, parse_ckpt_name, spike_ckpt_name, RunLayout};
pub use manifest::{CheckpointEntry, CheckpointStatus, Manifest, MANIFEST_FORMAT};
pub use run_data::{
    chunk_file, chunk_jsonl, read_chunk, read_index, ChunkInfo, DataIndex, Sample, Spliced,
};
pub use source::{
    CheckpointSource, DirSource, HubSource, Materialised, ModelSource, RunSource, SourceCheckpoint,
    SourceError,
};
pub use suites::{Suite, SuiteFile, SuiteKind, SUITES_FORMAT};
pub use token_curves_file::{
    read_token_curves_file, HeldOutDoc, TokenCurvesFile, TOKEN_CURVES_FORMAT,
};
pub use toml_io::parse_toml;
pub use verify::{verify_checkpoint, verify_run, Problem};
