//! k2's significance tests against scipy / statsmodels (tests/fixtures/stats.json, written by
//! tests/fixtures/gen_stats_fixtures.py).

use k2_analysis::stats::*;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/stats.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let tol = rel * b.abs().max(1e-300);
    assert!((a - b).abs() <= tol, "{what}: k2 {a:e} vs reference {b:e}");
}

#[test]
fn binomial_test_matches_scipy() {
    for c in fixture()["binomial_greater"].as_array().unwrap() {
        let p = binomial_sf(u(&c["k"]), u(&c["n"]), f(&c["p"]));
        close(p, f(&c["p_value"]), 1e-9, &c.to_string());
    }
}

#[test]
fn mcnemar_matches_statsmodels() {
    for c in fixture()["mcnemar"].as_array().unwrap() {
        let p = mcnemar_exact(u(&c["b"]), u(&c["c"]));
        close(p, f(&c["p_value"]), 1e-9, &c.to_string());
    }
}

#[test]
fn holm_matches_statsmodels() {
    for c in fixture()["holm"].as_array().unwrap() {
        let p: Vec<f64> = c["p"].as_array().unwrap().iter().map(f).collect();
        let want: Vec<f64> = c["adjusted"].as_array().unwrap().iter().map(f).collect();
        for (a, b) in holm(&p).iter().zip(&want) {
            close(*a, *b, 1e-12, &c.to_string());
        }
    }
}

#[test]
fn bootstrap_draws_the_same_resamples_as_the_python_reference() {
    for c in fixture()["bootstrap"].as_array().unwrap() {
        let a: Vec<f64> = c["a"].as_array().unwrap().iter().map(f).collect();
        let b: Vec<f64> = c["b"].as_array().unwrap().iter().map(f).collect();
        let d = paired_bootstrap(&a, &b, u(&c["resamples"]) as usize, u(&c["seed"])).unwrap();
        // Same resamples, same summation order: equal up to numpy's mean of the differences.
        close(d.diff, f(&c["diff"]), 1e-12, "diff");
        close(d.ci_low, f(&c["ci_low"]), 1e-12, "ci_low");
        close(d.ci_high, f(&c["ci_high"]), 1e-12, "ci_high");
        assert_eq!(d.p_value, f(&c["p_value"]));
    }
}

#[test]
fn paired_accuracy_interval_matches_the_reference() {
    let fx = fixture();
    close(Z95, f(&fx["z95"]), 1e-15, "z");
    for c in fx["paired_ci"].as_array().unwrap() {
        let d = paired_accuracy(u(&c["n"]), u(&c["b"]), u(&c["c"]));
        close(d.diff, f(&c["diff"]), 1e-12, "diff");
        assert!((d.ci_low - f(&c["ci_low"])).abs() < 1e-12, "{c}");
        assert!((d.ci_high - f(&c["ci_high"])).abs() < 1e-12, "{c}");
    }
}
