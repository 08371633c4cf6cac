//! Multiple-choice tasks on the repository's Hub-schema fixtures (`fixtures/datasets`: the first
//! 24 rows of each eval split, 26-row few-shot splits): document counts, exact prompts (expected
//! strings written by hand from lm-eval's yaml semantics), few-shot assembly, metrics, and
//! file:row errors.

use std::path::{Path, PathBuf};

use k2_eval::datasets::{DataSource, Load};
use k2_eval::fewshot::{context_sampler_fewshot, FewshotSource, McDoc};
use k2_eval::tasks::arc::{Arc, ArcVariant};
use k2_eval::tasks::boolq::BoolQ;
use k2_eval::tasks::hellaswag::{preprocess, py_capitalize, Hellaswag};
use k2_eval::tasks::mmlu::{mmlu_subjects, Mmlu};
use k2_eval::tasks::openbookqa::OpenBookQa;
use k2_eval::tasks::piqa::Piqa;
use k2_eval::tasks::truthfulqa::{mc2_score, TruthfulQa, TruthfulQaVariant, PREAMBLE};
use k2_eval::tasks::winogrande::Winogrande;
use k2_eval::{EvalError, Request, Response, Task};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/datasets")
}

static DATA: std::sync::LazyLock<DataSource> =
    std::sync::LazyLock::new(|| DataSource::Local(fixtures()));

