//! The scoring engine: lm-evaluation-harness's loglikelihood, rolling loglikelihood and greedy
//! generation on a k2 model, with the work shared where the answers cannot change:
//!
//! * requests whose contexts tokenize identically (every multiple-choice question) run the context
//!   once; each continuation is scored from the context's cached keys and values, one-token
//!   continuations (MMLU's " A".." D") need no extra forward at all, and continuations that
//!   begin with the same tokens run those once;
//! * contexts are sorted by length (longest first) and batched with right padding, the continuations
//!   of one context batched together; results are restored to request order. The model's cached
//!   forward gives a padded row exactly the values it gets alone (attention sums only over the keys a
//!   query sees; one-row products avoid the matrix-vector path), so scores do not depend on the
//!   batch size — unlike lm-eval on padded batches (#1645).
//!
//! * contexts that begin with the same long run of tokens (MMLU's description and five dev
//!   examples per subject, TruthfulQA's fixed preamble) share it: the common prefix runs once and
//!   each context runs only its own tokens after it, from the prefix's cached keys and values.
//!   This is done only where the decoder gives a cached prefix exactly the bits of the whole
//!   context ([`Decoder::prefix_reuse_is_exact`]), so no score changes by a bit.
//!
//! Truncation follows lm-eval: the model sees `(context + continuation)[-(max_len + 1):][:-1]`.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use k2_model::{logprob, CheckpointTokenizer, Decoder, KvCache};

use crate::encode::{encode, prefix_token, EncodedPair};
use crate::error::{EvalError, Result};
use crate::prefix_tree::PrefixNode;

pub struct Engine {
    pub model: Decoder,
    pub tokenizer: CheckpointTokenizer,
    pub batch_size: usize,
    pub max_len: usize,
    /// Share long common prefixes between contexts where that changes no bit (on unless
    /// `K2_PREFIX_CACHE=0`).
    pub prefix_cache: bool,
    /// Names the tokenization (a hash of the tokenizer's serialization and its BOS/EOS): engines
    /// with equal keys encode every text the same, so a sweep reuses token ids across them.
    pub tokenizer_key: String,
}

/// [`Engine::tokenizer_key`] of a tokenizer.
pub fn tokenizer_key(tok: &CheckpointTokenizer) -> String {
    let json = tok.tokenizer.to_string(false).unwrap_or_default();
    let meta = format!(
        "\n{:?} {:?} {:?}",
        tok.bos_token_id, tok.eos_token_id, tok.class
    );
    k2_archive::sha256_bytes(format!("{json}{meta}").as_bytes())
}

/// Continuations of one context scored together in one right-padded forward from its cache.
const CONTINUATIONS_PER_FORWARD: usize = 32;

/// The most continuation tokens one packed forward runs ([`Engine::score_batch_packed`])...
const PACKED_CONTINUATION_ROWS: usize = 2048;

/// ... and the most bytes its f32 logits may take (a 128K vocabulary: 512 rows).
const PACKED_LOGITS_BYTES: usize = 256 << 20;

/// The most KV-cache bytes one batch of contexts may hold (a 2048-token context of a 7B model
/// needs 1 GiB in bf16; it runs alone).
const CONTEXT_BATCH_CACHE_BYTES: usize = 512 << 20;

/// Contexts run packed together: their next-token logits at each one's last position (contexts,
/// vocab) on the model's device, their packed cache where one is kept, and each context's
/// (start, len) in it.
type RunPacked = (Tensor, Option<KvCache>, Vec<(usize, usize)>);

/// A context's tokens and the (request index, continuation tokens) scored after it.
type ContextGroup = (Vec<u32>, Vec<(usize, Vec<u32>)>);

/// Result of one loglikelihood request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub ll: f64,
    pub is_greedy: bool,
}

/// lm-eval's `get_rolling_token_windows` with `context_len = 1` followed by `make_disjoint_window`:
/// (context, continuation) token pairs whose continuations tile the document.
pub fn rolling_windows(tokens: &[u32], prefix: u32, max_len: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut out = Vec::new();
    if tokens.is_empty() {
        return out;
    }
    let first = max_len.min(tokens.len());
    let mut a = vec![prefix];
    a.extend_from_slice(&tokens[..first - 1]);
    out.push((a, tokens[..first].to_vec()));
    let mut predicted = first;
    while predicted < tokens.len() {
        let n = (tokens.len() - predicted).min(max_len);
        let end = predicted + n;
        let a = tokens[end.saturating_sub(max_len + 1)..end - 1].to_vec();
        out.push((a, tokens[end - n..end].to_vec()));
        predicted += n;
    }
    out.into_iter()
        .map(|(a, b)| {
            let keep = a.len() + 1 - b.len().min(a.len() + 1);
            (a[..keep].to_vec(), b)
        })
        .collect()
}

