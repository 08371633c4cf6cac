//! Named crash points for crash-safety tests: when the environment variable `K2_FAILPOINT`
//! equals a point's name, the process aborts there (no destructors, no flushing: like SIGKILL).
//! Unset, a failpoint is one environment lookup.

/// Aborts the process if `K2_FAILPOINT` names this point.
pub fn hit(name: &str) {
    if std::env::var_os("K2_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("K2_FAILPOINT={name}: aborting");
        std::process::abort();
    }
}
