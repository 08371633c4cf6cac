//! Revisions whose weights are byte-identical to an earlier revision's (86 of Pythia's branches
//! are): detected from the weights' sha256 as the Hub lists it, so they are reported rather than
//! evaluated as distinct checkpoints.

use std::collections::BTreeMap;

/// Remembers the first revision seen with each weights hash.
#[derive(Debug, Default, Clone)]
pub struct Duplicates {
    first: BTreeMap<String, String>,
}

impl Duplicates {
    /// The earlier revision with the same weights, or `None` (and `revision` is remembered as the
    /// first with these weights).
    pub fn check(&mut self, revision: &str, weights_sha256: &str) -> Option<String> {
        match self.first.get(weights_sha256) {
            Some(first) => Some(first.clone()),
            None => {
                self.first
                    .insert(weights_sha256.to_string(), revision.to_string());
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_revisions_with_the_same_hash_point_at_the_first() {
        let mut d = Duplicates::default();
        assert_eq!(d.check("step0", "aa"), None);
        assert_eq!(d.check("step1", "bb"), None);
        assert_eq!(d.check("step2", "aa").as_deref(), Some("step0"));
        assert_eq!(d.check("step4", "aa").as_deref(), Some("step0"));
        assert_eq!(d.check("step8", "bb").as_deref(), Some("step1"));
    }
}
