//! Config parsing, validation and parameter counts.

mod common;

use k2_model::{preset, LlamaConfig, ModelError};

#[test]
fn k2_65b_has_the_released_parameter_count() {
    let cfg = preset("k2-65b").unwrap();
    assert_eq!(cfg.num_params(), 65_286_184_960);
    assert_eq!(cfg.params_per_layer(), 809_517_056);
    assert_eq!(cfg.head_dim(), 128);
    assert_eq!(cfg.num_kv_heads(), 64);
}

#[test]
fn bench_17m_shape() {
    let cfg = preset("bench-17m").unwrap();
    // 2 * 8192*384 embeddings/head + 6 layers * (4*384^2 + 3*384*1024 + 2*384) + 384
    assert_eq!(
        cfg.num_params(),
        2 * 8192 * 384 + 6 * (4 * 384 * 384 + 3 * 384 * 1024 + 2 * 384) + 384
    );
}

#[test]
fn hf_config_json_roundtrips() {
    for name in ["default", "k2-65b", "bench-17m"] {
        let cfg = preset(name).unwrap();
        let back = LlamaConfig::from_hf_json_str(&cfg.to_hf_json()).unwrap();
        assert_eq!(back.num_params(), cfg.num_params());
        assert_eq!(back.num_kv_heads(), cfg.num_kv_heads());
        assert_eq!(back.rope_theta, cfg.rope_theta);
    }
}

#[test]
fn reads_real_hf_configs() {
    let d = common::fixtures().join("models");
    let c =
        LlamaConfig::from_hf_json(&d.join("tiny-random-llama-gqa-sharded/config.json")).unwrap();
    assert_eq!(
        (c.num_attention_heads, c.num_kv_heads(), c.head_dim()),
        (6, 2, 16)
    );
    assert_eq!(c.rope_theta, 500000.0);
    assert!(!c.tie_word_embeddings);
    let s = LlamaConfig::from_hf_json(&d.join("stories260K-hf/config.json")).unwrap();
    assert!(s.tie_word_embeddings);
    assert_eq!(s.vocab_size, 512);
}

#[test]
fn impossible_shapes_name_the_field() {
    let mut c = preset("default").unwrap();
    c.num_attention_heads = 5; // does not divide 128
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("num_attention_heads"), "{e}");
    let mut c = preset("default").unwrap();
    c.num_key_value_heads = Some(3);
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("num_key_value_heads"), "{e}");
}

#[test]
fn bad_config_json_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.json");
    std::fs::write(&p, "{\n \"hidden_size\": \"big\"\n}").unwrap();
    let e = LlamaConfig::from_hf_json(&p).unwrap_err();
    assert!(matches!(e, ModelError::ConfigFile { .. }));
    let s = e.to_string();
    assert!(s.contains("config.json") && s.contains("line 2"), "{s}");
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    let e = preset("k3").unwrap_err().to_string();
    assert!(e.contains("k2-65b"), "{e}");
}
