//! A disk that fills up during checkpoint writes and results writes: a small tmpfs mounted by the
//! test (root can do that here; elsewhere the test says why it skips) is filled to a few hundred
//! kilobytes of room. The command fails with an error that says the device is out of space,
//! everything written before stays intact, and after space is freed a rerun finishes with files
//! identical to a run that never ran out.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (with the reason printed) where mounting is not allowed.
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(at.to_path_buf())),
            Ok(o) => {
                println!(
                    "skipping the disk-full test: cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipping the disk-full test: cannot run mount: {e}");
                None
            }
        }
    }

    /// Fills the file system but `room` bytes with a filler file; returns its path.
    fn fill_leaving(&self, room: u64) -> PathBuf {
        // SAFETY: statvfs writes into the zeroed struct we pass; the path is NUL-terminated.
        let free = unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            let c = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
            assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0);
            st.f_bavail * st.f_frsize
        };
        let filler = self.0.join("filler");
        std::fs::write(&filler, vec![0u8; free.saturating_sub(room) as usize]).unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn no_space(err: &str) -> bool {
    err.contains("No space left on device") || err.contains("no space")
}

#[test]
fn eval_results_on_a_full_disk_fail_cleanly_and_finish_after_space_is_freed() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("small"), "4m") else {
        return;
    };
    let run = tmp.path().join("run");
    train_tiny(&run);
    let eval = |run: &Path| {
        let mut c = k2();
        c.args([
            "eval",
            "--all-checkpoints",
            "--quiet",
            "--probe-docs",
            "60",
            "--run",
        ])
        .arg(run);
        c
    };
    ok(&mut eval(&run));
    let want = results_tree(&run.join("eval"));
    std::fs::remove_dir_all(run.join("eval")).unwrap();
    // The run's results directory on the small file system, with room for a few files only.
    std::fs::create_dir_all(fs.0.join("eval")).unwrap();
    std::os::unix::fs::symlink(fs.0.join("eval"), run.join("eval")).unwrap();
    let filler = fs.fill_leaving(300 << 10);
    let out = run_cmd(&mut eval(&run));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(no_space(&stderr), "{stderr}");
    println!(
        "eval on a full disk: {}",
        stderr.lines().last().unwrap_or("")
    );
    // What was written before is whole: every results file there equals the uninterrupted one.
    let partial = results_tree(&fs.0.join("eval"));
    assert!(!partial.is_empty() && partial.len() < want.len());
    for (name, bytes) in &partial {
        if !name.contains("/.") {
            assert!(want.get(name) == Some(bytes), "{name} is not whole");
        }
    }
    std::fs::remove_file(filler).unwrap();
    ok(&mut eval(&run));
    assert_eq!(results_tree(&run.join("eval")), want);
}

#[test]
fn training_on_a_full_disk_fails_cleanly_and_resumes_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("small"), "24m") else {
        return;
    };
    let reference = tmp.path().join("reference");
    train_tiny(&reference);
    let run = fs.0.join("run");
    let filler = fs.fill_leaving(2 << 20);
    let err = fails(
        k2().args(["train", "--quiet", "--config"])
            .arg(tiny_config())
            .arg("--out")
            .arg(&run),
    );
    assert!(no_space(&err), "{err}");
    println!("train on a full disk: {}", err.trim());
    // The checkpoints the manifest lists are intact.
    if run.join("checkpoints.toml").exists() {
        let v = ok(k2().args(["ckpt", "verify", "--run"]).arg(&run));
        assert!(v.contains("0 with problems"), "{v}");
    }
    std::fs::remove_file(filler).unwrap();
    let resume = if run.join("checkpoints.toml").exists() {
        vec!["--resume"]
    } else {
        vec!["--force"]
    };
    ok(k2()
        .args(["train", "--quiet", "--config"])
        .arg(tiny_config())
        .arg("--out")
        .arg(&run)
        .args(resume));
    let files = |m: &Path| -> Vec<(String, BTreeMap<String, String>)> {
        k2_archive::Manifest::load(m)
            .unwrap()
            .checkpoints
            .into_iter()
            .map(|c| (c.name, c.files))
            .collect()
    };
    assert_eq!(
        files(&run.join("checkpoints.toml")),
        files(&reference.join("checkpoints.toml"))
    );
}
