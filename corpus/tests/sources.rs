use std::collections::HashSet;

use k2_corpus::{source, source_info, source_names};

const N: u64 = 300;

#[test]
fn registry_is_consistent() {
    let names = source_names();
    assert_eq!(
        names,
        &[
            "stories",
            "facts",
            "arithmetic",
            "code",
            "math_long",
            "code_long"
        ]
    );
    for name in names {
        let s = source(name).expect("registered");
        assert_eq!(s.name(), *name);
        let info = source_info(name).expect("info");
        assert_eq!(info.domain, s.domain());
        assert!(["web", "wiki", "math", "code"].contains(&s.domain()));
        assert!(info.repeat > 0.0);
        assert!(info.stage == 1 || info.stage == 2);
    }
    assert!(source("nope").is_none());
    assert!(source_info("nope").is_none());
    assert_eq!(source_info("facts").unwrap().repeat, 6.0);
    assert_eq!(source_info("arithmetic").unwrap().repeat, 3.0);
    assert_eq!(source_info("code").unwrap().repeat, 0.5);
    assert_eq!(source_info("stories").unwrap().repeat, 1.0);
}

#[test]
fn documents_are_deterministic() {
    for name in source_names() {
        let a = source(name).unwrap();
        let b = source(name).unwrap();
        for i in [0u64, 1, 7, 1000, u64::MAX] {
            assert_eq!(a.document(i), b.document(i), "{name} #{i}");
        }
    }
}

#[test]
fn documents_differ_across_indices_and_sources() {
    let mut all = HashSet::new();
    for name in source_names() {
        let s = source(name).unwrap();
        let mut seen = HashSet::new();
        for i in 0..N {
            assert!(seen.insert(s.document(i)), "{name}: duplicate doc at {i}");
        }
        all.extend(seen);
    }
    assert_eq!(all.len(), source_names().len() * N as usize);
}

#[test]
fn documents_are_ascii_and_in_length_range() {
    for name in source_names() {
        let s = source(name).unwrap();
        let info = source_info(name).unwrap();
        let (mut lo, mut hi) = (usize::MAX, 0);
        for i in 0..N {
            let d = s.document(i);
            assert!(d.is_ascii(), "{name} #{i} not ascii");
            assert!(
                (info.min_chars..=info.max_chars).contains(&d.len()),
                "{name} #{i}: {} chars",
                d.len()
            );
            assert_eq!(d.trim(), d, "{name} #{i}: stray whitespace");
            assert!(!d.contains('\t') && !d.contains('\r'));
            lo = lo.min(d.len());
            hi = hi.max(d.len());
        }
        // Lengths actually vary.
        assert!(hi - lo > 300, "{name}: {lo}..{hi}");
    }
}

#[test]
fn stage1_docs_are_short_and_stage2_longer() {
    for name in source_names() {
        let info = source_info(name).unwrap();
        let s = source(name).unwrap();
        let mean = (0..100).map(|i| s.document(i).len()).sum::<usize>() / 100;
        if info.stage == 1 {
            assert!((300..=1300).contains(&mean), "{name}: mean {mean}");
        } else {
            assert!(mean >= 1000, "{name}: mean {mean}");
        }
    }
}

#[test]
fn pinned_output_never_changes() {
    // Guards the "stable forever" promise: any change to the generators or
    // the PRNG shows up here. Update only with a deliberate corpus version bump.
    let d = source("arithmetic").unwrap().document(0);
    assert!(
        d.starts_with("What is 26 plus 9? The answer is 35.\n"),
        "{d}"
    );
    let d = source("stories").unwrap().document(0);
    assert!(
        d.starts_with("Emma lived in a small house near the market."),
        "{d}"
    );
}

#[test]
#[ignore = "slow sweep; run with --ignored"]
fn wide_length_sweep() {
    for name in source_names() {
        let s = source(name).unwrap();
        let info = source_info(name).unwrap();
        for i in 0..20_000 {
            let d = s.document(i * 7919);
            assert!(d.is_ascii());
            assert!(
                (info.min_chars..=info.max_chars).contains(&d.len()),
                "{name} #{i}"
            );
        }
    }
}
