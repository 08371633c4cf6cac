//! The text tasks: lambada_openai, wikitext, gsm8k, plus the built-in probe suite, on the
//! repository's Hub-schema fixtures (`fixtures/datasets`). The checks that need whole splits
//! (counts, sums over all pages, few-shot draws from the 7473-row gsm8k train split) run on a full
//! copy when `K2_FULL_DATA` names one (`scripts/hub_datasets_from_shared.py --full --out DIR`) and
//! are skipped with a printed reason otherwise. Expected values were produced with Python 3.11
//! (gsm8k few-shot: `random.Random(1234).sample(train, 5)` per document in order; wikitext:
//! lm-eval's `wikitext_detokenizer` and the HF page splitter run on the reconstructed raw file).

use std::path::{Path, PathBuf};

use k2_eval::datasets::{DataSource, Load};
use k2_eval::metrics::aggregate_docs;
use k2_eval::py_str::count_words;
use k2_eval::tasks::gsm8k::{
    exact_match, flexible_extract, flexible_matches, normalize_exact_match, strict_match, Gsm8k,
};
use k2_eval::tasks::lambada::Lambada;
use k2_eval::tasks::probes::{mc_acc, ProbeTask, DEFAULT_PROBES};
use k2_eval::tasks::wikitext::{
    pages_from_stripped, reconstruct_raw, split_pages, wikitext_detokenizer, WikiText,
};
use k2_eval::{EvalError, Request, Response, Task};
use sha2::{Digest, Sha256};

