//! lm-eval task YAMLs as k2 tasks, through the registry a user's `--tasks` goes through: the
//! prompts and requests each output type makes (compared with the strings lm-eval 0.4 builds for
//! the same config, written out by hand), the metrics and filters, and bad input.

use std::path::Path;

use k2_eval::datasets::DataSource;
use k2_eval::evaluate::run_task;
use k2_eval::registry::select;
use k2_eval::scorer::RuleScorer;
use k2_eval::yaml_tasks::task_index::TaskIndex;
use k2_eval::{Request, Response};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(
        dir.join(name),
        text.replace("{dir}", &dir.display().to_string()),
    )
    .unwrap();
}

fn jsonl(dir: &Path, name: &str, rows: &[serde_json::Value]) {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join(name), text).unwrap();
}

/// Log-likelihood: minus the continuation's length, and -10 for an empty context (so
/// `acc_mutual_info` differs from `acc`); generations come from `gen`.
fn rule(gen: fn(&str) -> String) -> impl Fn(&Request) -> Response {
    move |r| match r {
        Request::Loglikelihood {
            context,
            continuation,
        } => Response::Loglikelihood {
            ll: if context.is_empty() {
                -10.0
            } else {
                -(continuation.len() as f64)
            },
            is_greedy: continuation.len() < 4,
        },
        Request::Rolling { text } => Response::Rolling {
            ll: -(text.len() as f64),
            tokens: 1,
        },
        Request::Generate { context, .. } => Response::Generate { text: gen(context) },
    }
}

fn fixtures(dir: &Path) {
    jsonl(
        dir,
        "qa_train.jsonl",
        &[
            serde_json::json!({"question": " What is red? ", "choices": ["apple", "sky"], "label": 0}),
            serde_json::json!({"question": "What is blue?", "choices": ["grass", "sky"], "label": 1}),
            serde_json::json!({"question": "Unused?", "choices": ["x", "y"], "label": 0}),
        ],
    );
    jsonl(
        dir,
        "qa_test.jsonl",
        &[
            serde_json::json!({"question": "What is green?", "choices": ["grass", "a very long answer"], "label": 0}),
            serde_json::json!({"question": "What is big?", "choices": ["an elephant", "ant"], "label": 0}),
        ],
    );
    write(
        dir,
        "qa.yaml",
        r#"task: toy_qa
dataset_path: json
dataset_kwargs:
  data_files:
    train: {dir}/qa_train.jsonl
    test: {dir}/qa_test.jsonl
output_type: multiple_choice
training_split: train
test_split: test
fewshot_config:
  sampler: first_n
description: "Answer the questions.\n\n"
doc_to_text: "Question: {{question.strip()}}\nAnswer:"
doc_to_choice: "{{choices}}"
doc_to_target: "{{label}}"
num_fewshot: 2
metric_list:
  - metric: acc
  - metric: acc_norm
  - metric: acc_mutual_info
metadata:
  version: 2.0
"#,
    );
    jsonl(
        dir,
        "math.jsonl",
        &[
            serde_json::json!({"question": "2+2?", "answer": "four #### 4"}),
            serde_json::json!({"question": "4+4?", "answer": "eight #### 8"}),
        ],
    );
    write(
        dir,
        "_math_base",
        r#"dataset_path: json
dataset_kwargs:
  data_files:
    test: {dir}/math.jsonl
test_split: test
output_type: generate_until
doc_to_text: "Q: {{question}}\nA:"
doc_to_target: "{{answer.split('#### ')[-1]}}"
generation_kwargs:
  until: ["\n\n", "Q:"]
  do_sample: false
  max_gen_toks: 32
"#,
    );
    write(
        dir,
        "math.yaml",
        r#####"include: _math_base
task: toy_math
fewshot_config:
  sampler: first_n
  samples:
    - question: "1+1?"
      answer: "so #### 2"
num_fewshot: 1
filter_list:
  - name: strict
    filter:
      - function: regex
        regex_pattern: "#### (\\-?[0-9]+)"
      - function: take_first
  - name: loose
    filter:
      - function: regex
        regex_pattern: "(-?[0-9]+)"
        group_select: -1
      - function: take_first
metric_list:
  - metric: exact_match
    ignore_case: true
    regexes_to_ignore: [",", "\\.$"]
"#####,
    );
    jsonl(
        dir,
        "lamb.jsonl",
        &[serde_json::json!({"text": "the cat sat on the mat"})],
    );
    write(
        dir,
        "lamb.yaml",
        r#"task: toy_lambada
tag: toy_tag
dataset_path: json
dataset_kwargs:
  data_files:
    test: {dir}/lamb.jsonl
test_split: test
output_type: loglikelihood
doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}"
doc_to_target: "{{' '+text.split(' ')[-1]}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
"#,
    );
    jsonl(
        dir,
        "wino.jsonl",
        &[
            serde_json::json!({"sentence": "The cup fell because _ was slippery.", "option1": "the cup", "option2": "the table", "answer": "1"}),
        ],
    );
    write(
        dir,
        "wino.yaml",
        r#"task: toy_wino
tag: toy_tag
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {dir}/wino.jsonl
validation_split: validation
output_type: multiple_choice
doc_to_text: "{{ (answer | int) - 1 }}"
doc_to_target: "{{ sentence.split('_')[1].strip() }}"
doc_to_choice: "{{ [sentence.split('_')[0] + option1, sentence.split('_')[0] + option2] }}"
"#,
    );
    write(
        dir,
        "group.yaml",
        r#"group: toy_group
task:
  - toy_qa
  - toy_tag
aggregate_metric_list:
  - metric: acc
    weight_by_size: true
metadata:
  version: 1.0
"#,
    );
}

