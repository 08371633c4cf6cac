//! A `tokenizer.json` for checkpoints that ship only a SentencePiece `tokenizer.model` (LLaMA-1-era
//! releases loaded with `LlamaTokenizer`), written as transformers' `LlamaConverter` writes it:
//! byte-fallback BPE over the model's pieces with merges from `SentencePieceExtractor`, a Metaspace
//! pre-tokenizer that always prepends "▁", `<s>` added in front, and the matching decoder.
//!
//! Only BPE-type SentencePiece models (LLaMA's, stories260K's) are converted; a unigram model is an
//! error.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{EvalError, Result};

/// One piece of a SentencePiece model.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub kind: u64,
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }

    /// (field, wire type, payload: varint value or bytes)
    fn field(&mut self) -> Option<(u64, u64, u64, &'a [u8])> {
        let key = self.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => Some((field, wire, self.varint()?, &[])),
            1 => Some((field, wire, 0, self.take(8)?)),
            2 => {
                let n = usize::try_from(self.varint()?).ok()?;
                Some((field, wire, 0, self.take(n)?))
            }
            5 => Some((field, wire, 0, self.take(4)?)),
            _ => None,
        }
    }
}

/// The pieces and model type (1 unigram, 2 BPE) of a SentencePiece `ModelProto`.
pub fn read_model(bytes: &[u8]) -> Option<(Vec<Piece>, u64)> {
    let mut r = Reader { b: bytes, i: 0 };
    let mut pieces = Vec::new();
    let mut model_type = 1; // the proto's default: unigram
    while r.i < bytes.len() {
        let (field, wire, _, payload) = r.field()?;
        match (field, wire) {
            (1, 2) => {
                let mut p = Reader { b: payload, i: 0 };
                let mut piece = Piece {
                    piece: String::new(),
                    score: 0.0,
                    kind: 1,
                };
                while p.i < payload.len() {
                    let (f, w, v, b) = p.field()?;
                    match (f, w) {
                        (1, 2) => piece.piece = String::from_utf8(b.to_vec()).ok()?,
                        (2, 5) => piece.score = f32::from_le_bytes(b.try_into().ok()?),
                        (3, 0) => piece.kind = v,
                        _ => {}
                    }
                }
                pieces.push(piece);
            }
            (2, 2) => {
                // TrainerSpec: model_type is field 3.
                let mut t = Reader { b: payload, i: 0 };
                while t.i < payload.len() {
                    let (f, w, v, _) = t.field()?;
                    if (f, w) == (3, 0) {
                        model_type = v;
                    }
                }
            }
            _ => {}
        }
    }
    Some((pieces, model_type))
}

/// `SentencePieceExtractor.extract`: for every piece, each split into two pieces of the
/// vocabulary (ordered by the parts' ids); then all by the merged piece's score, highest first,
/// longer left parts first.
fn merges(pieces: &[Piece], vocab: &HashMap<&str, usize>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String, f32)> = Vec::new();
    for p in pieces {
        let chars: Vec<(usize, char)> = p.piece.char_indices().collect();
        let mut local = Vec::new();
        for &(at, _) in chars.iter().skip(1) {
            let (l, r) = p.piece.split_at(at);
            if let (Some(&il), Some(&ir)) = (vocab.get(l), vocab.get(r)) {
                local.push((il, ir, l.to_string(), r.to_string()));
            }
        }
        local.sort_by_key(|x| (x.0, x.1));
        out.extend(local.into_iter().map(|(_, _, l, r)| (l, r, p.score)));
    }
    // transformers' generate_merges: sorted by (score, len(left), len(right)) with reverse=True,
    // which Python keeps stable (lengths in characters).
    let key = |x: &(String, String, f32)| (x.2, x.0.chars().count(), x.1.chars().count());
    out.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
    });
    out.into_iter().map(|(l, r, _)| (l, r)).collect()
}

/// The `tokenizer.json` of a BPE SentencePiece model read from `path`.
pub fn tokenizer_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(crate::error::io_err(path))?;
    let bad = |m: &str| EvalError::Invalid {
        path: path.to_path_buf(),
        message: m.to_string(),
    };
    let (pieces, model_type) =
        read_model(&bytes).ok_or_else(|| bad("not a SentencePiece model (bad protobuf)"))?;
    if model_type != 2 {
        return Err(bad(&format!(
            "SentencePiece model type {model_type} is not BPE (2); only BPE models are converted"
        )));
    }
    let vocab: HashMap<&str, usize> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.piece.as_str(), i))
        .collect();
    let unk = pieces
        .iter()
        .find(|p| p.kind == 2)
        .map(|p| p.piece.clone())
        .ok_or_else(|| bad("no unknown piece"))?;
    let added: Vec<Value> = pieces
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == 2 || p.kind == 3)
        .map(|(i, p)| {
            json!({"id": i, "content": p.piece, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let post = match vocab.get("<s>") {
        Some(&bos) => json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]}}
        }),
        None => Value::Null,
    };
    let mut v = serde_json::Map::new();
    for (i, p) in pieces.iter().enumerate() {
        v.insert(p.piece.clone(), json!(i));
    }
    let merges: Vec<Value> = merges(&pieces, &vocab)
        .into_iter()
        .map(|(l, r)| json!([l, r]))
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": false},
        "post_processor": post,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
                  "ignore_merges": false, "vocab": Value::Object(v), "merges": merges}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The repository's copy of stories260K-hf (`fixtures/models`).
    fn model_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/stories260K-hf")
    }

    #[test]
    fn converts_stories260k_exactly_as_transformers_did() {
        let dir = model_dir();
        let ours = tokenizer_json(&dir.join("tokenizer.model")).unwrap();
        let text = std::fs::read_to_string(dir.join("tokenizer.json")).unwrap();
        let theirs: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(ours["model"]["vocab"], theirs["model"]["vocab"]);
        assert_eq!(ours["model"]["merges"], theirs["model"]["merges"]);
        assert_eq!(ours, theirs);
        // And it tokenizes real text identically.
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("tokenizer.json");
        std::fs::write(&p, serde_json::to_string(&ours).unwrap()).unwrap();
        let a = k2_model::load_tokenizer(&p).unwrap();
        let b = k2_model::load_tokenizer(&dir.join("tokenizer.json")).unwrap();
        let sample = dir.join("../../tinystories/tinystories_sample.txt");
        let s = std::fs::read_to_string(sample).unwrap_or_else(|_| "Once upon a time".into());
        for line in s.lines().chain(["  two  spaces\nnew line ü 😀 <s>"]) {
            assert_eq!(
                a.encode(line, true).unwrap().get_ids(),
                b.encode(line, true).unwrap().get_ids(),
                "{line}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("tokenizer.model");
        std::fs::write(&p, [0xff, 0xff, 0xff]).unwrap();
        let e = tokenizer_json(&p).unwrap_err().to_string();
        assert!(
            e.contains("tokenizer.model") && e.contains("SentencePiece"),
            "{e}"
        );
    }
}
