//! Print sample documents and probes: `cargo run -p k2-corpus --example dump [n]`.
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for name in k2_corpus::source_names() {
        let s = k2_corpus::source(name).expect("registered");
        for i in 0..n {
            let d = s.document(i);
            println!(
                "===== {name} [{}] #{i} ({} chars)\n{d}\n",
                s.domain(),
                d.len()
            );
        }
    }
    for task in k2_corpus::probe_tasks() {
        for p in k2_corpus::probes(task, 4 * n as usize).expect("task") {
            println!(
                "----- {task} #{}: {:?} -> {:?} gold {}",
                p.id, p.context, p.choices, p.gold
            );
        }
    }
}