#[test]
fn prompts_and_requests_are_lm_evals() {
    let d = tempfile::tempdir().unwrap();
    fixtures(d.path());
    let index = TaskIndex::build(&[d.path().to_path_buf()]).unwrap();
    let sel = select(
        &["toy_group".into(), "toy_math".into()],
        &DataSource::None,
        &[],
        None,
        10,
        &index,
    )
    .unwrap();
    let names: Vec<&str> = sel.tasks.iter().map(|t| t.task.name()).collect();
    assert_eq!(
        names,
        ["toy_qa", "toy_lambada", "toy_wino", "toy_math"],
        "group then tag members, in order"
    );
    assert_eq!(sel.groups.len(), 1);
    assert_eq!(sel.groups[0].leaves, ["toy_qa", "toy_lambada", "toy_wino"]);

    // Multiple choice: description, two first_n shots (the train split), choices via a template,
    // target via "{{label}}" (digits, so an index), mutual-information requests with "" contexts.
    let qa = &sel.tasks[0];
    assert_eq!(qa.shots, 2);
    let reqs = qa.task.requests(0, qa.shots);
    let ctx = "Answer the questions.\n\nQuestion: What is red?\nAnswer: apple\n\nQuestion: What is blue?\nAnswer: sky\n\nQuestion: What is green?\nAnswer:";
    assert_eq!(
        reqs,
        vec![
            Request::Loglikelihood {
                context: ctx.into(),
                continuation: " grass".into()
            },
            Request::Loglikelihood {
                context: ctx.into(),
                continuation: " a very long answer".into()
            },
            Request::Loglikelihood {
                context: "".into(),
                continuation: " grass".into()
            },
            Request::Loglikelihood {
                context: "".into(),
                continuation: " a very long answer".into()
            },
        ]
    );
    let scorer = RuleScorer::new(rule(|_| String::new()));
    let (res, samples) = run_task(&scorer, qa.task.as_ref(), qa.shots, None, &mut |_| {}).unwrap();
    let m = |n: &str| res.metrics.iter().find(|x| x.name == n).unwrap().value;
    // doc 0: gold 0 (" grass" is shorter: acc 1; mutual info: both -10 unconditional, same pick);
    // doc 1: gold 0 (" an elephant" longer than " ant": acc 0).
    assert_eq!(m("acc"), 0.5);
    assert_eq!(
        m("acc_norm"),
        0.5,
        "per character: -12/11 < -4/3? no: -1.09 > -1.33, so doc 1 picks 0"
    );
    assert_eq!(samples[0].metrics["acc_mutual_info,none"], 1.0);
    assert_eq!(res.version, 2.0);

    // Loglikelihood: no target delimiter, the target's own leading space.
    let lamb = &sel.tasks[1];
    assert_eq!(
        lamb.task.requests(0, 0),
        vec![Request::Loglikelihood {
            context: "the cat sat on the".into(),
            continuation: " mat".into(),
        }]
    );
    let (res, _) = run_task(&scorer, lamb.task.as_ref(), 0, None, &mut |_| {}).unwrap();
    assert_eq!(
        res.metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["perplexity", "acc"]
    );
    assert!((res.metrics[0].value - 4f64.exp()).abs() < 1e-9);

    // Multiple inputs (doc_to_text gives an index): one context per choice, the same
    // continuation, gold = that index.
    let wino = &sel.tasks[2];
    assert_eq!(
        wino.task.requests(0, 0),
        vec![
            Request::Loglikelihood {
                context: "The cup fell because the cup".into(),
                continuation: " was slippery.".into()
            },
            Request::Loglikelihood {
                context: "The cup fell because the table".into(),
                continuation: " was slippery.".into()
            },
        ]
    );

    // Generation: fixed few-shot samples, `until` and max tokens from generation_kwargs, two
    // filters, exact_match with its options.
    let math = &sel.tasks[3];
    assert_eq!(
        math.task.requests(1, 1),
        vec![Request::Generate {
            context: "Q: 1+1?\nA: 2\n\nQ: 4+4?\nA:".into(),
            until: vec!["\n\n".into(), "Q:".into()],
            max_gen_toks: 32,
        }]
    );
    let gen = RuleScorer::new(rule(|ctx| {
        if ctx.ends_with("2+2?\nA:") {
            " so #### 4.".into()
        } else {
            " 7 or maybe 8".into()
        }
    }));
    let (res, samples) = run_task(&gen, math.task.as_ref(), 1, None, &mut |_| {}).unwrap();
    assert_eq!(samples[0].filtered["strict"], "4");
    assert_eq!(samples[1].filtered["strict"], "[invalid]");
    assert_eq!(
        samples[1].filtered["loose"], "8",
        "group_select -1 takes the last match"
    );
    let v = |f: &str| res.metrics.iter().find(|m| m.filter == f).unwrap().value;
    assert_eq!((v("strict"), v("loose")), (0.5, 1.0));
}