fn fixtures() -> DataSource {
    DataSource::Local(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/datasets"))
}

/// A full Hub-layout copy of the benchmarks (`K2_FULL_DATA`), or `None` with a printed reason.
fn full(test: &str) -> Option<DataSource> {
    match std::env::var_os("K2_FULL_DATA").filter(|v| !v.is_empty()) {
        Some(d) => Some(DataSource::Local(PathBuf::from(d))),
        None => {
            println!(
                "skipping {test}: it needs whole splits; set K2_FULL_DATA to a folder made by \
                 scripts/hub_datasets_from_shared.py --full"
            );
            None
        }
    }
}

fn load<'a>(data: &'a DataSource, task: &'a str) -> Load<'a> {
    Load {
        data,
        task,
        fewshot: true,
    }
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

// ---------------------------------------------------------------- lambada

#[test]
fn lambada_docs_and_first_request() {
    let data = fixtures();
    let t = Lambada::load(&load(&data, "lambada_openai")).unwrap();
    assert_eq!(t.name(), "lambada_openai");
    assert_eq!(t.version(), 1.0);
    assert_eq!(t.num_docs(), 24);
    assert_eq!(t.default_shots(), 0);
    let r = t.requests(0, 0);
    assert_eq!(r.len(), 1);
    let Request::Loglikelihood {
        context,
        continuation,
    } = &r[0]
    else {
        panic!("{r:?}")
    };
    assert!(context
        .starts_with("In my palm is a clear stone, and inside it is a small ivory statuette."));
    assert!(context.ends_with("his mouth curved in a confident grin, I don't care about"));
    assert_eq!(continuation, " signs");
    assert!(t
        .fingerprint()
        .contains("EleutherAI/lambada_openai/default/test"));
    let Some(data) = full("lambada_docs_and_first_request (full split)") else {
        return;
    };
    let t = Lambada::load(&load(&data, "lambada_openai")).unwrap();
    assert_eq!(t.num_docs(), 5153);
    // a "last word" with newlines keeps them (lm-eval splits on ' ' only)
    let Request::Loglikelihood { continuation, .. } = &t.requests(4462, 0)[0] else {
        panic!()
    };
    assert_eq!(continuation, " \n\nrecorder");
}

#[test]
fn lambada_metrics() {
    let data = fixtures();
    let t = Lambada::load(&load(&data, "lambada_openai")).unwrap();
    let specs = t.metrics();
    assert_eq!(
        specs.iter().map(|s| s.key()).collect::<Vec<_>>(),
        ["perplexity,none", "acc,none"]
    );
    assert!(!specs[0].higher_is_better && specs[1].higher_is_better);
    let docs: Vec<_> = [(-1.0, true), (-3.0, false)]
        .iter()
        .enumerate()
        .map(|(i, &(ll, is_greedy))| t.process(i, &[Response::Loglikelihood { ll, is_greedy }]))
        .collect();
    let ppl = aggregate_docs(&specs[0], &docs);
    assert!((ppl.value - 2f64.exp()).abs() < 1e-12);
    // lm_eval 0.4.13: bootstrap_stderr(perplexity, [-1.0, -3.0], 100000).
    assert_eq!(ppl.stderr, Some(6.464890884236977));
    let acc = aggregate_docs(&specs[1], &docs);
    assert_eq!(acc.value, 0.5);
}

#[test]
fn malformed_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("EleutherAI/lambada_openai/default");
    std::fs::create_dir_all(&repo).unwrap();
    let p = repo.join("test.jsonl");
    std::fs::write(&p, "{\"text\": \"a b c\"}\n\n{\"text\": }\n").unwrap();
    let data = DataSource::Local(dir.path().to_path_buf());
    let err = Lambada::load(&load(&data, "lambada_openai")).unwrap_err();
    match &err {
        EvalError::Data { path, line, .. } => {
            assert_eq!(path, &p);
            assert_eq!(*line, 3);
        }
        e => panic!("{e:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("test.jsonl:3:"), "{msg}");

    // gsm8k: a row missing a field, in the train file
    let repo = dir.path().join("openai/gsm8k/main");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("test.jsonl"),
        "{\"question\": \"q\", \"answer\": \"#### 1\"}\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("train.jsonl"),
        "{\"question\": \"q\", \"answer\": \"#### 1\"}\n{\"question\": \"q2\"}\n",
    )
    .unwrap();
    let msg = Gsm8k::load(&load(&data, "gsm8k")).unwrap_err().to_string();
    assert!(
        msg.contains("train.jsonl:2:") && msg.contains("answer"),
        "{msg}"
    );
    let _ = Path::new("");
}

// ---------------------------------------------------------------- wikitext

#[test]
fn wikitext_pages_counts_and_text() {
    let data = fixtures();
    let t = WikiText::load(&load(&data, "wikitext")).unwrap();
    assert_eq!(t.name(), "wikitext");
    assert_eq!(t.version(), 2.0);
    assert_eq!(t.num_docs(), 3);
    let first = t.pages()[0].clone();
    assert_eq!(
        t.requests(0, 0),
        vec![Request::Rolling {
            text: first.text.clone()
        }]
    );
    let Some(data) = full("wikitext_pages_counts_and_text (all 62 pages)") else {
        return;
    };
    let t = WikiText::load(&load(&data, "wikitext")).unwrap();
    assert_eq!(t.num_docs(), 62);
    assert_eq!(t.pages()[0], first);
    let pages = t.pages();
    assert_eq!(pages[0].words, 1093);
    assert_eq!(pages[0].bytes, 5667);
    assert!(pages[0]
        .page
        .starts_with(" = Robert Boulter = \n \n Robert Boulter is an English film , television"));
    assert!(pages[0].text.starts_with(
        " = Robert Boulter =\n\nRobert Boulter is an English film, television and theatre actor. \
         He had a guest-starring role"
    ));
    assert!(pages[0]
        .text
        .ends_with("=== Television ===\n\n\n=== Theatre ===\n\n\n"));
    let words: usize = pages.iter().map(|p| p.words).sum();
    let bytes: usize = pages.iter().map(|p| p.bytes).sum();
    assert_eq!(words, 241_335);
    // = 1,290,590 (the original wiki.test.raw) − the leading " \n" − 61 page-joining "\n"
    assert_eq!(bytes, 1_290_527);
    assert_eq!(pages[61].words, 3479);
    assert_eq!(pages[61].bytes, 17901);
    assert!(pages[61].page.ends_with("and Eddie Pelkey . \n"));
    // the exact strings Python produced from the same reconstruction
    let joined: Vec<&str> = pages.iter().map(|p| p.page.as_str()).collect();
    assert_eq!(
        sha(&joined.join("\0")),
        "497c8334a26520f9e89e0208dee7fb9784a21136d46a13aa8af963666328cf09"
    );
    let texts: Vec<&str> = pages.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(
        sha(&texts.join("\0")),
        "7af56f01beb31aef3736facb9ed69705e5ba2435f1b5124b658a05a5b0f5e772"
    );
    assert_eq!(
        t.requests(0, 0),
        vec![Request::Rolling {
            text: pages[0].text.clone()
        }]
    );
}

#[test]
fn wikitext_reconstruction_matches_original_size_and_line_count() {
    // Reads the blank-line-stripped copy the Hub-schema pages were rebuilt from.
    let Some(src) = std::env::var_os("K2_SHARED_DATA").filter(|v| !v.is_empty()) else {
        println!(
            "skipping wikitext_reconstruction_matches_original_size_and_line_count: set \
             K2_SHARED_DATA to the folder holding wikitext2/wiki.test.raw"
        );
        return;
    };
    let stripped =
        std::fs::read_to_string(PathBuf::from(src).join("wikitext2/wiki.test.raw")).unwrap();
    let raw = reconstruct_raw(&stripped);
    // The original file: 1,290,590 bytes, 4358 lines (HF rows), 1467 of them blank.
    assert_eq!(raw.len(), 1_290_590);
    assert_eq!(raw.matches('\n').count(), 4358);
    assert_eq!(raw.split('\n').filter(|l| *l == " ").count(), 1467);
    assert!(raw.starts_with(" \n = Robert Boulter = \n \n Robert Boulter is"));
    assert!(!raw.contains('\r'));
    // the two heading-shaped sentence fragments get no blank lines, but still start pages
    assert!(raw.contains(" ωc \n = 1 rad / s and a nominal impedance k = \n 1 Ω ."));
    assert_eq!(split_pages(&raw).len(), 62);
}

#[test]
fn wikitext_helpers() {
    assert_eq!(count_words(" a b \n c "), 5); // ['', 'a', 'b', 'c', '']
    assert_eq!(count_words("a"), 1);
    assert_eq!(
        wikitext_detokenizer("( a , b ) and \" x \" 1 @,@ 000 s ' \n [ c ]"),
        "(a, b) and \"x\" 1,000 s'\n[c]"
    );
    // quotes pair left to right across the text, like re.sub
    assert_eq!(wikitext_detokenizer("' a ' b ' c"), "'a' b ' c");
    assert_eq!(wikitext_detokenizer("x /' 5/ y"), "x /'[0-9]/ y");
    let pages =
        pages_from_stripped(" = A = \r\n x . \r\n = = S = = \r\n Y . \r\n = B = \r\n Z . \r\n");
    assert_eq!(pages.len(), 2);
    assert_eq!(
        pages[0].page,
        " = A = \n \n x . \n \n = = S = = \n \n Y . \n \n "
    );
    assert_eq!(pages[1].page, " = B = \n \n Z . \n");
    assert_eq!(pages[1].text, " = B =\n\nZ.\n");
}

#[test]
fn wikitext_metrics() {
    let data = fixtures();
    let t = WikiText::load(&load(&data, "wikitext")).unwrap();
    let docs: Vec<_> = (0..2)
        .map(|i| {
            t.process(
                i,
                &[Response::Rolling {
                    ll: -1000.0,
                    tokens: 10,
                }],
            )
        })
        .collect();
    let (p0, p1) = (&t.pages()[0], &t.pages()[1]);
    let specs = t.metrics();
    assert_eq!(
        specs.iter().map(|s| s.key()).collect::<Vec<_>>(),
        [
            "word_perplexity,none",
            "byte_perplexity,none",
            "bits_per_byte,none"
        ]
    );
    assert!(specs.iter().all(|s| !s.higher_is_better));
    let words = (p0.words + p1.words) as f64;
    let bytes = (p0.bytes + p1.bytes) as f64;
    let wp = aggregate_docs(&specs[0], &docs).value;
    let bp = aggregate_docs(&specs[1], &docs).value;
    let bpb = aggregate_docs(&specs[2], &docs).value;
    assert!((wp - (2000.0 / words).exp()).abs() < 1e-9 * wp);
    assert!((bp - (2000.0 / bytes).exp()).abs() < 1e-12 * bp);
    assert!((bpb - 2000.0 / bytes / std::f64::consts::LN_2).abs() < 1e-12);
}

// ---------------------------------------------------------------- gsm8k

#[test]
fn gsm8k_docs_and_prompts() {
    let data = fixtures();
    let t = Gsm8k::load(&load(&data, "gsm8k")).unwrap();
    assert_eq!(t.num_docs(), 24);
    assert_eq!(t.train_docs().len(), 26);
    let fixture_prompt = t.prompt(0, 0);
    let Some(data) = full("gsm8k_docs_and_prompts (few-shot draws from the whole train split)")
    else {
        return;
    };
    let t = Gsm8k::load(&load(&data, "gsm8k")).unwrap();
    assert_eq!(t.prompt(0, 0), fixture_prompt);
    assert_eq!(t.name(), "gsm8k");
    assert_eq!(t.version(), 3.0);
    assert_eq!(t.num_docs(), 1319);
    assert_eq!(t.train_docs().len(), 7473);
    assert_eq!(t.default_shots(), 5);

    let zero = t.requests(0, 0);
    let Request::Generate {
        context,
        until,
        max_gen_toks,
    } = &zero[0]
    else {
        panic!("{zero:?}")
    };
    assert_eq!(
        context,
        "Question: Janet\u{2019}s ducks lay 16 eggs per day. She eats three for breakfast every \
         morning and bakes muffins for her friends every day with four. She sells the remainder at \
         the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make \
         every day at the farmers' market?\nAnswer:"
    );
    assert_eq!(until, &["Question:", "</s>", "<|im_end|>"]);
    assert_eq!(*max_gen_toks, 256);

    // random.Random(1234): doc 0 gets the first sample, doc 1 the second, ...
    assert_eq!(t.fewshot_indices(0, 5), [6374, 3610, 957, 61, 742]);
    assert_eq!(t.fewshot_indices(1, 5), [7462, 6610, 4769, 286, 5501]);
    assert_eq!(t.fewshot_indices(1318, 5), [220, 4179, 6064, 5599, 5541]);
    let five = t.prompt(0, 5);
    assert!(five.starts_with(
        "Question: Jen and Tyler are gymnasts practicing flips. Jen is practicing the triple-flip \
         while Tyler is practicing the double-flip. Jen did sixteen triple-flips during practice. \
         Tyler flipped in the air half the number of times Jen did. How many double-flips did \
         Tyler do?\nAnswer: Jen did 16 triple-f"
    ));
    assert!(five.ends_with(&format!("\n\n{}", t.prompt(0, 0))));
    assert_eq!(five.matches("\n\nQuestion: ").count(), 5);
    assert_eq!(five.chars().count(), 3187);
    assert_eq!(
        sha(&five),
        "32680f263ba83280e98a8a24ceefed10a722a4cdcd9f4d78e93c45d43143ca66"
    );
    let Request::Generate { context, .. } = &t.requests(0, 5)[0] else {
        panic!()
    };
    assert_eq!(context, &five);
    // deterministic regardless of call order
    assert_eq!(t.fewshot_indices(1, 5), [7462, 6610, 4769, 286, 5501]);
}

#[test]
fn gsm8k_matchers_on_tricky_strings() {
    // strict-match: "#### (\-?[0-9\.\,]+)", first match
    assert_eq!(strict_match("so #### -7"), "-7");
    assert_eq!(strict_match("#### 1,234.50."), "1,234.50.");
    assert_eq!(strict_match("#### 5 then #### 6"), "5");
    assert_eq!(strict_match("##### 12"), "12");
    assert_eq!(strict_match("#### x #### 3"), "3");
    assert_eq!(strict_match("#### $5"), "[invalid]");
    assert_eq!(strict_match("The answer is $1,234.50."), "[invalid]");
    assert_eq!(strict_match("no number here"), "[invalid]");
    assert_eq!(strict_match("#### --5"), "[invalid]");

    // flexible-extract: "(-?[$0-9.,]{2,})|(-?[0-9]+)", last match
    assert_eq!(flexible_extract("The answer is $1,234.50."), "$1,234.50.");
    assert_eq!(flexible_extract("#### -7"), "-7");
    assert_eq!(flexible_extract("no number here"), "[invalid]");
    assert_eq!(flexible_extract("3 apples and 4 pears make 7 fruits"), "7");
    assert_eq!(flexible_matches("3 apples, 4 pears: 7."), ["3", "4", "7."]);
    assert_eq!(flexible_matches("Wait... 5"), ["...", "5"]);
    assert_eq!(flexible_matches("a-b -$ - 9 -12 x-3"), ["9", "-12", "-3"]);
    assert_eq!(flexible_matches("$ $$ ,"), ["$$"]);
    assert_eq!(flexible_extract("It costs $18.00 per day, so 2 days"), "2");

    // exact_match normalisation: ",", "\$", "(?s).*#### ", "\.$", then lower-case
    assert_eq!(normalize_exact_match("$1,234.50."), "1234.50");
    assert_eq!(normalize_exact_match("Step 1\n#### 1,234"), "1234");
    assert_eq!(normalize_exact_match("a #### b #### 7"), "7");
    assert_eq!(normalize_exact_match("18.\n"), "18\n");
    assert_eq!(normalize_exact_match("[INVALID]"), "[invalid]");
    assert!(exact_match("$1,234.50.", "blah <<x>>\n#### 1,234.50"));
    assert!(!exact_match("[invalid]", "#### 18"));
    assert!(exact_match("-7", "#### -7"));
}

#[test]
fn gsm8k_process_synthetic_generations() {
    let data = fixtures();
    let t = Gsm8k::load(&load(&data, "gsm8k")).unwrap(); // doc 0's answer ends "#### 18"
    let em = |text: &str| {
        let r = t.process(
            0,
            &[Response::Generate {
                text: text.to_string(),
            }],
        );
        (
            r.metrics["exact_match,strict-match"].value,
            r.metrics["exact_match,flexible-extract"].value,
        )
    };
    assert_eq!(
        em(" Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $18.\n#### 18"),
        (1.0, 1.0)
    );
    assert_eq!(em(" She makes $18."), (0.0, 1.0));
    assert_eq!(em(" #### 18.\n\n"), (1.0, 1.0));
    assert_eq!(em(" #### 17\nActually 18"), (0.0, 1.0));
    assert_eq!(em(" #### 18\nand then 20 more"), (1.0, 0.0));
    assert_eq!(em(" I do not know."), (0.0, 0.0));
    assert_eq!(em(""), (0.0, 0.0));
    let specs = t.metrics();
    assert_eq!(
        specs.iter().map(|s| s.key()).collect::<Vec<_>>(),
        ["exact_match,strict-match", "exact_match,flexible-extract"]
    );
    let r = t.process(0, &[Response::Generate { text: "x".into() }]);
    assert!(r.target.ends_with("#### 18"));
}

// ---------------------------------------------------------------- probes

#[test]
fn probe_suite_names_requests_and_metrics() {
    let all = ProbeTask::all(DEFAULT_PROBES);
    let names: Vec<&str> = all.iter().map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "k2_agreement",
            "k2_arithmetic",
            "k2_facts",
            "k2_copy",
            "k2_code_brackets"
        ]
    );
    for t in &all {
        assert_eq!(t.num_docs(), 200);
        assert_eq!(t.version(), 1.0);
        assert_eq!(t.default_shots(), 0);
        let k = t.probes()[0].choices.len();
        assert_eq!(t.chance(), Some(1.0 / k as f64));
        let reqs = t.requests(0, 0);
        assert_eq!(reqs.len(), k);
        for (r, c) in reqs.iter().zip(&t.probes()[0].choices) {
            assert_eq!(
                r,
                &Request::Loglikelihood {
                    context: t.probes()[0].context.clone(),
                    continuation: format!(" {c}"),
                }
            );
        }
    }
    assert!(ProbeTask::new("nope", 5).is_none());

    let t = ProbeTask::new("agreement", 10).unwrap();
    assert_eq!(t.name(), "k2_agreement");
    assert_eq!(t.chance(), Some(0.5));
    // fingerprints differ with the probe set and are stable
    let f10 = t.fingerprint();
    assert_eq!(f10, ProbeTask::new("agreement", 10).unwrap().fingerprint());
    assert_ne!(f10, ProbeTask::new("agreement", 11).unwrap().fingerprint());
    assert_ne!(f10, ProbeTask::new("facts", 10).unwrap().fingerprint());
    // few-shot: held-out probes after the evaluated set, "ctx choice\n\n" each
    let ctx = t.context(3, 2);
    assert!(ctx.ends_with(&format!("\n\n{}", t.probes()[3].context)));
    assert_eq!(ctx.matches("\n\n").count(), 2);
}

