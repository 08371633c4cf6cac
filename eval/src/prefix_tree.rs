//! Which contexts share which prefix: a radix tree over the contexts' token ids, built from their
//! sorted order (contexts with a common prefix are neighbours there, and the longest common prefix
//! of neighbours tells where the tree branches). A node is worth a forward of its own only where
//! at least two contexts share at least [`MIN_SHARED`] tokens more than its parent's prefix: MMLU's
//! subjects become one node each under the root (they share their description and dev examples,
//! not just the task's first sentence), TruthfulQA's questions one node under its preamble.

/// The fewest tokens a node's contexts must share beyond its parent's prefix.
pub const MIN_SHARED: usize = 32;

/// Contexts that begin with the same `len` tokens: deeper nodes, and the contexts that share
/// nothing more with another (`alone`, as indices into the sorted contexts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixNode {
    pub len: usize,
    /// One context of the node; its first `len` tokens are the shared prefix.
    pub first: usize,
    pub children: Vec<PrefixNode>,
    pub alone: Vec<usize>,
}

/// The tree of `contexts`, which must be sorted. Every node's prefix leaves each of its contexts
/// at least one token of its own (the logits of a context's last position come from it).
pub fn build(contexts: &[&[u32]]) -> PrefixNode {
    // lcp[i]: the prefix contexts i and i + 1 share, capped to leave both a token.
    let lcp: Vec<usize> = contexts
        .windows(2)
        .map(|w| {
            let n = w[0].iter().zip(w[1]).take_while(|(a, b)| a == b).count();
            n.min(w[0].len().saturating_sub(1))
                .min(w[1].len().saturating_sub(1))
        })
        .collect();
    node(&lcp, 0, contexts.len(), 0)
}

/// The node over contexts `lo..hi`, which share `len` tokens.
fn node(lcp: &[usize], lo: usize, hi: usize, len: usize) -> PrefixNode {
    let mut out = PrefixNode {
        len,
        first: lo,
        children: Vec::new(),
        alone: Vec::new(),
    };
    let deep = |i: usize| i + 1 < hi && lcp[i] >= len + MIN_SHARED;
    let mut i = lo;
    while i < hi {
        if !deep(i) {
            out.alone.push(i);
            i += 1;
            continue;
        }
        // Contexts i..=j, each sharing ≥ len + MIN_SHARED tokens with the next.
        let mut j = i;
        while deep(j) {
            j += 1;
        }
        let shared = lcp[i..j]
            .iter()
            .copied()
            .min()
            .expect("a run of two or more");
        out.children.push(node(lcp, i, j + 1, shared));
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(head: &[u32], own: &[u32]) -> Vec<u32> {
        head.iter().chain(own).copied().collect()
    }

    #[test]
    fn subjects_are_nodes_of_their_own_under_a_short_common_start() {
        let task: Vec<u32> = (0..10).collect(); // shared by all, too short to run alone
        let a: Vec<u32> = task.iter().copied().chain(100..200).collect();
        let b: Vec<u32> = task.iter().copied().chain(200..240).collect();
        let mut contexts = [
            ctx(&a, &[1, 2]),
            ctx(&a, &[1, 3]),
            ctx(&a, &[4]),
            ctx(&b, &[5, 6]),
            ctx(&b, &[7]),
            vec![9, 9, 9],
            ctx(&a[..40], &[8]),
        ];
        contexts.sort();
        let refs: Vec<&[u32]> = contexts.iter().map(|c| c.as_slice()).collect();
        let root = build(&refs);
        assert_eq!(root.len, 0);
        assert_eq!(root.children.len(), 2, "{root:#?}");
        let lens: Vec<usize> = root.children.iter().map(|c| c.len).collect();
        // Subject a's three questions share all of a (110 tokens) and the 40-token one shares 40.
        assert_eq!(lens, vec![40, b.len()]);
        let na = &root.children[0];
        assert_eq!(na.children.len(), 1);
        assert_eq!(na.children[0].len, a.len());
        assert_eq!(na.children[0].alone.len(), 3);
        assert_eq!(na.alone.len(), 1);
        assert_eq!(root.alone.len(), 1);
        // Every context is in exactly one node.
        fn all(n: &PrefixNode, out: &mut Vec<usize>) {
            out.extend(&n.alone);
            n.children.iter().for_each(|c| all(c, out));
        }
        let mut seen = Vec::new();
        all(&root, &mut seen);
        seen.sort();
        assert_eq!(seen, (0..contexts.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_prefix_leaves_each_context_a_token_of_its_own() {
        let long: Vec<u32> = (0..50).collect();
        let contexts = [long.clone(), long.clone()];
        let refs: Vec<&[u32]> = contexts.iter().map(|c| c.as_slice()).collect();
        let root = build(&refs);
        assert_eq!(root.children[0].len, 49);
        assert!(build(&[]).alone.is_empty());
        assert_eq!(build(&[&[1]]).alone, vec![0]);
    }
}
