//! `cargo run --release -p k2-analysis --example render -- OUT NAME [--run DIR] [--lm-eval DIR] [--log-x]`
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = k2_analysis::ReportOptions {
        run: None,
        lm_eval_results: None,
        published_results: None,
        out: PathBuf::from(&args[0]),
        name: args[1].clone(),
        log_x: false,
    };
    let mut i = 2;
    while i < args.len() {
        match args[i].as_str() {
            "--run" => {
                opts.run = Some(PathBuf::from(&args[i + 1]));
                i += 1;
            }
            "--lm-eval" => {
                opts.lm_eval_results = Some(PathBuf::from(&args[i + 1]));
                i += 1;
            }
            "--log-x" => opts.log_x = true,
            a => anyhow::bail!("unknown argument {a}"),
        }
        i += 1;
    }
    let t = std::time::Instant::now();
    let s = k2_analysis::render_report(&opts)?;
    println!(
        "{} ({} points, {:.2}s)",
        s.readme.display(),
        s.points,
        t.elapsed().as_secs_f64()
    );
    for f in s.figures {
        println!("{}", f.display());
    }
    Ok(())
}
