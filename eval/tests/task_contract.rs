//! Every registered task's contract, without a model: through a [`RuleScorer`], each task asks
//! exactly the requests its documents list (in the order the runner sends them), gets one
//! response per request, and reports the metrics it declares, finite, with proportions in
//! [0, 1] — the same on a second run.

use std::collections::BTreeSet;
use std::path::Path;

use k2_eval::datasets::DataSource;
use k2_eval::evaluate::run_task;
use k2_eval::registry::{build, default_shots, REGISTRY};
use k2_eval::scorer::RuleScorer;
use k2_eval::{Request, Response};

/// The repository's Hub-schema fixtures (`fixtures/datasets`).
fn data() -> DataSource {
    DataSource::Local(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/datasets"))
}

/// A deterministic answer that depends on the whole request.
fn rule(r: &Request) -> Response {
    let h = k2_archive::sha256_bytes(serde_json::to_string(r).unwrap().as_bytes());
    let x = u64::from_str_radix(&h[..8], 16).unwrap();
    match r {
        Request::Loglikelihood { .. } => Response::Loglikelihood {
            ll: -((x % 10_000) as f64) / 100.0,
            is_greedy: x.is_multiple_of(3),
        },
        Request::Rolling { text } => Response::Rolling {
            ll: -(text.len() as f64) / 3.0,
            tokens: text.len() / 4 + 1,
        },
        Request::Generate { .. } => Response::Generate {
            text: format!(" The answer is {}.\n#### {}", x % 50, x % 50),
        },
    }
}

#[test]
fn every_registered_task_keeps_its_contract_without_a_model() {
    let data = data();
    let mut checked = Vec::new();
    for e in REGISTRY {
        let name = if e.subtasks {
            format!("{}_anatomy", e.name)
        } else {
            e.name.to_string()
        };
        let shots = default_shots(&name);
        let task = build(&name, &data, shots > 0, 12).unwrap_or_else(|err| panic!("{name}: {err}"));
        let limit = 6;
        let n = task.num_docs().min(limit);
        let scorer = RuleScorer::new(rule);
        let (result, samples) = run_task(&scorer, task.as_ref(), shots, Some(limit), &mut |_| {})
            .unwrap_or_else(|err| panic!("{name}: {err}"));

        // The requests the scorer saw: every loglikelihood request in document order, then the
        // rolling ones, then the generations.
        let per_doc: Vec<Vec<Request>> = (0..n).map(|d| task.requests(d, shots)).collect();
        let kind = |r: &Request| match r {
            Request::Loglikelihood { .. } => 0,
            Request::Rolling { .. } => 1,
            Request::Generate { .. } => 2,
        };
        let mut expected: Vec<Request> = per_doc.iter().flatten().cloned().collect();
        expected.sort_by_key(kind); // stable: document order within a kind
        assert_eq!(*scorer.seen.borrow(), expected, "{name}");

        assert_eq!(samples.len(), n, "{name}");
        for (d, s) in samples.iter().enumerate() {
            assert_eq!(s.doc_id, d, "{name}");
            assert_eq!(s.arguments, per_doc[d], "{name} doc {d}");
            assert_eq!(s.resps.len(), s.arguments.len(), "{name} doc {d}");
            for (a, r) in s.arguments.iter().zip(&s.resps) {
                assert_eq!(
                    *r,
                    rule(a),
                    "{name} doc {d}: a response went to another request"
                );
            }
            assert!(s.metrics.values().all(|v| v.is_finite()), "{name} doc {d}");
        }

        let declared: BTreeSet<(String, String)> = task
            .metrics()
            .into_iter()
            .map(|m| (m.name, m.filter))
            .collect();
        let reported: BTreeSet<(String, String)> = result
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.filter.clone()))
            .collect();
        assert_eq!(reported, declared, "{name}");
        for m in &result.metrics {
            assert!(m.value.is_finite(), "{name} {}: {}", m.name, m.value);
            if m.name.starts_with("acc") || m.name == "exact_match" {
                assert!(
                    (0.0..=1.0).contains(&m.value),
                    "{name} {}: {}",
                    m.name,
                    m.value
                );
            }
        }
        assert_eq!(
            (result.task.as_str(), result.n_shot, result.n_effective),
            (name.as_str(), shots, n),
            "{name}"
        );

        // The same answers, the same result.
        let (again, _) = run_task(
            &RuleScorer::new(rule),
            task.as_ref(),
            shots,
            Some(limit),
            &mut |_| {},
        )
        .unwrap();
        let values = |r: &k2_eval::results::TaskResult| -> Vec<(f64, Option<f64>)> {
            r.metrics.iter().map(|m| (m.value, m.stderr)).collect()
        };
        assert_eq!(values(&again), values(&result), "{name}");
        checked.push(name);
    }
    assert_eq!(checked.len(), REGISTRY.len());
    println!(
        "contract kept by {} tasks: {}",
        checked.len(),
        checked.join(", ")
    );
}
