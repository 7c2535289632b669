//! State in object storage, end to end on a real Garage (`nixops4_tests::garage`): the
//! real `nixops4`, the real S3 provider and local provider, several checkouts of one
//! deployment in different directories sharing one bucket.
//!
//! Lock holders append `start <who>` and `end <who>` to a holder log from inside the
//! apply (a `local.exec` resource that runs only while its apply holds the lock); two
//! holders at once would show as interleaved lines.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nixops4_tests::dropping_proxy::DroppingProxy;
use nixops4_tests::garage::{BUCKET, Garage, REGION};
use nixops4_tests::{CommandOutput, TestEnv};

/// A lease short enough that a dead holder's lock is taken over within seconds.
const LEASE_SECONDS: u64 = 6;

/// A checkout of the deployment: `resources` (Nix attributes) beside the state resource,
/// on `garage` under `prefix`.
fn checkout(garage: &Garage, prefix: &str, resources: &str) -> TestEnv {
    checkout_at(&garage.endpoint(), prefix, resources)
}

/// A checkout whose state is at the S3 `endpoint`.
fn checkout_at(endpoint: &str, prefix: &str, resources: &str) -> TestEnv {
    let env = TestEnv::new();
    let provider = env.program_path("nixops4-resources-s3");
    env.write_deployment(&format!(
        r#"
      providers.s3 = {{ executable = "{provider}"; }};
      resources = {{
        state = {{ type = "s3.object"; inputs = {{ endpoint = "{endpoint}"; bucket = "{BUCKET}"; prefix = "{prefix}"; region = "{REGION}"; lease_seconds = {LEASE_SECONDS}; }}; }};
        {resources}
      }};"#,
        provider = provider.display(),
    ));
    env
}