/// `gen_prefix` as lm-eval 0.4.13's `build_qa_turn` places it: after the question (with the
/// target delimiter where neither side has whitespace at the join), before each few-shot answer,
/// and opening the generation; a few-shot override from `fewshot_config`.
#[test]
fn gen_prefix_opens_the_answer() {
    let d = tempfile::tempdir().unwrap();
    fixtures(d.path());
    write(
        d.path(),
        "prefixed.yaml",
        "include: _math_base\ntask: toy_prefixed\ngen_prefix: \"The answer is\"\nnum_fewshot: 1\n\
         fewshot_config:\n  sampler: first_n\n  samples:\n    - question: \"1+1?\"\n      answer: \"so #### 2\"\n",
    );
    write(
        d.path(),
        "prefixed_fs.yaml",
        "include: prefixed.yaml\ntask: toy_prefixed_fs\nfewshot_config:\n  sampler: first_n\n  gen_prefix: \"{{ ' Sum:' }}\"\n  \
         samples:\n    - question: \"1+1?\"\n      answer: \"so #### 2\"\n",
    );
    let index = TaskIndex::build(&[d.path().to_path_buf()]).unwrap();
    let sel = select(
        &["toy_prefixed".into(), "toy_prefixed_fs".into()],
        &DataSource::None,
        &[],
        None,
        10,
        &index,
    )
    .unwrap();
    let context = |i: usize| match &sel.tasks[i].task.requests(1, 1)[0] {
        Request::Generate { context, .. } => context.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        context(0),
        "Q: 1+1?\nA: The answer is 2\n\nQ: 4+4?\nA: The answer is"
    );
    // The few-shot prefix starts with a space: no target delimiter, and none before the answer.
    assert_eq!(
        context(1),
        "Q: 1+1?\nA: Sum: 2\n\nQ: 4+4?\nA: The answer is"
    );
}

