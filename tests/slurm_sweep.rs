//! The sharded sweep on a real Slurm: a localhost cluster (munged, slurmctld, slurmd, started by
//! `scripts/slurm/local-cluster.sh`) runs `scripts/slurm/eval-array.sbatch` as a 4-task job array
//! over a small run. Its results must be byte-identical to a single-process sweep's. The test
//! installs Debian's slurm-wlm and munge with apt-get when they are missing; where it cannot
//! (no root, no apt-get, no package mirror) it prints why it skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs Debian's slurm-wlm and munge when missing; says why this machine cannot run a local
/// Slurm, if it cannot.
fn cannot_run() -> Option<String> {
    let tools = ["sbatch", "squeue", "sinfo", "slurmctld", "slurmd", "munged"];
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    if !root {
        return Some("slurmd and munged need root here".into());
    }
    if !tools.iter().all(|t| installed(t)) {
        if !installed("apt-get") {
            return Some("slurm-wlm and munge are not installed and there is no apt-get".into());
        }
        println!("installing slurm-wlm and munge with apt-get");
        let out = Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y -qq slurm-wlm munge",
            ])
            .output()
            .expect("sh runs");
        if !out.status.success() {
            return Some(format!(
                "apt-get could not install slurm-wlm and munge: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    tools
        .iter()
        .find(|t| !installed(t))
        .map(|t| format!("`{t}` still not found after installing slurm-wlm and munge"))
}

/// The cluster's daemons, stopped when the test ends however it ends.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let script = repo().join("scripts/slurm/local-cluster.sh");
        let out = run_cmd(Command::new(&script).arg("start").arg(dir));
        assert!(
            out.status.success(),
            "local cluster did not start:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
        }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/slurm/local-cluster.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

#[test]
fn a_four_task_job_array_writes_what_one_process_writes() {
    if let Some(why) = cannot_run() {
        println!("skipping the Slurm test: {why}");
        eprintln!("skipping the Slurm test: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Results name the run directory, so both sweeps run on the same one.
    let run = tmp.path().join("run");
    train_tiny(&run);
    let tasks = ["--tasks", "k2_facts,k2_agreement", "--probe-docs", "24"];

    let one = ok(k2()
        .args(["eval", "--all-checkpoints", "--quiet", "--run"])
        .arg(&run)
        .args(tasks));
    println!("single process:\n{one}");
    let a = results_tree(&run.join("eval"));
    std::fs::remove_dir_all(run.join("eval")).unwrap();

    let cluster = Cluster::start(&tmp.path().join("slurm"));
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let submitted = ok(cluster
        .cmd("sbatch")
        .args(["--parsable", "--array=0-3", "--cpus-per-task=1"])
        .arg(format!("--output={}/out-%a.txt", logs.display()))
        .arg(format!("--chdir={}", repo().display()))
        .env("K2", env!("CARGO_BIN_EXE_k2"))
        .arg(repo().join("scripts/slurm/eval-array.sbatch"))
        .args(["--threads", "1", "--run"])
        .arg(&run)
        .args(tasks));
    let job = submitted.trim().split(';').next().unwrap().to_string();
    println!("submitted job array {job}");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let q = ok(cluster.cmd("squeue").args(["-h", "-j", &job]));
        if q.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "job {job} still queued:\n{q}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut outputs = String::new();
    for i in 0..4 {
        let text = std::fs::read_to_string(logs.join(format!("out-{i}.txt"))).unwrap_or_default();
        outputs.push_str(&format!("--- array task {i} ---\n{text}"));
    }
    println!("{outputs}");
    for i in 0..4 {
        assert!(
            run.join(format!("eval/sweep-summary.shard-{i}-of-4.jsonl"))
                .exists(),
            "array task {i} wrote no summary:\n{outputs}"
        );
    }
    let b = results_tree(&run.join("eval"));
    assert!(a.len() > 8, "{:?}", a.keys());
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{outputs}"
    );
    for (name, bytes) in &a {
        assert!(&b[name] == bytes, "{name} differs between the runs");
    }
    // Every pair was done by exactly one shard: the shards' evaluated counts add up.
    let evaluated: usize = outputs
        .lines()
        .filter_map(|l| l.split(" evaluated,").next()?.trim().parse::<usize>().ok())
        .sum();
    assert_eq!(evaluated * 2, a.len(), "{outputs}");
    // The status view agrees: every pair done.
    let status = ok(k2()
        .args(["eval", "--status", "--run"])
        .arg(&run)
        .args(tasks));
    assert!(
        status.contains("0 claimed, 0 stale claims, 0 failed, 0 pending"),
        "{status}"
    );
}