fn files(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!(r#"{n} = {{ type = "local.file"; inputs = {{ name = "{n}.txt"; contents = "{n}"; }}; state = resources.state; }};"#))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A resource that logs `start <who>`, sleeps, and logs `end <who>` when it runs.
fn holder_step(log: &Path, who: &str, seconds: f32) -> String {
    format!(
        r#"step = {{ type = "local.exec"; inputs = {{ executable = "sh"; args = [ "-c" "echo start {who} >> {log}; sleep {seconds}; echo end {who} >> {log}" ]; }}; state = resources.state; }};"#,
        log = log.display()
    )
}

fn nixops4(env: &TestEnv, garage: &Garage, args: &[&str]) -> std::process::Command {
    let mut command = env.command(args);
    command.envs(garage.credentials());
    command
}

fn run(env: &TestEnv, garage: &Garage, args: &[&str]) -> CommandOutput {
    env.output(nixops4(env, garage, args).output().expect("run nixops4"))
}

/// Runs nixops4 and returns whether it succeeded and its stderr, not normalised: process
/// ids stay in.
fn run_raw(env: &TestEnv, garage: &Garage, args: &[&str]) -> (bool, String) {
    let output = nixops4(env, garage, args).output().expect("run nixops4");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn spawn(env: &TestEnv, garage: &Garage, args: &[&str]) -> Child {
    nixops4(env, garage, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nixops4")
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Applies until the lock of a gone holder has expired and the apply went through.
fn apply_after_takeover(env: &TestEnv, garage: &Garage) -> CommandOutput {
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECONDS * 5);
    loop {
        let apply = run(env, garage, &["apply", "--yes"]);
        if apply.status.success() || Instant::now() > deadline {
            return apply.success();
        }
        assert!(apply.stderr.contains("is locked by"), "{apply}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn apply_plan_destroy_on_garage_and_a_second_checkout_sees_no_changes() {
    let garage = Garage::start();
    let env = checkout(&garage, "team/default", &files(&["a", "b", "c"]));
    let plan = run(&env, &garage, &["plan"]).success();
    assert!(plan.stdout.contains("+ create   a (local.file)"), "{plan}");
    run(&env, &garage, &["apply", "--yes"]).success();
    assert_eq!(env.read("b.txt").as_deref(), Some("b"));
    assert_eq!(
        run(&env, &garage, &["plan"]).success().stdout,
        "No changes. 3 resources up to date.\n"
    );

    // Another operator's checkout, elsewhere, with the same deployment and bucket.
    let other = checkout(&garage, "team/default", &files(&["a", "b", "c"]));
    assert_eq!(
        run(&other, &garage, &["plan"]).success().stdout,
        "No changes. 3 resources up to date.\n"
    );
    assert_eq!(
        run(&other, &garage, &["state", "list"]).success().stdout,
        "a  local.file\nb  local.file\nc  local.file\n"
    );
    // A different prefix is a different state.
    let elsewhere = checkout(&garage, "team/other", &files(&["a"]));
    let plan = run(&elsewhere, &garage, &["plan"]).success();
    assert!(plan.stdout.contains("+ create   a (local.file)"), "{plan}");

    run(&env, &garage, &["destroy", "--yes"]).success();
    assert!(env.read("a.txt").is_none());
    assert_eq!(
        run(&other, &garage, &["state", "list"]).success().stdout,
        ""
    );
}

#[test]
fn contending_checkouts_never_hold_the_lock_together() {
    let rounds: usize = std::env::var("NIXOPS4_S3_CONTENTION_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let garage = Garage::start();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("holders.log");
    let envs: Vec<TestEnv> = (0..3).map(|_| TestEnv::new()).collect();
    let (mut wins, mut losses) = (0, 0);
    for round in 0..rounds {
        let mut children = Vec::new();
        for (i, env) in envs.iter().enumerate() {
            let step = holder_step(&log, &format!("{round}-{i}"), 0.3);
            let deployment = checkout(&garage, "contended", &step);
            std::fs::copy(
                deployment.dir().join("flake.nix"),
                env.dir().join("flake.nix"),
            )
            .unwrap();
            children.push(spawn(env, &garage, &["apply", "--yes"]));
        }
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        let mut round_wins = 0;
        for (i, child) in children.into_iter().enumerate() {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() {
                round_wins += 1;
                continue;
            }
            losses += 1;
            // The loser names a holder: one of the other two processes of this round.
            let named = pids.iter().enumerate().any(|(j, pid)| {
                j != i && stderr.contains(&format!("(process {pid}, nixops4 apply"))
            });
            assert!(
                stderr.contains("is locked by") && named,
                "round {round}, process {i} failed without naming another holder ({pids:?}):\n{stderr}"
            );
        }
        assert!(round_wins >= 1, "round {round}: nobody got the lock");
        wins += round_wins;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2 * wins,
        "one start and one end per win:\n{text}"
    );
    for pair in lines.chunks(2) {
        let started = pair[0].strip_prefix("start ");
        let ended = pair[1].strip_prefix("end ");
        assert!(
            started.is_some() && started == ended,
            "two holders at once:\n{text}"
        );
    }
    eprintln!(
        "{rounds} rounds of 3 contenders: {wins} applies held the lock, {losses} were refused"
    );
}

#[test]
fn a_killed_holder_loses_its_lease_and_the_next_apply_takes_over() {
    let garage = Garage::start();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("holders.log");
    let resources = format!(
        "{}\n{}",
        files(&["a", "b"]),
        holder_step(&log, "killed", 3.0)
    );
    let env = checkout(&garage, "killed", &resources);
    let mut holder = spawn(&env, &garage, &["apply", "--yes"]);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(
        "the apply to hold the lock",
        Duration::from_secs(60),
        || read_log().contains("start killed"),
    );
    let pid = holder.id();
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();

    // Its lease is still live for a moment: a second checkout is told who holds it.
    let other = checkout(&garage, "killed", &resources);
    let (applied, refused) = run_raw(&other, &garage, &["apply", "--yes"]);
    assert!(
        !applied
            && refused.contains("is locked by")
            && refused.contains(&format!(
                "(process {pid}, nixops4 apply of deployment `default`)"
            )),
        "{refused}"
    );
    // Then it expires, and the next apply takes over and converges.
    apply_after_takeover(&other, &garage);
    assert_eq!(
        run(&other, &garage, &["plan"]).success().stdout,
        "No changes. 3 resources up to date.\n"
    );
    assert_eq!(
        run(&env, &garage, &["state", "list"]).success().stdout,
        "a  local.file\nb  local.file\nstep  local.exec\n"
    );
}

#[test]
fn garage_stopped_mid_apply_fails_naming_the_store_then_converges() {
    let mut garage = Garage::start();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("holders.log");
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let resources = format!(
        "{}\n{}\nafter = {{ type = \"local.file\"; inputs = {{ name = \"after.txt\"; contents = resources.step.stdout; }}; state = resources.state; }};",
        files(&names),
        holder_step(&log, "outage", 2.0)
    );
    let env = checkout(&garage, "outage", &resources);
    let apply = spawn(&env, &garage, &["apply", "--yes"]);
    wait_for("the apply to run", Duration::from_secs(60), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("start outage")
    });
    garage.stop();
    let failed = env.output(apply.wait_with_output().unwrap());
    assert!(!failed.status.success(), "{failed}");
    assert!(
        failed
            .stderr
            .contains(&format!("S3 store s3://{BUCKET} at {}", garage.endpoint())),
        "the error names the store:\n{failed}"
    );

    garage.resume();
    apply_after_takeover(&env, &garage);
    assert_eq!(
        run(&env, &garage, &["plan"]).success().stdout,
        "No changes. 12 resources up to date.\n"
    );
    let listed = run(&env, &garage, &["state", "list"]).success().stdout;
    let mut expected: Vec<String> = names.iter().map(|n| format!("{n}  local.file")).collect();
    expected.push("after  local.file".into());
    expected.push("step  local.exec".into());
    expected.sort();
    let mut got: Vec<&str> = listed.lines().collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(env.read("after.txt").is_some());
}

#[test]
fn requests_the_store_drops_are_sent_again_then_fail_naming_the_store() {
    let garage = Garage::start();
    // The first request's first two tries are dropped unanswered; the third goes through.
    let flaky = DroppingProxy::start(garage.s3_port(), 2);
    let env = checkout_at(&flaky.endpoint(), "flaky", &files(&["a", "b"]));
    run(&env, &garage, &["apply", "--yes"]).success();
    assert_eq!(env.read("b.txt").as_deref(), Some("b"));
    assert!(flaky.accepted() >= 3, "{} connections", flaky.accepted());
    assert_eq!(
        run(&env, &garage, &["plan"]).success().stdout,
        "No changes. 2 resources up to date.\n"
    );

    // A store that never answers fails the apply after the last try, and says which.
    let gone = DroppingProxy::start(garage.s3_port(), usize::MAX);
    let env = checkout_at(&gone.endpoint(), "gone", &files(&["a"]));
    let failed = run(&env, &garage, &["apply", "--yes"]);
    assert!(!failed.status.success(), "{failed}");
    assert!(
        failed
            .stderr
            .contains(&format!("S3 store s3://{BUCKET} at {}", gone.endpoint())),
        "{failed}"
    );
    assert_eq!(gone.accepted(), 4, "one try and three retries");
    assert!(env.read("a.txt").is_none());
}

#[test]
fn state_unlock_names_the_holder_and_asks_first() {
    let garage = Garage::start();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("holders.log");
    let env = checkout(&garage, "unlock", &holder_step(&log, "stuck", 5.0));
    assert_eq!(
        run(&env, &garage, &["state", "unlock"]).success().stderr,
        "The state is not locked.\n"
    );
    let mut holder = spawn(&env, &garage, &["apply", "--yes"]);
    wait_for(
        "the apply to hold the lock",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("start stuck")
        },
    );
    let pid = holder.id();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let (unlocked, without_terminal) = run_raw(&env, &garage, &["state", "unlock"]);
    assert!(
        !unlocked
            && without_terminal.contains(&format!("(process {pid}, nixops4 apply"))
            && without_terminal.contains("run with --yes"),
        "{without_terminal}"
    );
    let unlocked = run(&env, &garage, &["state", "unlock", "--yes"]).success();
    assert!(
        unlocked.stderr.contains("Released the lock of"),
        "{unlocked}"
    );
    // Right away, without waiting for the lease to expire.
    run(&env, &garage, &["apply", "--yes"]).success();
}

#[test]
fn state_moves_from_a_local_file_to_garage_and_back() {
    let garage = Garage::start();
    let env = TestEnv::new();
    let local_files = files(&["a", "b"]).replace("state = resources.state; ", "");
    env.write_deployment(&format!("resources = {{ {local_files} }};"));
    env.run(&["apply", "--yes"]).success();
    let original = env.read(".nixops4/default.state.jsonl").unwrap();

    // The deployment now keeps its state in a bucket; the old file is copied there.
    let remote = checkout(&garage, "moved", &files(&["a", "b"]));
    std::fs::copy(remote.dir().join("flake.nix"), env.dir().join("flake.nix")).unwrap();
    let moved = run(
        &env,
        &garage,
        &[
            "state",
            "transfer",
            "--from-file",
            ".nixops4/default.state.jsonl",
        ],
    )
    .success();
    assert!(
        moved
            .stderr
            .contains("Copied 2 record(s) from the state file"),
        "{moved}"
    );
    assert_eq!(
        env.read(".nixops4/default.state.jsonl").unwrap(),
        original,
        "the source is left as it was"
    );
    assert_eq!(
        run(&env, &garage, &["plan"]).success().stdout,
        "No changes. 2 resources up to date.\n"
    );
    // A second transfer into the filled bucket is refused.
    let again = run(
        &env,
        &garage,
        &[
            "state",
            "transfer",
            "--from-file",
            ".nixops4/default.state.jsonl",
        ],
    );
    assert!(
        !again.status.success() && again.stderr.contains("already records 2 resource(s)"),
        "{again}"
    );

    // And back into a local file that a `local.state_file` then names.
    run(
        &env,
        &garage,
        &["state", "transfer", "--to-file", "back.jsonl"],
    )
    .success();
    let back = files(&["a", "b"]);
    env.write_deployment(&format!(
        r#"resources = {{ state = {{ type = "local.state_file"; inputs.name = "back.jsonl"; }}; {back} }};"#
    ));
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 2 resources up to date.\n"
    );
}
