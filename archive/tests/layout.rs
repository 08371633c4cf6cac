use std::path::Path;

use k2_archive::{ckpt_name, spike_ckpt_name, RunLayout};

#[test]
fn paths() {
    let l = RunLayout::new("runs/default");
    let r = Path::new("runs/default");
    assert_eq!(l.config_path(), r.join("config.toml"));
    assert_eq!(l.manifest_path(), r.join("checkpoints.toml"));
    assert_eq!(l.metrics_path(), r.join("metrics.jsonl"));
    assert_eq!(l.chunk_order_path(), r.join("chunk_order.toml"));
    assert_eq!(l.data_dir(), r.join("data"));
    assert_eq!(l.tokenizer_path(), r.join("tokenizer.json"));
    assert_eq!(l.ckpt_dir(&ckpt_name(7)), r.join("ckpt_0007"));
    assert_eq!(
        l.ckpt_tmp_dir(&ckpt_name(7)),
        r.join(format!(
            ".ckpt_0007.tmp-{}-{}",
            k2_archive::claim::host_name(),
            std::process::id()
        ))
    );
    assert_eq!(spike_ckpt_name(186), "spike_ckpt_0186");
}