/// The model and tokenizer of `dir` for scoring; a tokenizer with ids beyond the model's
/// embedding is refused here, before any request (an id past `vocab_size` would index outside the
/// embedding).
pub fn check_vocab(
    model: &Decoder,
    tokenizer: &CheckpointTokenizer,
    tokenizer_path: &std::path::Path,
) -> Result<()> {
    let max_id = tokenizer.get_vocab(true).into_values().max().unwrap_or(0);
    let vocab_size = model.arch().vocab_size;
    if max_id as usize >= vocab_size {
        return Err(EvalError::VocabMismatch {
            tokenizer: tokenizer_path.to_path_buf(),
            max_id,
            vocab_size,
        });
    }
    Ok(())
}

/// The forwards a batch's multi-token continuations need, as (context index, input tokens):
/// each continuation's input is its tokens but the last, and an input that begins another input
/// of the same context (MMLU's " A", " C", " D" are "▁" then a letter) reads its logits from that
/// one's rows, which are the same rows (a causal row sees only the tokens before it). Returns the
/// inputs to run, longest first per context, and which one each `rest` entry reads.
fn shared_inputs<'c>(rest: &[(usize, usize, &'c [u32])]) -> (Vec<(usize, &'c [u32])>, Vec<usize>) {
    let mut order: Vec<usize> = (0..rest.len()).collect();
    order.sort_by(|&x, &y| {
        let (a, b) = (&rest[x], &rest[y]);
        a.0.cmp(&b.0)
            .then(b.2.len().cmp(&a.2.len()))
            .then(x.cmp(&y))
    });
    let mut runs: Vec<(usize, &[u32])> = Vec::new();
    let mut reads = vec![0; rest.len()];
    let mut first_of_context = 0;
    for idx in order {
        let (ci, _, c) = rest[idx];
        let input = &c[..c.len() - 1];
        if runs.last().is_none_or(|r| r.0 != ci) {
            first_of_context = runs.len();
        }
        let found = runs[first_of_context..]
            .iter()
            .position(|r| r.1.starts_with(input));
        reads[idx] = match found {
            Some(r) => first_of_context + r,
            None => {
                runs.push((ci, input));
                runs.len() - 1
            }
        };
    }
    (runs, reads)
}

impl Engine {
    pub fn new(model: Decoder, tokenizer: CheckpointTokenizer, batch_size: usize) -> Self {
        let max_len = model.arch().max_position_embeddings;
        Self {
            model,
            batch_size: batch_size.max(1),
            max_len,
            prefix_cache: k2_model::backend::switches().prefix_cache,
            tokenizer_key: tokenizer_key(&tokenizer),
            tokenizer,
        }
    }

    /// Whether prefixes are shared and sequences packed: asked for, and exact on this model
    /// ([`Decoder::prefix_reuse_is_exact`]); otherwise contexts run right-padded.
    fn shares_work(&self) -> bool {
        self.prefix_cache && self.model.prefix_reuse_is_exact()
    }

    fn dev(&self) -> Device {
        self.model.device().clone()
    }

    /// Applies lm-eval's left truncation: returns (context, continuation) such that
    /// `len(context) + len(continuation) - 1 <= max_len` and the model input is unchanged.
    fn truncate(&self, p: &EncodedPair) -> (Vec<u32>, Vec<u32>) {
        let mut cont = p.continuation.clone();
        if cont.len() > self.max_len {
            cont = cont[cont.len() - self.max_len..].to_vec();
        }
        let room = self.max_len + 1 - cont.len();
        let ctx = if p.context.len() > room {
            p.context[p.context.len() - room..].to_vec()
        } else {
            p.context.clone()
        };
        (ctx, cont)
    }

    /// Scores every pair; the result is in input order. `progress` is called with the number of
    /// requests finished so far.
    pub fn loglikelihood(
        &self,
        pairs: &[EncodedPair],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Scored>> {
        let mut out = vec![
            Scored {
                ll: 0.0,
                is_greedy: true
            };
            pairs.len()
        ];
        // Group by (truncated) context tokens.
        let mut groups: HashMap<Vec<u32>, Vec<(usize, Vec<u32>)>> = HashMap::new();
        for (i, p) in pairs.iter().enumerate() {
            let (ctx, cont) = self.truncate(p);
            if cont.is_empty() {
                continue;
            }
            groups.entry(ctx).or_default().push((i, cont));
        }
        let mut groups: Vec<ContextGroup> = groups.into_iter().collect();
        let mut done = 0;
        if self.shares_work() {
            groups.sort_by(|a, b| a.0.cmp(&b.0));
            let ctxs: Vec<&[u32]> = groups.iter().map(|g| g.0.as_slice()).collect();
            let tree = crate::prefix_tree::build(&ctxs);
            self.score_node(&tree, &groups, None, &mut out, &mut done, progress)?;
        } else {
            let all: Vec<&ContextGroup> = groups.iter().collect();
            self.score_groups(all, None, false, &mut out, &mut done, progress)?;
        }
        Ok(out)
    }

    /// Scores the contexts of `node` (indices into `groups`): its prefix runs once, after the
    /// parent's cached prefix, and every deeper node and every context of its own runs after it.
    fn score_node(
        &self,
        node: &PrefixNode,
        groups: &[ContextGroup],
        parent: Option<&(KvCache, usize)>,
        out: &mut [Scored],
        done: &mut usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let start = parent.map_or(0, |p| p.1);
        let mine = if node.len > start {
            let ids = &groups[node.first].0[start..node.len];
            let seg = [(0, ids.len())];
            let ids = Tensor::new(ids, &self.dev())?.unsqueeze(0)?;
            let past = parent.map(|p| &p.0);
            // Only the prefix's keys and values are needed: the last layer finishes one row.
            let (_, own) = self.model.forward_packed_last(&ids, &seg, past, true)?;
            let own = own.expect("kept");
            Some((own.packed_row(past, 0, seg[0].1)?, node.len))
        } else {
            None
        };
        let here = mine.as_ref().or(parent);
        for child in &node.children {
            self.score_node(child, groups, here, out, done, progress)?;
        }
        let alone = node.alone.iter().map(|&i| &groups[i]).collect();
        self.score_groups(alone, here, true, out, done, progress)
    }

    /// Scores context groups that all begin with the cached `prefix` (if any): contexts in
    /// batches, longest first (packed into one row with `packed`, else right-padded), and each
    /// context's continuations from its cache.
    fn score_groups(
        &self,
        mut groups: Vec<&ContextGroup>,
        prefix: Option<&(KvCache, usize)>,
        packed: bool,
        out: &mut [Scored],
        done: &mut usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        // Longest first (lm-eval's order), ties broken by tokens so the order is deterministic.
        groups.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        for batch in self.context_batches(&groups) {
            if packed {
                self.score_batch_packed(batch, prefix, out)?;
                *done += batch.iter().map(|g| g.1.len()).sum::<usize>();
                progress(*done);
                continue;
            }
            let ctxs: Vec<&Vec<u32>> = batch.iter().map(|g| &g.0).collect();
            let (last_logits, caches) = self.run_contexts(&ctxs, prefix)?;
            for (ci, ((_, members), cache)) in batch.iter().zip(caches).enumerate() {
                // All continuations of a context in one right-padded forward (in chunks of a
                // fixed size): the padded shape depends on the request set, never on
                // --batch-size, so scores stay identical at any batch size.
                for sub in members.chunks(CONTINUATIONS_PER_FORWARD) {
                    let scores = self.score_continuations(&last_logits, ci, &cache, sub)?;
                    for ((i, _), s) in sub.iter().zip(scores) {
                        out[*i] = s;
                    }
                    *done += sub.len();
                    progress(*done);
                }
            }
        }
        Ok(())
    }

    /// Consecutive context groups in batches of at most `batch_size` contexts whose KV cache
    /// (padded length x contexts) stays within [`CONTEXT_BATCH_CACHE_BYTES`]: long contexts of a
    /// large model run alone. Scores do not depend on the batching (rows are computed exactly as
    /// alone), only memory does.
    fn context_batches<'g, 'h>(
        &self,
        groups: &'h [&'g ContextGroup],
    ) -> Vec<&'h [&'g ContextGroup]> {
        let c = self.model.arch();
        let per_token = (c.num_hidden_layers * 2 * c.num_key_value_heads * c.head_dim).max(1)
            * self.model.dtype().size_in_bytes();
        let mut out = Vec::new();
        let mut start = 0;
        while start < groups.len() {
            // Sorted longest first: the first context of a batch is its longest.
            let len = groups[start].0.len().max(1);
            let by_memory = (CONTEXT_BATCH_CACHE_BYTES / (len * per_token)).max(1);
            let end = (start + self.batch_size.min(by_memory)).min(groups.len());
            out.push(&groups[start..end]);
            start = end;
        }
        out
    }

    /// Runs contexts (right-padded batch), after the cached `prefix` of `n` tokens they all begin
    /// with, if any; returns the next-token logits at each context's last position (contexts,
    /// vocab), on the model's device, and each context's KV cache cut to its own length.
    fn run_contexts(
        &self,
        ctxs: &[&Vec<u32>],
        prefix: Option<&(KvCache, usize)>,
    ) -> Result<(Tensor, Vec<KvCache>)> {
        let skip = prefix.map_or(0, |p| p.1);
        let t = ctxs.iter().map(|c| c.len() - skip).max().unwrap_or(1);
        let mut ids = Vec::with_capacity(ctxs.len() * t);
        for c in ctxs {
            ids.extend_from_slice(&c[skip..]);
            ids.extend(std::iter::repeat_n(0u32, t - (c.len() - skip)));
        }
        let ids = Tensor::from_vec(ids, (ctxs.len(), t), &self.dev())?;
        let past = prefix.map(|p| p.0.expand(ctxs.len())).transpose()?;
        let (hidden, cache) = self.model.forward_hidden_cached(&ids, past.as_ref())?;
        let mut last = Vec::with_capacity(ctxs.len());
        let mut caches = Vec::with_capacity(ctxs.len());
        for (i, c) in ctxs.iter().enumerate() {
            last.push(hidden.get(i)?.get(c.len() - skip - 1)?.unsqueeze(0)?);
            caches.push(cache.row(i, c.len())?);
        }
        let logits = self.model.lm_head(&Tensor::cat(&last, 0)?)?;
        Ok((logits, caches))
    }

    /// Scores a batch of context groups that all begin with the cached `prefix` (if any), packed:
    /// the contexts' own tokens in one row ([`Engine::run_packed`]), each continuation's first
    /// token from its context's last logits, and the rest of every continuation of the batch
    /// packed into as few forwards as [`PACKED_CONTINUATION_ROWS`] allows, each one after its own
    /// context's keys read in place ([`Decoder::forward_packed_after`]); an input shared by
    /// several continuations of a context runs once ([`shared_inputs`]). Every score has the bits
    /// of its request run alone; the packing changes only how much runs per forward.
    fn score_batch_packed(
        &self,
        batch: &[&ContextGroup],
        prefix: Option<&(KvCache, usize)>,
        out: &mut [Scored],
    ) -> Result<()> {
        let ctxs: Vec<&Vec<u32>> = batch.iter().map(|g| &g.0).collect();
        // The contexts' cache is needed only for continuations of more than one token.
        let rest: Vec<(usize, usize, &[u32])> = batch
            .iter()
            .enumerate()
            .flat_map(|(ci, g)| g.1.iter().map(move |(i, c)| (ci, *i, c.as_slice())))
            .filter(|(_, _, c)| c.len() > 1)
            .collect();
        let (last_logits, middle, ctx_segs) = self.run_packed(&ctxs, !rest.is_empty(), prefix)?;
        let firsts: Vec<(usize, usize, u32)> = batch
            .iter()
            .enumerate()
            .flat_map(|(ci, g)| g.1.iter().map(move |(i, c)| (ci, *i, c[0])))
            .collect();
        let picks: Vec<(usize, u32)> = firsts.iter().map(|&(ci, _, tok)| (ci, tok)).collect();
        for (&(_, i, _), s) in firsts.iter().zip(logprob::score(&last_logits, &picks)?) {
            out[i] = Scored {
                ll: s.logprob,
                is_greedy: s.greedy,
            };
        }
        let Some(middle) = middle else {
            return Ok(());
        };
        let (runs, reads) = shared_inputs(&rest);
        let vocab = self.model.arch().vocab_size.max(1);
        let max_rows = PACKED_CONTINUATION_ROWS.min((PACKED_LOGITS_BYTES / (4 * vocab)).max(1));
        let mut at = 0;
        while at < runs.len() {
            // Inputs in order until the rows would pass the cap (at least one).
            let mut end = at + 1;
            let mut rows = runs[at].1.len();
            while end < runs.len() && rows + runs[end].1.len() <= max_rows {
                rows += runs[end].1.len();
                end += 1;
            }
            let chunk = &runs[at..end];
            let mut ids = Vec::with_capacity(rows);
            let mut segs = Vec::with_capacity(chunk.len());
            let mut spans = Vec::with_capacity(chunk.len());
            for &(ci, input) in chunk {
                segs.push((ids.len(), input.len()));
                spans.push(ctx_segs[ci]);
                ids.extend_from_slice(input);
            }
            let ids = Tensor::from_vec(ids, (1, rows), &self.dev())?;
            let hidden = self.model.forward_packed_after(
                &ids,
                &segs,
                prefix.map(|p| &p.0),
                &middle,
                &spans,
            )?;
            let logits = self.model.lm_head(&hidden.squeeze(0)?)?;
            // Each scored (logits row, token), scored where the logits are, then summed per
            // request in token order.
            let mut owners = Vec::new();
            let mut picks = Vec::new();
            for (&(_, i, c), &run) in rest.iter().zip(&reads) {
                if (at..end).contains(&run) {
                    let a = segs[run - at].0;
                    for k in 0..c.len() - 1 {
                        owners.push(i);
                        picks.push((a + k, c[k + 1]));
                    }
                }
            }
            for (&i, s) in owners.iter().zip(logprob::score(&logits, &picks)?) {
                out[i].ll += s.logprob;
                out[i].is_greedy &= s.greedy;
            }
            at = end;
        }
        Ok(())
    }

    /// [`Engine::run_contexts`] without padding: the contexts' own tokens (after the shared
    /// `prefix`) packed into one row ([`Decoder::forward_packed`]), and with `keep` their packed
    /// cache (each context's keys at its segment).
    fn run_packed(
        &self,
        ctxs: &[&Vec<u32>],
        keep: bool,
        prefix: Option<&(KvCache, usize)>,
    ) -> Result<RunPacked> {
        let skip = prefix.map_or(0, |p| p.1);
        let mut ids = Vec::new();
        let mut segs = Vec::with_capacity(ctxs.len());
        for c in ctxs {
            segs.push((ids.len(), c.len() - skip));
            ids.extend_from_slice(&c[skip..]);
        }
        let n = ids.len();
        let ids = Tensor::from_vec(ids, (1, n), &self.dev())?;
        // Only each context's last position is scored from these hidden states.
        let (rows, cache) =
            self.model
                .forward_packed_last(&ids, &segs, prefix.map(|p| &p.0), keep)?;
        let logits = self.model.lm_head(&rows.squeeze(0)?)?;
        Ok((logits, cache, segs))
    }

    /// Scores continuations of one context from its cache: the first token from row `row` of the
    /// contexts' last logits, the rest from one batched forward of `cont[..-1]`.
    fn score_continuations(
        &self,
        last_logits: &Tensor,
        row: usize,
        cache: &KvCache,
        conts: &[(usize, Vec<u32>)],
    ) -> Result<Vec<Scored>> {
        let picks: Vec<(usize, u32)> = conts.iter().map(|(_, c)| (row, c[0])).collect();
        let mut scores: Vec<Scored> = logprob::score(last_logits, &picks)?
            .into_iter()
            .map(|s| Scored {
                ll: s.logprob,
                is_greedy: s.greedy,
            })
            .collect();
        let t = conts.iter().map(|(_, c)| c.len() - 1).max().unwrap_or(0);
        if t == 0 {
            return Ok(scores);
        }
        let mut ids = Vec::with_capacity(conts.len() * t);
        for (_, c) in conts {
            ids.extend_from_slice(&c[..c.len() - 1]);
            ids.extend(std::iter::repeat_n(0u32, t - (c.len() - 1)));
        }
        let ids = Tensor::from_vec(ids, (conts.len(), t), &self.dev())?;
        let hidden = self.model.hidden_after(&ids, &cache.expand(conts.len())?)?;
        let logits = self
            .model
            .lm_head(&hidden.reshape((conts.len() * t, ()))?)?;
        // Each continuation's rows of logits (its tokens but the last, as inputs).
        let mut owners = Vec::new();
        let mut picks = Vec::new();
        for (j, (_, c)) in conts.iter().enumerate() {
            for k in 0..c.len() - 1 {
                owners.push(j);
                picks.push((j * t + k, c[k + 1]));
            }
        }
        for (&j, s) in owners.iter().zip(logprob::score(&logits, &picks)?) {
            scores[j].ll += s.logprob;
            scores[j].is_greedy &= s.greedy;
        }
        Ok(scores)
    }

    /// Total log-likelihood and token count of each text in disjoint windows of the model's
    /// context (lm-eval `loglikelihood_rolling`).
    pub fn rolling(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<(f64, usize)>> {
        let prefix = prefix_token(&self.tokenizer)
            .ok_or_else(|| EvalError::Tokenizer("neither BOS nor EOS".into()))?;
        let mut pairs = Vec::new();
        let mut owner = Vec::new();
        let mut counts = vec![0usize; texts.len()];
        for (i, t) in texts.iter().enumerate() {
            let toks = encode(&self.tokenizer, t)?;
            counts[i] = toks.len();
            for (a, b) in rolling_windows(&toks, prefix, self.max_len) {
                pairs.push(EncodedPair {
                    context: a,
                    continuation: b,
                });
                owner.push(i);
            }
        }
        let scored = self.loglikelihood(&pairs, progress)?;
        let mut out: Vec<(f64, usize)> = counts.into_iter().map(|n| (0.0, n)).collect();
        for (s, i) in scored.into_iter().zip(owner) {
            out[i].0 += s.ll;
        }
        Ok(out)
    }

    /// Greedy generation with a KV cache until a stop string appears in the decoded text, EOS, or
    /// `max_gen_toks` tokens. The context is left-truncated to `max_len - max_gen_toks`.
    pub fn generate(&self, context: &str, until: &[String], max_gen_toks: usize) -> Result<String> {
        let mut ids = encode(&self.tokenizer, context)?;
        let keep = self.max_len.saturating_sub(max_gen_toks).max(1);
        if ids.len() > keep {
            ids = ids[ids.len() - keep..].to_vec();
        }
        let eos = self
            .tokenizer
            .eos_token_id
            .or(self.model.arch().eos_token_id);
        let dev = self.dev();
        let input = Tensor::new(ids.as_slice(), &dev)?.unsqueeze(0)?;
        let (hidden, cache) = self.model.forward_hidden_cached(&input, None)?;
        // Each generated token's keys and values are written into this room in place.
        let room = max_gen_toks.min(self.max_len.saturating_sub(ids.len()));
        let mut cache = cache.with_room(room)?;
        let mut last = hidden.get(0)?.get(ids.len() - 1)?.unsqueeze(0)?;
        let mut generated: Vec<u32> = Vec::new();
        let mut text = String::new();
        for _ in 0..max_gen_toks {
            if ids.len() + generated.len() >= self.max_len {
                break;
            }
            let next = logprob::argmax_rows(&self.model.lm_head(&last)?)?[0];
            if Some(next) == eos {
                break;
            }
            generated.push(next);
            text = self
                .tokenizer
                .decode(&generated, true)
                .map_err(|e| EvalError::Tokenizer(e.to_string()))?;
            if until
                .iter()
                .any(|u| !u.is_empty() && text.contains(u.as_str()))
            {
                break;
            }
            let x = Tensor::new(&[next], &dev)?.unsqueeze(0)?;
            let (h, c) = self.model.forward_hidden_cached(&x, Some(&cache))?;
            cache = c;
            last = h.get(0)?.get(0)?.unsqueeze(0)?;
        }
        for u in until {
            if !u.is_empty() {
                if let Some(i) = text.find(u.as_str()) {
                    text.truncate(i);
                }
            }
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::shared_inputs;

    #[test]
    fn continuation_inputs_that_begin_another_of_their_context_run_once() {
        // MMLU on a character-level vocabulary: " A" " C" " D" are "▁" + letter, " B" one token.
        let (a, b, c, d) = ([410, 447], [368], [410, 457], [410, 455]);
        let longer = [410, 447, 9, 9];
        let rest: Vec<(usize, usize, &[u32])> = vec![
            (0, 0, &a),
            (0, 1, &c),
            (0, 2, &d),
            (1, 3, &a),
            (1, 4, &longer),
            (1, 5, &b),
            (2, 6, &b),
        ];
        // `b` has no input; filtered out before, as in the engine.
        let rest: Vec<_> = rest.into_iter().filter(|r| r.2.len() > 1).collect();
        let (runs, reads) = shared_inputs(&rest);
        let want: Vec<(usize, &[u32])> = vec![(0, &[410]), (1, &[410, 447, 9])];
        assert_eq!(runs, want);
        assert_eq!(reads, vec![0, 0, 0, 1, 1]);
        // An input is never shared across contexts: their keys differ.
        let (runs, _) = shared_inputs(&[(0, 0, &a), (1, 1, &c)]);
        assert_eq!(runs.len(), 2);
    }
}