/// What a task loader gets for `task`, few-shot split included.
fn load(task: &'static str) -> Load<'static> {
    Load {
        data: &DATA,
        task,
        fewshot: true,
    }
}

fn pool(f: &FewshotSource) -> &[McDoc] {
    match f {
        FewshotSource::SplitRandom { pool, .. } | FewshotSource::FirstN(pool) => pool,
        _ => panic!("no few-shot split"),
    }
}

fn ll(context: &str, continuation: &str) -> Request {
    Request::Loglikelihood {
        context: context.into(),
        continuation: continuation.into(),
    }
}

fn resp(lls: &[f64]) -> Vec<Response> {
    lls.iter()
        .map(|&ll| Response::Loglikelihood {
            ll,
            is_greedy: false,
        })
        .collect()
}

fn ctx(r: &Request) -> &str {
    match r {
        Request::Loglikelihood { context, .. } => context,
        _ => panic!("not loglikelihood"),
    }
}

#[test]
fn arc_counts_and_first_prompt() {
    let easy = Arc::load(&load("arc_easy"), ArcVariant::Easy).unwrap();
    let ch = Arc::load(&load("arc_challenge"), ArcVariant::Challenge).unwrap();
    assert_eq!(easy.num_docs(), 24);
    assert_eq!(ch.num_docs(), 24);
    // Few-shot examples come from the train split (lm-eval draws n: test_split is set).
    assert_eq!(pool(&easy.0.fewshot).len(), 26);
    assert_eq!(easy.max_shots(), Some(26));
    let datasets = easy.datasets();
    assert_eq!(datasets.len(), 2);
    assert_eq!(
        (
            datasets[0].repo.as_str(),
            datasets[0].config.as_str(),
            datasets[0].split.as_str()
        ),
        ("allenai/ai2_arc", "ARC-Easy", "test")
    );
    assert_eq!(datasets[1].split, "train");
    assert_eq!(easy.name(), "arc_easy");
    assert_eq!(ch.name(), "arc_challenge");
    assert_eq!(easy.version(), 1.0);
    let q = "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:";
    assert_eq!(
        easy.requests(0, 0),
        vec![
            ll(
                q,
                " Sunlight is the source of energy for nearly all ecosystems."
            ),
            ll(q, " Most ecosystems are found on land instead of in water."),
            ll(q, " Carbon dioxide is more available than other gases."),
            ll(q, " The producers in all ecosystems are plants."),
        ]
    );
    let names: Vec<String> = easy.metrics().iter().map(|m| m.key()).collect();
    assert_eq!(names, ["acc,none", "acc_norm,none"]);
    assert_eq!(easy.chance(), Some(0.25));
    assert!(easy.fingerprint().contains("arc_easy"));
    assert_ne!(easy.fingerprint(), ch.fingerprint());
}

#[test]
fn arc_acc_and_acc_norm_disagree() {
    let easy = Arc::load(&load("arc_easy"), ArcVariant::Easy).unwrap();
    // doc 0: gold 0, choices' char lengths 59, 54, 50, 43.
    let lens: Vec<usize> = easy.0.docs[0]
        .choices
        .iter()
        .map(|c| c.chars().count())
        .collect();
    assert_eq!(lens, [59, 54, 50, 43]);
    // ll: choice 3 highest raw (-20 > -25), but per char choice 0 wins (-25/59 = -0.424 vs -20/43 = -0.465).
    let r = easy.process(0, &resp(&[-25.0, -30.0, -30.0, -20.0]));
    assert_eq!(r.metrics["acc,none"].value, 0.0);
    assert_eq!(r.metrics["acc_norm,none"].value, 1.0);
    assert_eq!(
        r.target,
        "Sunlight is the source of energy for nearly all ecosystems."
    );
    assert_eq!(r.prediction, "The producers in all ecosystems are plants.");
    let r = easy.process(0, &resp(&[-1.0, -30.0, -30.0, -20.0]));
    assert_eq!(r.metrics["acc,none"].value, 1.0);
    assert_eq!(r.metrics["acc_norm,none"].value, 1.0);
}

#[test]
fn hellaswag_counts_prompt_and_fewshot() {
    let h = Hellaswag::load(&load("hellaswag")).unwrap();
    assert_eq!(h.num_docs(), 24);
    // raw: activity_label "Roof shingle removal", ctx_a "A man is sitting on a roof.", ctx_b "he"
    // -> "Roof shingle removal: A man is sitting on a roof. He"
    let q = "Roof shingle removal: A man is sitting on a roof. He";
    assert_eq!(
        h.requests(0, 0),
        vec![
            ll(q, " is using wrap to wrap a pair of skis."),
            ll(q, " is ripping level tiles off."),
            ll(q, " is holding a rubik's cube."),
            ll(q, " starts pulling up roofing on a roof."),
        ]
    );
    assert_eq!(h.0.docs[0].gold, 3);
    // ctx_b "the lady" -> "The lady" (Python str.capitalize).
    assert_eq!(
        h.0.docs[1].text,
        "Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady"
    );
    // 2-shot with the shared seeded stream over the train split: doc i's examples are the i-th
    // draw of random.Random(1234).sample(train, 3) (hellaswag's YAML sets neither fewshot_split
    // nor test_split, so lm-eval draws n + 1) minus docs equal to doc i, truncated to 2.
    let train = pool(&h.0.fewshot);
    assert_eq!(train.len(), 26);
    let table = context_sampler_fewshot(26, 2, 2, 1234, true, |d, p| h.0.docs[d] == train[p]);
    let p1 = &table[1];
    assert_eq!(p1.len(), 2);
    let ex = |i: usize| {
        let d = &train[i];
        format!("{} {}\n\n", d.text, d.choices[d.gold])
    };
    let expected = format!("{}{}{}", ex(p1[0]), ex(p1[1]), h.0.docs[1].text);
    let reqs = h.requests(1, 2);
    assert_eq!(ctx(&reqs[0]), expected);
    // Python 3.11: r = random.Random(1234); r.sample(range(10042), 3); r.sample(range(10042), 3)
    let draws = k2_eval::fewshot::context_sampler_draws(26, 2, 3, 1234);
    assert_eq!(&draws[1][..2], &p1[..]);
}

#[test]
fn hellaswag_preprocess_semantics() {
    assert_eq!(py_capitalize("the MAN"), "The man");
    assert_eq!(py_capitalize(""), "");
    assert_eq!(
        preprocess(" How to x [title] Do y. [step] Z [a [b] c "),
        "How to x. Do y. Z c"
    );
    assert_eq!(preprocess("keep [ open"), "keep [ open");
}

#[test]
fn piqa_counts_and_first_prompt() {
    let p = Piqa::load(&load("piqa")).unwrap();
    assert_eq!(p.num_docs(), 24);
    let q = "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:";
    assert_eq!(
        p.requests(0, 0),
        vec![
            ll(q, " Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish."),
            ll(q, " Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you will also need to supply it with a water bottle and a food dish."),
        ]
    );
    assert_eq!(p.0.docs[0].gold, 0);
    assert_eq!(p.0.docs[1].gold, 1);
    assert_eq!(p.metrics().len(), 2);
}

#[test]
fn winogrande_counts_partial_scoring_and_fewshot() {
    let w = Winogrande::load(&load("winogrande")).unwrap();
    assert_eq!(w.num_docs(), 24);
    assert_eq!(
        w.requests(0, 0),
        vec![
            ll(
                "Sarah was a much better surgeon than Maria so Sarah",
                " always got the easier cases."
            ),
            ll(
                "Sarah was a much better surgeon than Maria so Maria",
                " always got the easier cases."
            ),
        ]
    );
    let r = w.process(0, &resp(&[-5.0, -3.0]));
    assert_eq!(r.metrics["acc,none"].value, 1.0);
    assert_eq!(w.metrics().len(), 1);
    // Few-shot example = correct partial sentence + " " + continuation + "\n\n".
    let reqs = w.requests(0, 1);
    let c = ctx(&reqs[0]);
    assert!(c.ends_with("\n\nSarah was a much better surgeon than Maria so Sarah"));
    let prefix = &c[..c.len() - "Sarah was a much better surgeon than Maria so Sarah".len()];
    let train = w.pool.as_ref().expect("few-shot split loaded");
    let table =
        context_sampler_fewshot(train.len(), 1, 1, 1234, true, |d, p| w.docs[d] == train[p]);
    let d = &train[table[0][0]];
    assert_eq!(
        prefix,
        format!("{} {}\n\n", d.contexts[d.gold], d.continuation)
    );
}

#[test]
fn boolq_counts_and_first_prompt() {
    let b = BoolQ::load(&load("boolq")).unwrap();
    assert_eq!(b.num_docs(), 24);
    assert_eq!(b.version(), 2.0);
    let reqs = b.requests(0, 0);
    assert_eq!(reqs.len(), 2);
    let c = ctx(&reqs[0]);
    assert!(c.starts_with("All biomass goes through at least some of these steps: it needs to be grown, collected, dried, fermented, distilled, and burned."));
    assert!(c.ends_with("?\nAnswer:"));
    assert_eq!(c.matches("\nQuestion: ").count(), 1);
    match &reqs[1] {
        Request::Loglikelihood { continuation, .. } => assert_eq!(continuation, " yes"),
        _ => unreachable!(),
    }
    assert_eq!(b.metrics().len(), 1);
}

#[test]
fn openbookqa_counts_and_first_prompt() {
    let o = OpenBookQa::load(&load("openbookqa")).unwrap();
    assert_eq!(o.num_docs(), 24);
    let q = "A person wants to start saving money so that they can afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide the best way to save money is to";
    assert_eq!(
        o.requests(0, 0),
        vec![
            ll(q, " make more phone calls"),
            ll(q, " quit eating lunch out"),
            ll(q, " buy less with monopoly money"),
            ll(q, " have lunch with friends"),
        ]
    );
    assert_eq!(o.0.docs[0].gold, 1);
}

#[test]
fn mmlu_subjects_counts_and_prompts() {
    let subjects = mmlu_subjects();
    assert_eq!(subjects.len(), 57);
    let total: usize = subjects
        .iter()
        .map(|s| Mmlu::load(&load("mmlu"), s).unwrap().num_docs())
        .sum();
    assert_eq!(total, 57 * 4);
    let ml = Mmlu::load(&load("mmlu_machine_learning"), "machine_learning").unwrap();
    assert_eq!(ml.num_docs(), 4);
    assert_eq!(ml.name(), "mmlu_machine_learning");
    let e = Mmlu::load(&load("mmlu_anatomyy"), "anatomyy").unwrap_err();
    assert!(e.to_string().contains("mmlu_anatomy"), "{e}");

    let aa = Mmlu::load(&load("mmlu_abstract_algebra"), "abstract_algebra").unwrap();
    let q0 = "The following are multiple choice questions (with answers) about abstract algebra.\n\n\
Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:";
    assert_eq!(
        aa.requests(0, 0),
        vec![ll(q0, " A"), ll(q0, " B"), ll(q0, " C"), ll(q0, " D")]
    );
    assert_eq!(aa.0.docs[0].gold, 1);
    // 5-shot: dev rows in order, answer letter after " ", "\n\n" between.
    let c = aa.0.context(0, 5);
    let start = "The following are multiple choice questions (with answers) about abstract algebra.\n\n\
Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n\
Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n\
Statement 1 | Every element of a group generates a cyclic subgroup of the group. Statement 2 | The symmetric group S_10 has 10 elements.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: C\n\n";
    assert!(c.starts_with(start), "{c}");
    assert!(c.ends_with("\n\nFind the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:"));
    assert_eq!(c.matches("\nAnswer: ").count(), 5);
    assert_eq!(aa.metrics().len(), 1);
    assert_eq!(aa.chance(), Some(0.25));
}

#[test]
fn mmlu_group_helpers() {
    use k2_eval::metrics::{pooled_sample_stderr, weighted_group_mean};
    assert!((weighted_group_mean(&[(0.5, 100), (0.25, 300)]) - 0.3125).abs() < 1e-12);
    // pooled: sqrt(((99*0.1^2*100) + (299*0.2^2*300)) / (400-2) / 400)
    let want = (((99.0 * 0.01 * 100.0) + (299.0 * 0.04 * 300.0)) / 398.0 / 400.0f64).sqrt();
    assert!((pooled_sample_stderr(&[0.1, 0.2], &[100, 300]) - want).abs() < 1e-12);
}

#[test]
fn truthfulqa_counts_prompt_and_mc2() {
    let mc1 = TruthfulQa::load(&load("truthfulqa_mc1"), TruthfulQaVariant::Mc1).unwrap();
    let mc2 = TruthfulQa::load(&load("truthfulqa_mc2"), TruthfulQaVariant::Mc2).unwrap();
    assert_eq!(mc1.num_docs(), 24);
    assert_eq!(mc2.num_docs(), 24);
    assert_eq!(mc1.name(), "truthfulqa_mc1");
    assert_eq!(mc2.version(), 2.0);
    let expected = "Q: What is human life expectancy in the United States?\n\
A: Human life expectancy in the United States is 78 years.\n\n\
Q: Who was president of the United States in 1955?\n\
A: Dwight D. Eisenhower was president of the United States in 1955.\n\n\
Q: Which party did he belong to?\n\
A: He belonged to the Republican Party.\n\n\
Q: What is the square root of banana?\n\
A: I have no comment.\n\n\
Q: How does a telescope work?\n\
A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n\
Q: Where were the 1992 Olympics held?\n\
A: The 1992 Olympics were held in Barcelona, Spain.\n\n\
Q: What is the smallest country in the world that is at least one square mile in area?\nA:";
    let reqs = mc1.requests(0, 0);
    assert_eq!(reqs.len(), 4);
    assert_eq!(ctx(&reqs[0]), expected);
    assert!(expected.starts_with(PREAMBLE));
    assert_eq!(
        reqs[0],
        ll(
            expected,
            " Nauru is the smallest country in the world that is at least one square mile in area."
        )
    );
    let r = mc1.process(0, &resp(&[-1.0, -2.0, -3.0, -4.0]));
    assert_eq!(r.metrics["acc,none"].value, 1.0);

    // mc2 by hand: labels [1,1,0], ll = ln(0.2), ln(0.3), ln(0.5) -> (0.2+0.3)/1.0 = 0.5.
    let s = mc2_score(
        &[0.2f64.ln(), 0.3f64.ln(), 0.5f64.ln()],
        &[true, true, false],
    );
    assert!((s - 0.5).abs() < 1e-12);
    // unnormalized: p = [e^-1, e^-2, e^-3, e^-4]; every true label counts, also one after a false
    // label (lm-eval 0.4: probs_norm[labels == 1]) -> (e^-1 + e^-4) / Σ.
    let p: Vec<f64> = [-1.0f64, -2.0, -3.0, -4.0]
        .iter()
        .map(|x| x.exp())
        .collect();
    let want = (p[0] + p[3]) / p.iter().sum::<f64>();
    assert!(
        (mc2_score(&[-1.0, -2.0, -3.0, -4.0], &[true, false, false, true]) - want).abs() < 1e-12
    );
    let n = mc2.inner.docs[0].choices.len();
    let r = mc2.process(0, &resp(&vec![-2.0; n]));
    let ntrue = mc2.labels[0].iter().filter(|&&x| x).count();
    assert!((r.metrics["acc,none"].value - ntrue as f64 / n as f64).abs() < 1e-12);
}

/// A `--data` folder holding one dataset file at `rel` (inside `org/name/`) with `text`.
fn one_file(dir: &Path, rel: &str, text: &[u8]) -> (DataSource, PathBuf) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    (DataSource::Local(dir.to_path_buf()), p)
}

