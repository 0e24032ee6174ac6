//! The kill-and-restore scenario of the changelog operators' restore tests:
//! a job runs at parallelism 2 with checkpoints, is killed with SIGKILL after
//! two complete checkpoints, and is restored from the latest at parallelism 3.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::{complete_checkpoints, engine, wait_for};

/// `sluice-engine run job_file args...`, printing to `stdout`.
pub fn run_job(job_file: &Path, args: &[&str], stdout: &Path) -> Child {
    run_job_with(job_file, args, stdout, &[])
}

/// [`run_job`] with extra environment variables.
pub fn run_job_with(job_file: &Path, args: &[&str], stdout: &Path, env: &[(&str, &str)]) -> Child {
    engine()
        .envs(env.iter().copied())
        .arg("run")
        .arg(job_file)
        .args(["--rest-addr", "127.0.0.1:0"])
        .args(args)
        .stdout(File::create(stdout).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `reference` (a bounded, fast version of the job) to the end at
/// parallelism 1 and returns what it printed.
pub fn reference_run(dir: &Path, reference: &str) -> String {
    let file = dir.join("reference.sql");
    std::fs::write(&file, reference).unwrap();
    let out_file = dir.join("reference.out");
    let out = run_job(&file, &["-p", "1"], &out_file).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&out_file).unwrap()
}

/// Runs `job` (named `name`, slow enough to be killed mid-way) at
/// parallelism 2, kills it after two complete checkpoints, and restores it at
/// parallelism 3 to the end. Returns what each run printed; asserts that the
/// first printed something and that the second restored.
pub fn kill_and_restore(dir: &Path, name: &str, job: &str) -> (String, String) {
    let ckpt = dir.join("ckpt");
    let job_file = dir.join(format!("{name}.sql"));
    std::fs::write(&job_file, job).unwrap();
    let ck = ckpt.display().to_string();
    let first_out = dir.join("first.out");
    let mut child =
        run_job(&job_file, &["--checkpoint-dir", &ck, "--checkpoint-interval", "300ms", "-p", "2"], &first_out);
    wait_for("two complete checkpoints", Duration::from_secs(60), || complete_checkpoints(&ckpt.join(name)) >= 2);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let first = std::fs::read_to_string(&first_out).unwrap();
    assert!(first.lines().count() > 100, "little output before the kill");

    let second_out = dir.join("second.out");
    let restored = run_job(
        &job_file,
        &["--checkpoint-dir", &ck, "--checkpoint-interval", "300ms", "-p", "3", "--restore", "latest"],
        &second_out,
    )
    .wait_with_output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&restored.stderr);
    assert!(restored.status.success(), "{stderr}");
    assert!(stderr.contains("restoring from"), "{stderr}");
    (first, std::fs::read_to_string(&second_out).unwrap())
}

/// Applies the printed changelog lines (`<id>[:n]> +U[a, b, ...]`) of sink
/// `id` in `text`, in order, to `table`, keyed by `key` of a row's fields
/// (the text between the brackets).
pub fn apply_changelog(table: &mut BTreeMap<String, String>, text: &str, id: &str, key: impl Fn(&str) -> String) {
    for line in text.lines() {
        let Some((prefix, row)) = line.split_once("> ") else { continue };
        if prefix.split(':').next() != Some(id) {
            continue;
        }
        let (kind, fields) = row.split_at(2);
        let fields = &fields[1..fields.len() - 1];
        match kind {
            "+I" | "+U" => {
                table.insert(key(fields), fields.to_string());
            }
            "-U" | "-D" => {
                table.remove(&key(fields));
            }
            other => panic!("unknown row kind {other} in {line}"),
        }
    }
}

/// The first `n` fields of a row (fields hold no `, `).
pub fn first_fields(n: usize) -> impl Fn(&str) -> String {
    move |fields| fields.split(", ").take(n).collect::<Vec<_>>().join(", ")
}

/// Printed rows (`<sink>[:n]> +I[...]`) of each sink of an append-only job,
/// keyed by `key` of a row's fields; a row printed by both runs (the print
/// sink is at-least-once, as Flink's) must be printed the same.
pub fn append_only_tables(
    outputs: &[String],
    key: impl Fn(&[&str]) -> String,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in outputs.iter().flat_map(|o| o.lines()) {
        let Some((prefix, row)) = line.split_once("> ") else { continue };
        let sink = prefix.split(':').next().unwrap_or_default().to_string();
        let fields = row.strip_prefix("+I[").and_then(|r| r.strip_suffix(']'));
        let fields = fields.unwrap_or_else(|| panic!("an append-only output: {line}"));
        let k = key(&fields.split(", ").collect::<Vec<_>>());
        if let Some(before) = all.entry(sink).or_default().insert(k, fields.to_string()) {
            assert_eq!(before, fields, "a row printed twice, differently: {line}");
        }
    }
    all
}
