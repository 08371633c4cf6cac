//! k2-trainer: K2's training workflow in miniature — corpus packing with provenance, chunk dealing
//! with repeat factors and stages, AdamW with parameter groups, warmup + cosine, clipping, the loop,
//! full-state checkpoints, bit-exact resume, and the training benchmark.

pub mod allocator;
pub mod batch;
pub mod bench;
pub mod checkpoint;
pub mod chunks;
pub mod config;
pub mod dataset;
pub mod error;
pub mod failpoint;
pub mod init;
pub mod injection;
pub mod lock;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod packing;
pub mod replay;
pub mod rollback;
pub mod run;
pub mod schedule;
pub mod session;
pub mod setup;
pub mod spike;
pub mod state;
pub mod threads;
pub mod tokenizer_train;

pub use batch::{batch_of_step, decoded_batch_of_step, BatchLocation, DecodedSample};
pub use config::{run_config, with_dtype};
pub use config::{TrainConfig, DEFAULT_CONFIG};
pub use error::{Result, TrainError};
pub use loss::{lm_loss, Backprop};
pub use packing::Sample;
pub use run::{train, RunSummary, TrainOptions};
pub use threads::set_threads;