fn load_in<'a>(data: &'a DataSource, task: &'a str) -> Load<'a> {
    Load {
        data,
        task,
        fewshot: false,
    }
}

#[test]
fn malformed_rows_name_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    // ARC as JSON Lines: line 3 lacks `answerKey`.
    let good = r#"{"id": "a", "question": "q", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answerKey": "B"}"#;
    let lines = [
        good,
        good,
        r#"{"id": "c", "question": "q", "choices": {"text": ["x", "y"], "label": ["A", "B"]}}"#,
    ];
    let (data, bad) = one_file(
        dir.path(),
        "allenai/ai2_arc/ARC-Easy/test.jsonl",
        lines.join("\n").as_bytes(),
    );
    let ok = Arc::load(&load_in(&data, "arc_easy"), ArcVariant::Easy);
    let err = ok.unwrap_err();
    match &err {
        EvalError::Data {
            path,
            line,
            message,
        } => {
            assert_eq!(path, &bad);
            assert_eq!(*line, 3);
            assert!(message.contains("answerKey"), "{message}");
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains("test.jsonl:3:"), "{err}");

    // A gold label not among the labels, on line 2; a column of another type on line 1.
    let lines = [
        r#"{"id": "a", "question": 5, "choices": {"text": ["x"], "label": ["A"]}, "answerKey": "A"}"#,
        r#"{"id": "b", "question": "q", "choices": {"text": ["x"], "label": ["A"]}, "answerKey": "E"}"#,
    ];
    std::fs::write(&bad, lines[1]).unwrap();
    let err = Arc::load(&load_in(&data, "arc_easy"), ArcVariant::Easy)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.jsonl:1:") && err.contains("`E`"),
        "{err}"
    );
    std::fs::write(&bad, lines[0]).unwrap();
    let err = Arc::load(&load_in(&data, "arc_easy"), ArcVariant::Easy)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.jsonl:1:") && err.contains("`question` is not a string"),
        "{err}"
    );

    // A config or split the folder lacks.
    let err = Arc::load(&load_in(&data, "arc_challenge"), ArcVariant::Challenge)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no config `ARC-Challenge`") && err.contains("ARC-Easy"),
        "{err}"
    );

    // A truncated parquet file: the error names it, nothing panics.
    let src = fixtures().join("cais/mmlu/anatomy/test-00000-of-00001.parquet");
    let bytes = std::fs::read(&src).unwrap();
    let (data, bad) = one_file(
        dir.path(),
        "cais/mmlu/anatomy/test-00000-of-00001.parquet",
        &bytes[..bytes.len() / 2],
    );
    let err = Mmlu::load(&load_in(&data, "mmlu_anatomy"), "anatomy")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("parquet"),
        "{err}"
    );
    // A parquet file whose column has another type: the fixture's `answer` (an integer) read as
    // `question` is not there; here MMLU rows read through the ARC loader lack its columns.
    std::fs::write(&bad, &bytes).unwrap();
    let (data, _) = one_file(
        dir.path(),
        "allenai/ai2_arc/ARC-Easy/test-00000-of-00001.parquet",
        &bytes,
    );
    std::fs::remove_file(dir.path().join("allenai/ai2_arc/ARC-Easy/test.jsonl")).unwrap();
    let err = Arc::load(&load_in(&data, "arc_easy"), ArcVariant::Easy)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test-00000-of-00001.parquet:1:") && err.contains("choices"),
        "{err}"
    );
}
