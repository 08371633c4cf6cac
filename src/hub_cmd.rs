//! `k2 hub list|pull` and the printing of a hub suite sweep (`k2 eval --suite NAME` on a
//! `kind = "hub"` suite). Parse, call k2-archive / k2-eval, print.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use k2_archive::hub::{self, HubClient};

const ENV_HELP: &str = "Environment (as huggingface_hub reads it):\n  \
HF_ENDPOINT      Hub URL (default https://huggingface.co)\n  \
HF_TOKEN         token for gated/private repositories (else $HF_HOME/token from `huggingface-cli login`)\n  \
HF_HOME          cache root (default ~/.cache/huggingface); files go to $HF_HOME/hub\n  \
HF_HUB_CACHE     the hub cache itself (overrides $HF_HOME/hub)\n  \
HF_HUB_OFFLINE=1 use the cache only, no network\n  \
K2_HUB_RETRIES   attempts after a dropped connection or 5xx (default 5), K2_HUB_BACKOFF_MS (default 1000)";

#[derive(Subcommand)]
pub enum HubCommand {
    /// List a repository's checkpoint revisions (branches) in training order, with tokens seen.
    #[command(after_help = format!("Examples:\n  \
k2 hub list LLM360/Amber                       # ckpt_000 .. ckpt_359, tokens from checkpoints.toml\n  \
k2 hub list EleutherAI/pythia-160m-deduped     # step0, step1, step2, step4, .., step143000\n  \
k2 hub list allenai/OLMo-1B --all              # stepN-tokensTB (tokens from the name), then main\n  \
k2 hub list EleutherAI/pythia-160m-deduped --weights   # + weights sha256; byte-identical revisions marked\n\n{ENV_HELP}"))]
    List {
        /// Repository id, ORG/NAME.
        repo: String,
        /// Also list branches that are not checkpoints (main, ...).
        #[arg(long)]
        all: bool,
        /// Suite file giving tokens per checkpoint for the repository.
        #[arg(long, default_value = "checkpoints.toml")]
        suites: PathBuf,
        /// Also show each revision's weights sha256 (from the Hub's file listing, nothing is
        /// downloaded) and mark revisions whose weights equal an earlier revision's.
        #[arg(long)]
        weights: bool,
    },
    /// Download a checkpoint revision into the Hugging Face cache (shared with Python tools),
    /// verifying every LFS file against the Hub's sha256; an interrupted download resumes.
    #[command(after_help = format!("Examples:\n  \
k2 hub pull LLM360/Amber --revision ckpt_100\n  \
k2 hub pull EleutherAI/pythia-160m-deduped --revision step3000\n  \
HF_HUB_OFFLINE=1 k2 hub pull LLM360/Amber --revision ckpt_100   # cache only: prints the snapshot path\n  \
k2 eval --model $(k2 hub pull LLM360/Amber --revision ckpt_100 --path-only) --tasks arc_easy\n\n{ENV_HELP}"))]
    Pull {
        /// Repository id, ORG/NAME.
        repo: String,
        /// Branch, tag or commit.
        #[arg(long, default_value = "main")]
        revision: String,
        /// Every file of the revision, not only config, tokenizer and weights.
        #[arg(long)]
        all_files: bool,
        /// Print only the snapshot directory.
        #[arg(long)]
        path_only: bool,
    },
}

use k2_eval::sweep::human_bytes as human;

/// A bytes bar on stderr (drawn only on a terminal) fed by the client's download progress.
fn with_progress(mut client: HubClient, bar: &indicatif::ProgressBar) -> HubClient {
    let b = bar.clone();
    client.progress = Some(std::sync::Arc::new(move |file: &str, done, total| {
        if let Some(t) = total {
            b.set_length(t);
        }
        b.set_position(done);
        b.set_message(file.to_string());
    }));
    client
}

pub fn run(cmd: HubCommand) -> Result<ExitCode> {
    let client = HubClient::from_env()?;
    match cmd {
        HubCommand::List {
            repo,
            all,
            suites,
            weights,
        } => {
            let suite = k2_eval::suites::hub_suite_for_repo(&suites, &repo)?;
            let mut revs: Vec<_> = hub::list_revisions(&client, &repo, suite.as_ref())?
                .into_iter()
                .filter(|r| all || r.parsed.is_some())
                .collect();
            if weights {
                hub::add_weights(&client, &repo, &mut revs)?;
            }
            println!(
                "{:<34} {:>8} {:>6} {:>18}  {:<40}{}",
                "revision",
                "number",
                "stage",
                "tokens",
                "commit",
                if weights { "  weights sha256" } else { "" }
            );
            for r in &revs {
                let (number, stage) = r.parsed.as_ref().map_or(("-".into(), "-".into()), |p| {
                    (p.number.to_string(), p.stage.to_string())
                });
                let w = match (&r.weights_sha256, &r.duplicate_of) {
                    _ if !weights => String::new(),
                    (Some(w), Some(d)) => format!("  {w}  (= {d}: identical weights)"),
                    (Some(w), None) => format!("  {w}"),
                    (None, _) => "  -".to_string(),
                };
                println!(
                    "{:<34} {:>8} {:>6} {:>18}  {:<40}{w}",
                    r.name,
                    number,
                    stage,
                    r.tokens.map_or("-".into(), |t| t.to_string()),
                    r.commit
                );
            }
            let source = if client.offline {
                "the cache"
            } else {
                client.endpoint.as_str()
            };
            println!(
                "{} revisions of {repo} ({} checkpoints) from {source}{}",
                revs.len(),
                revs.iter().filter(|r| r.parsed.is_some()).count(),
                suite.map_or(String::new(), |s| format!(
                    "; tokens from suite `{}`",
                    s.name
                ))
            );
            if weights {
                let dup = revs.iter().filter(|r| r.duplicate_of.is_some()).count();
                println!("{dup} revisions have weights byte-identical to an earlier revision's");
            }
            Ok(ExitCode::SUCCESS)
        }
        HubCommand::Pull {
            repo,
            revision,
            all_files,
            path_only,
        } => {
            let opts = hub::PullOptions { all_files };
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "  {msg:40} {bytes:>10}/{total_bytes:>10} {bytes_per_sec:>12} eta {eta}",
                )
                .expect("valid template"),
            );
            if path_only {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let client = with_progress(client, &bar);
            let p = hub::pull(&client, &repo, &revision, &opts, &mut |f| {
                bar.set_position(0);
                if !path_only {
                    let status = match (f.downloaded, &f.sha256) {
                        (true, Some(_)) => "downloaded, sha256 verified",
                        (true, None) => "downloaded",
                        (false, _) => "cached",
                    };
                    bar.suspend(|| println!("  {:<40} {:>10}  {status}", f.name, human(f.size)));
                }
            });
            bar.finish_and_clear();
            let p = p?;
            if path_only {
                println!("{}", p.dir.display());
            } else {
                println!("{repo}@{revision} = commit {}", p.commit);
                println!("weights sha256 {}", p.weights_sha256);
                println!(
                    "{} downloaded; snapshot {}",
                    human(p.bytes_downloaded),
                    p.dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