fn error_of(dir: &Path, task: &str) -> String {
    let index = TaskIndex::build(&[dir.to_path_buf()]).unwrap();
    match select(&[task.into()], &DataSource::None, &[], None, 10, &index) {
        Ok(_) => panic!("{task} should not load"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_yaml_is_an_error_naming_the_file_and_the_field() {
    let d = tempfile::tempdir().unwrap();
    fixtures(d.path());
    let p = d.path();
    // (file, its text, the task asked for, what the error names)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "bad_type.yaml",
            "task: bad_type\ndataset_path: json\noutput_type: multiple_guess\ndoc_to_text: x\ndoc_to_target: y\n",
            "bad_type",
            &["bad_type.yaml", "field `output_type`", "multiple_guess"],
        ),
        (
            "hook.yaml",
            "include: qa.yaml\ntask: hook\nprocess_docs: !function utils.process_docs\n",
            "hook",
            &["Python hook", "!function utils.process_docs", "hook.yaml"],
        ),
        (
            "metric.yaml",
            "include: qa.yaml\ntask: metric\nmetric_list:\n  - metric: rouge\n",
            "metric",
            &["metric `rouge`", "metric_list[0].metric"],
        ),
        (
            "tmpl.yaml",
            "include: qa.yaml\ntask: tmpl\ndoc_to_text: \"{{'{}'.format(question)}}\"\n",
            "tmpl",
            &["doc_to_text", "`.format()`"],
        ),
        (
            "field.yaml",
            "include: qa.yaml\ntask: field\ndoc_to_text: \"{{questoin}}\"\n",
            "field",
            &["field `doc_to_text`", "qa_test.jsonl:1", "undefined"],
        ),
        (
            "unknown_field.yaml",
            "include: qa.yaml\ntask: unknown_field\ndoc_to_txt: x\n",
            "unknown_field",
            &["field `doc_to_txt`", "not a field"],
        ),
        // A file that does not parse: `--tasks` names it and the line, not an unknown task.
        (
            "unparsable.yaml",
            "task: unparsable\ndataset_path: json\ndoc_to_text: [unclosed\n",
            "unparsable",
            &["unparsable.yaml", "does not load", "line"],
        ),
    ];
    for (file, text, _, _) in cases {
        write(p, file, text);
    }
    for (_, _, task, names) in cases {
        let e = error_of(p, task);
        assert!(names.iter().all(|n| e.contains(n)), "{task}: {e}");
    }

    write(p, "loop_a.yaml", "include: loop_b.yaml\ntask: loop_a\n");
    write(p, "loop_b.yaml", "include: loop_a.yaml\n");
    let index = TaskIndex::build(&[p.to_path_buf()]).unwrap();
    assert!(
        index
            .broken
            .iter()
            .any(|(f, e)| f.ends_with("loop_a.yaml") && e.contains("circular include")),
        "{:?}",
        index.broken
    );

    let e = error_of(p, "toy_qaa");
    assert!(e.contains("did you mean `toy_qa`"), "{e}");
}
