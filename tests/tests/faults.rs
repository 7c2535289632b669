//! Crash safety: `nixops4 apply` killed with SIGKILL at many points, interrupted with
//! Ctrl-C, an operation that gets no answer, and the next apply converging without
//! duplicating or orphaning a resource.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nixops4_tests::TestEnv;
use serde_json::Value;

/// 50 independent files and a chain of 10 through outputs.
fn sixty_resources() -> String {
    let mut body = String::from("      resources = {\n");
    for n in 0..50 {
        body.push_str(&format!(
            "        f{n} = {{ type = \"local.file\"; inputs = {{ name = \"out/f{n}.txt\"; contents = \"file {n}\"; }}; }};\n"
        ));
    }
    for n in 0..10 {
        let contents = if n == 0 {
            "\"start\"".to_owned()
        } else {
            format!("resources.c{}.sha256", n - 1)
        };
        body.push_str(&format!(
            "        c{n} = {{ type = \"local.file\"; inputs = {{ name = \"out/c{n}.txt\"; contents = {contents}; }}; }};\n"
        ));
    }
    body.push_str("      };");
    body
}

fn state_lines(env: &TestEnv) -> usize {
    env.read(".nixops4/default.state.jsonl")
        .map_or(0, |text| text.lines().count())
}

/// The recorded resources, and which of them carry an unresolved intent.
fn recorded(env: &TestEnv) -> (BTreeSet<String>, BTreeSet<String>) {
    let shown = env.run(&["state", "show"]).success();
    let document: Value = serde_json::from_str(&shown.stdout).expect("the state is readable");
    let resources = document["resources"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let names = resources.keys().cloned().collect();
    let pending = resources
        .iter()
        .filter(|(_, record)| record["nixops4"]["pending"].is_string())
        .map(|(name, _)| name.clone())
        .collect();
    (names, pending)
}

fn files_on_disk(env: &TestEnv) -> BTreeSet<String> {
    std::fs::read_dir(env.dir().join("out"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn killed_applies_converge_without_duplicates_or_orphans() {
    let env = TestEnv::new();
    env.write_deployment(&sixty_resources());
    let mut kills = 0;
    let mut interrupted_calls = 0;
    // Kill points: after this many lines of state log, each time further along.
    for threshold in [2, 3, 5, 8, 12, 17, 23, 30, 38, 47] {
        let mut apply = env
            .command(&["apply", "--yes", "--parallelism", "4"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nixops4 apply");
        let deadline = Instant::now() + Duration::from_secs(120);
        let finished = loop {
            if let Some(status) = apply.try_wait().unwrap() {
                break Some(status);
            }
            if state_lines(&env) >= threshold {
                break None;
            }
            assert!(
                Instant::now() < deadline,
                "apply made no progress to {threshold} state lines"
            );
            std::thread::yield_now();
        };
        if finished.is_none() {
            apply.kill().unwrap();
            apply.wait().unwrap();
            kills += 1;
        }
        // After every kill: the state reads, and every file on disk is in it (recorded,
        // or with the intent that the next apply resolves).
        let (names, pending) = recorded(&env);
        interrupted_calls += pending.len();
        for file in files_on_disk(&env) {
            let name = file.trim_end_matches(".txt");
            assert!(
                names.contains(name) || file.contains(".nixops4-"),
                "{file} exists but is not in the state (after a kill at {threshold} lines)"
            );
        }
    }
    assert!(
        kills >= 5,
        "the test killed only {kills} applies; make it slower to kill more"
    );
    assert!(
        interrupted_calls > 0,
        "no kill landed between an intent and its result"
    );

    env.run(&["apply", "--yes"]).success();
    let (names, pending) = recorded(&env);
    assert_eq!(names.len(), 60);
    assert!(pending.is_empty(), "unresolved intents: {pending:?}");
    // Temporary files of writes that a kill cut short are gone too.
    let expected: BTreeSet<String> = names.iter().map(|n| format!("{n}.txt")).collect();
    assert_eq!(
        files_on_disk(&env),
        expected,
        "exactly one file per resource"
    );
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 60 resources up to date.\n"
    );
}

#[test]
fn ctrl_c_finishes_running_calls_and_records_them() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"
      resources = {
        slow = { type = "local.exec"; inputs = { executable = "sh"; args = [ "-c" "touch started; while [ ! -e release ]; do sleep 0.05; done; echo done" ]; }; };
        later = { type = "local.file"; inputs = { name = "later"; contents = resources.slow.stdout; }; };
      };"#,
    );
    let apply = env
        .command(&["apply"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.read("started").is_none() {
        assert!(Instant::now() < deadline, "the slow resource did not start");
        std::thread::yield_now();
    }
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &apply.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    env.write("release", "");
    let output = apply.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Interrupted: 1 created"), "{stderr}");
    assert!(stderr.contains("skipped later"), "{stderr}");
    // The call that was running is recorded; the next apply does the rest.
    let (names, pending) = recorded(&env);
    assert_eq!(names, BTreeSet::from(["slow".to_owned()]));
    assert!(pending.is_empty());
    env.run(&["apply"]).success();
    assert_eq!(env.read("later").as_deref(), Some("done\n"));
}

#[test]
fn an_operation_without_an_answer_leaves_its_intent_for_the_next_apply() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"
      resources.job = { type = "local.exec"; inputs = { executable = "sh"; args = [ "-c" "if [ -e hang ]; then while [ ! -e release ]; do sleep 0.05; done; fi; echo ran" ]; }; };"#,
    );
    env.run(&["apply"]).success();
    env.write("hang", "");
    let lost = env.run(&["--provider-timeout", "1", "run", "job", "rerun"]);
    assert_eq!(lost.code(), Some(1), "{lost}");
    assert!(lost.stderr.contains("did not answer within 1 s"), "{lost}");
    assert_eq!(
        env.run(&["state", "list"]).success().stdout,
        "job  local.exec  (pending operation rerun)\n"
    );
    env.write("release", "");
    std::fs::remove_file(env.dir().join("hang")).unwrap();
    let refused = env.run(&["run", "job", "rerun"]);
    assert!(
        refused
            .stderr
            .contains("resource job has an unfinished operation rerun from an earlier run; apply first to settle it"),
        "{refused}"
    );
    // `local.exec` cannot be read back: the apply clears the intent and keeps the record.
    env.run(&["apply"]).success();
    assert_eq!(
        env.run(&["state", "list"]).success().stdout,
        "job  local.exec\n"
    );
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 1 resource up to date.\n"
    );
    env.run(&["run", "job", "rerun"]).success();
}