#[test]
fn probe_metrics_on_synthetic_responses() {
    let t = ProbeTask::new("arithmetic", 8).unwrap();
    let mut docs = Vec::new();
    for (i, p) in t.probes().iter().enumerate() {
        // the gold is most likely on even docs; choice 0 (or 1 if gold) on odd docs
        let wrong = if p.gold == 0 { 1 } else { 0 };
        let best = if i % 2 == 0 { p.gold } else { wrong };
        let resps: Vec<Response> = (0..p.choices.len())
            .map(|c| Response::Loglikelihood {
                ll: if c == best {
                    -1.0
                } else {
                    -100.0 * (c + 1) as f64
                },
                is_greedy: false,
            })
            .collect();
        let r = t.process(i, &resps);
        assert_eq!(r.target, p.choices[p.gold]);
        assert_eq!(r.prediction, p.choices[best]);
        docs.push(r);
    }
    let specs = t.metrics();
    assert_eq!(
        specs.iter().map(|s| s.key()).collect::<Vec<_>>(),
        ["acc,none", "acc_norm,none"]
    );
    let acc = aggregate_docs(&specs[0], &docs);
    assert_eq!(acc.value, 0.5);
    // 4 ones and 4 zeros: stddev sqrt(2/7), stderr sqrt(2/7)/sqrt(8)
    assert!((acc.stderr.unwrap() - (2.0f64 / 7.0).sqrt() / 8f64.sqrt()).abs() < 1e-12);

    // acc_norm divides by the choice's character length (no delimiter), ties -> first index
    let choices = vec!["a".to_string(), "bbbbbb".to_string()];
    assert_eq!(mc_acc(&[-10.0, -12.0], &choices, 1), (false, true));
    assert_eq!(mc_acc(&[-10.0, -12.0], &choices, 0), (true, false));
    assert!(mc_acc(&[-5.0, -5.0], &choices, 0).0);
}
