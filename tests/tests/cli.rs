//! `nixops4` end to end: the real CLI, real Nix, the real local provider, in a pinned
//! environment. Outputs are snapshots (tests/tests/snapshots/); `--parallelism 1` keeps
//! the order of progress lines fixed where a snapshot shows them.

use nixops4_tests::TestEnv;
use serde_json::Value;

const THREE_FILES: &str = r#"
      resources = {
        a = { type = "local.file"; inputs = { name = "a.txt"; contents = "A1"; }; };
        b = { type = "local.file"; inputs = { name = "b.txt"; contents = "b sees ${resources.a.path}"; }; };
        c = { type = "local.file"; inputs = { name = "c.txt"; contents = "C"; mode = "0600"; }; };
      };
      outputs.summary = "a is at ${resources.a.path}";"#;

fn state_events(env: &TestEnv) -> Vec<Value> {
    env.read(".nixops4/default.state.jsonl")
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("state events are JSON lines"))
        .collect()
}

#[test]
fn create_update_replace_delete_destroy() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    insta::assert_snapshot!("plan_initial", env.run(&["plan"]).success());
    insta::assert_snapshot!("plan_initial_json", env.run(&["plan", "--json"]).success());
    let plan = env.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code(), Some(2), "changes pending: {plan}");

    insta::assert_snapshot!(
        "apply_initial",
        env.run(&["apply", "--parallelism", "1"]).success()
    );
    assert_eq!(env.read("a.txt").as_deref(), Some("A1"));
    assert_eq!(
        env.read("b.txt"),
        Some(format!("b sees {}", env.dir().join("a.txt").display()))
    );
    let no_changes = env.run(&["plan", "--detailed-exitcode"]).success();
    assert_eq!(no_changes.stdout, "No changes. 3 resources up to date.\n");
    assert_eq!(
        env.run(&["output", "summary"]).success().stdout,
        "a is at <flake>/a.txt\n"
    );

    // Edit an input (update) and one that forces a replacement.
    env.write_deployment(
        &THREE_FILES
            .replace("\"A1\"", "\"A2\"")
            .replace("\"c.txt\"", "\"c2.txt\""),
    );
    insta::assert_snapshot!("plan_update_replace", env.run(&["plan"]).success());
    let refused = env.run(&["apply"]);
    assert_eq!(refused.code(), Some(2), "{refused}");
    assert!(refused.stderr.contains("run with --yes"), "{refused}");
    assert!(env.read("c.txt").is_some(), "nothing was applied");
    insta::assert_snapshot!(
        "apply_update_replace",
        env.run(&["apply", "--yes", "--parallelism", "1"]).success()
    );
    assert_eq!(env.read("a.txt").as_deref(), Some("A2"));
    assert!(env.read("c.txt").is_none());
    assert_eq!(env.read("c2.txt").as_deref(), Some("C"));

    // Remove a resource from the expression: it is deleted.
    let without_b = THREE_FILES
        .replace("\"A1\"", "\"A2\"")
        .replace("\"c.txt\"", "\"c2.txt\"")
        .lines()
        .filter(|line| !line.trim_start().starts_with("b ="))
        .collect::<Vec<_>>()
        .join("\n");
    env.write_deployment(&without_b);
    insta::assert_snapshot!("plan_delete", env.run(&["plan"]).success());
    env.run(&["apply", "--yes"]).success();
    assert!(env.read("b.txt").is_none());
    insta::assert_snapshot!("state_list", env.run(&["state", "list"]).success());

    insta::assert_snapshot!(
        "destroy",
        env.run(&["destroy", "--yes", "--parallelism", "1"])
            .success()
    );
    assert!(env.read("a.txt").is_none() && env.read("c2.txt").is_none());
    assert_eq!(env.run(&["state", "list"]).success().stdout, "");
    let events = state_events(&env);
    let kinds: Vec<&str> = events
        .iter()
        .skip(1)
        .map(|e| e["meta"]["event"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"intent") && kinds.contains(&"apply") && kinds.contains(&"destroy"),
        "{kinds:?}"
    );
}

#[test]
fn chains_and_diamonds_apply_in_dependency_order() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"
      resources = {
        top = { type = "local.file"; inputs = { name = "top"; contents = "top"; }; };
        left = { type = "local.file"; inputs = { name = "left"; contents = "left of ${resources.top.sha256}"; }; };
        right = { type = "local.file"; inputs = { name = "right"; contents = "right of ${resources.top.sha256}"; }; };
        bottom = { type = "local.file"; inputs = { name = "bottom"; contents = "${resources.left.path} ${resources.right.path}"; }; };
        tail = { type = "local.exec"; inputs = { executable = "cat"; args = [ resources.bottom.path ]; }; };
      };"#,
    );
    env.run(&["apply"]).success();
    let bottom = env.read("bottom").unwrap();
    assert_eq!(
        bottom,
        format!(
            "{} {}",
            env.dir().join("left").display(),
            env.dir().join("right").display()
        )
    );
    let state = env.run(&["state", "show"]).success();
    let document: Value = serde_json::from_str(&state.stdout).unwrap();
    assert_eq!(
        document["resources"]["tail"]["output_properties"]["stdout"],
        "<flake>/left <flake>/right"
    );
    let depends: Vec<&str> = document["resources"]["bottom"]["nixops4"]["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(depends, ["left", "right"]);
    // Destroy deletes dependents first: tail, bottom, then left/right, then top.
    let destroyed = env
        .run(&["destroy", "--yes", "--parallelism", "1"])
        .success();
    let order: Vec<&str> = destroyed
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("deleted "))
        .collect();
    assert_eq!(
        order,
        ["tail", "bottom", "left", "right", "top"],
        "{destroyed}"
    );
}

#[test]
fn targets_apply_what_they_need_only() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    env.run(&["apply", "--target", "b"]).success();
    assert!(env.read("a.txt").is_some() && env.read("b.txt").is_some());
    assert!(env.read("c.txt").is_none(), "c is not needed by b");
    let missing = env.run(&["apply", "--target", "nope"]);
    assert_eq!(missing.code(), Some(2));
    assert!(
        missing.stderr.contains("there is no resource nope"),
        "{missing}"
    );
    // Destroying a target takes what depends on it along.
    env.run(&["destroy", "--yes", "--target", "a"]).success();
    assert!(env.read("a.txt").is_none() && env.read("b.txt").is_none());
}

#[test]
fn saved_plans_apply_exactly_or_not_at_all() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    env.run(&["plan", "--out", "plan.json"]).success();
    env.run(&["apply", "--plan", "plan.json"]).success();
    assert_eq!(env.read("a.txt").as_deref(), Some("A1"));

    env.run(&["plan", "--out", "stale.json"]).success();
    env.write_deployment(&THREE_FILES.replace("\"A1\"", "\"A3\""));
    let stale = env.run(&["apply", "--plan", "stale.json"]);
    insta::assert_snapshot!("apply_stale_plan", stale);
    assert_eq!(
        env.read("a.txt").as_deref(),
        Some("A1"),
        "nothing applied from a stale plan"
    );
}

#[test]
fn operations_run_and_are_recorded() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    env.run(&["apply"]).success();
    let backup = env.command(&["run", "a", "backup"]).output().unwrap();
    assert!(backup.status.success());
    let result: Value = serde_json::from_slice(&backup.stdout).unwrap();
    let copy = result["path"].as_str().unwrap();
    assert!(
        copy.starts_with(&env.dir().join("a.txt.backup-").display().to_string()),
        "{copy}"
    );
    assert_eq!(std::fs::read_to_string(copy).unwrap(), "A1");
    let events = state_events(&env);
    assert_eq!(
        events.last().unwrap()["meta"]["event"],
        "operation backup on a"
    );
    let unknown = env.run(&["run", "a", "bakup"]);
    assert!(
        unknown.stderr.contains(
            "unknown operation `bakup` for resource type `file` (did you mean `backup`?)"
        ),
        "{unknown}"
    );
    let unrecorded = env.run(&["run", "nope", "backup"]);
    assert!(
        unrecorded
            .stderr
            .contains("resource nope is not recorded in the state"),
        "{unrecorded}"
    );
}

#[test]
fn renames_keep_the_resource_with_state_mv() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    env.run(&["apply"]).success();
    env.write_deployment(&THREE_FILES.replace("c = {", "renamed = {"));
    let plan = env.run(&["plan"]).success();
    assert!(
        plan.stdout.contains("- delete   c") && plan.stdout.contains("+ create   renamed"),
        "{plan}"
    );
    env.run(&["state", "mv", "c", "renamed"]).success();
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 3 resources up to date.\n"
    );
    env.run(&["state", "rm", "renamed"]).success();
    assert!(
        env.read("c.txt").is_some(),
        "state rm forgets without deleting"
    );
}

#[test]
fn a_failing_resource_stops_its_dependents_only() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"
      resources = {
        fails = { type = "local.exec"; inputs = { executable = "sh"; args = [ "-c" "echo broken >&2; exit 3" ]; }; };
        needsIt = { type = "local.file"; inputs = { name = "needs"; contents = resources.fails.stdout; }; };
        fine = { type = "local.file"; inputs = { name = "fine"; contents = "fine"; }; };
        badInput = { type = "local.file"; inputs = { name = "bad"; contnets = "typo"; }; };
      };"#,
    );
    let failed = env.run(&["apply", "--parallelism", "1"]);
    insta::assert_snapshot!("apply_with_failures", failed);
    assert_eq!(env.read("fine").as_deref(), Some("fine"));
    assert!(env.read("needs").is_none());
    // Nothing of the failed ones is in the state, so the next apply tries them again.
    let listed = env.run(&["state", "list"]).success();
    assert_eq!(listed.stdout, "fine  local.file\n");
}

#[test]
fn providers_that_crash_print_garbage_or_hang_are_contained() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"
      providers = {
        crashes = { executable = "sh"; args = [ "-c" "read line; echo 'provider crashed' >&2; exit 7" ]; };
        garbage = { executable = "sh"; args = [ "-c" "while read line; do echo 'not json'; done" ]; };
        hangs = { executable = "sh"; args = [ "-c" "exec sleep 600" ]; };
      };
      resources = {
        crash = { type = "crashes.thing"; inputs = { }; };
        noise = { type = "garbage.thing"; inputs = { }; };
        stuck = { type = "hangs.thing"; inputs = { }; };
        fine = { type = "local.file"; inputs = { name = "fine"; contents = "fine"; }; };
      };"#,
    );
    let out = env.run(&["apply", "--provider-timeout", "2"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("crash") && out.stderr.contains("provider crashed"),
        "{out}"
    );
    assert!(
        out.stderr.contains("not a protocol message") && out.stderr.contains("not json"),
        "{out}"
    );
    assert!(out.stderr.contains("did not answer within 2 s"), "{out}");
    assert_eq!(
        env.read("fine").as_deref(),
        Some("fine"),
        "other resources are applied"
    );
    // State stays readable and consistent.
    let listed = env.run(&["state", "list"]).success();
    assert!(listed.stdout.contains("fine  local.file"), "{listed}");
}

#[test]
fn corrupt_state_is_refused_with_its_line() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    env.run(&["apply"]).success();
    let path = env.dir().join(".nixops4/default.state.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let lines = text.lines().count();
    text.push_str("{\"index\": 99, \"patch\": [");
    std::fs::write(&path, text).unwrap();
    let plan = env.run(&["plan"]);
    assert_eq!(plan.code(), Some(1), "{plan}");
    assert!(
        plan.stderr
            .contains(&format!("starting at line {} is incomplete", lines + 1)),
        "{plan}"
    );
}

#[test]
fn two_applies_exclude_each_other() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"
      resources.slow = { type = "local.exec"; inputs = { executable = "sh"; args = [ "-c" "while [ ! -e release ]; do sleep 0.05; done" ]; }; };"#,
    );
    let mut first = env
        .command(&["apply"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first apply holds the lock: its intent is in the state.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !env
        .read(".nixops4/default.state.jsonl")
        .unwrap_or_default()
        .contains("\"intent\"")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first apply did not start"
        );
        std::thread::yield_now();
    }
    let second = env.run(&["apply"]);
    insta::assert_snapshot!("apply_locked", second);
    env.write("release", "");
    assert!(first.wait().unwrap().success());
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 1 resource up to date.\n"
    );
}

#[test]
fn list_commands_and_completions() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    assert_eq!(env.run(&["deployments"]).success().stdout, "default\n");
    assert_eq!(env.run(&["resources"]).success().stdout, "a\nb\nc\n");
    let missing = env.run(&["-d", "prod", "plan"]);
    assert!(
        missing
            .stderr
            .contains("the flake has no deployment `prod` (it has: default)"),
        "{missing}"
    );
    let completions = env.run(&["completions", "bash"]).success();
    assert!(completions.stdout.contains("nixops4"));
}

#[test]
fn json_log_format_for_machines() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    insta::assert_snapshot!(
        "apply_json",
        env.run(&["apply", "--log-format", "json", "--parallelism", "1"])
            .success()
    );
    let report = env
        .run(&["destroy", "--yes", "--log-format", "json"])
        .success();
    let last: Value = serde_json::from_str(report.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["applied"],
        serde_json::json!({"a": "delete", "b": "delete", "c": "delete"})
    );
}

/// The command-line reference: every subcommand's help, as one snapshot, so that a change
/// of the interface shows up in review.
#[test]
fn command_line_reference() {
    let env = TestEnv::new();
    let mut reference = String::new();
    for command in [
        &[][..],
        &["plan"],
        &["apply"],
        &["destroy"],
        &["run"],
        &["output"],
        &["script"],
        &["state"],
        &["state", "show"],
        &["state", "mv"],
    ] {
        let mut args: Vec<&str> = command.to_vec();
        args.push("--help");
        let help = env.run(&args).success();
        reference.push_str(&format!("$ nixops4 {}\n{}\n", args.join(" "), help.stdout));
    }
    insta::assert_snapshot!("help", reference);
}

#[test]
fn depends_on_and_sequences_order_resources_without_outputs() {
    let env = TestEnv::new();
    env.write(
        "nixops4-lib.nix",
        &std::fs::read_to_string(nixops4_tests::repository_root().join("nix/lib.nix")).unwrap(),
    );
    env.write(
        "flake.nix",
        r#"{
  outputs = { self }: let lib = import ./nixops4-lib.nix; in {
    nixops4Deployments.default = { resources, ... }: {
      resources = {
        first = { type = "local.exec"; inputs = { executable = "sh"; args = [ "-c" "sleep 0.3; touch first-done" ]; }; };
        second = { type = "local.exec"; inputs = { executable = "test"; args = [ "-e" "first-done" ]; }; dependsOn = [ resources.first ]; };
        steps = lib.mkSequence [
          { name = "one"; type = "local.exec"; inputs = { executable = "sh"; args = [ "-c" "sleep 0.3; touch one-done" ]; }; }
          { name = "two"; type = "local.exec"; inputs = { executable = "test"; args = [ "-e" "one-done" ]; }; }
        ];
      };
    };
  };
}
"#,
    );
    let applied = env.run(&["apply"]);
    assert!(
        applied.status.success(),
        "the ordered resources ran in order:\n{applied}"
    );
    let listed = env.run(&["state", "list"]).success();
    assert_eq!(
        listed.stdout,
        "first  local.exec\nsecond  local.exec\nsteps.one  local.exec\nsteps.two  local.exec\n"
    );
}

#[test]
fn a_named_state_resource_holds_the_state() {
    let env = TestEnv::new();
    let deployment = r#"
      resources = {
        state = { type = "local.state_file"; inputs.name = "deployment.state.jsonl"; };
        counter = { type = "local.memo"; inputs.initialize_with = 1; state = resources.state; };
        note = { type = "local.file"; inputs = { name = "note"; contents = "state in ${resources.state.path}"; }; state = resources.state; };
      };"#;
    env.write_deployment(deployment);
    env.run(&["apply"]).success();
    assert!(env.read("deployment.state.jsonl").is_some());
    assert!(
        !env.dir().join(".nixops4/default.state.jsonl").exists(),
        "the default state file is not used"
    );
    assert_eq!(
        env.read("note"),
        Some(format!(
            "state in {}",
            env.dir().join("deployment.state.jsonl").display()
        ))
    );
    assert_eq!(
        env.run(&["state", "list"]).success().stdout,
        "counter  local.memo\nnote  local.file\n"
    );
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 2 resources up to date.\n"
    );
    // A memo keeps its first value, in the named state.
    env.write_deployment(&deployment.replace("initialize_with = 1", "initialize_with = 2"));
    env.run(&["apply"]).success();
    let document: Value =
        serde_json::from_str(&env.run(&["state", "show"]).success().stdout).unwrap();
    assert_eq!(
        document["resources"]["counter"]["output_properties"]["value"],
        1
    );
    env.run(&["destroy", "--yes"]).success();
    assert!(env.read("note").is_none());
    assert!(
        env.read("deployment.state.jsonl").is_some(),
        "the state resource itself is kept"
    );
}

#[test]
fn refresh_records_drift_and_forgets_what_is_gone() {
    let env = TestEnv::new();
    env.write_deployment(THREE_FILES);
    env.run(&["apply"]).success();
    env.write("a.txt", "changed by hand");
    std::fs::remove_file(env.dir().join("c.txt")).unwrap();
    insta::assert_snapshot!("refresh", env.run(&["refresh"]).success());
    let plan = env.run(&["plan"]).success();
    assert!(plan.stdout.contains("+ create   c (local.file)"), "{plan}");
    env.run(&["apply"]).success();
    assert_eq!(env.read("c.txt").as_deref(), Some("C"));
    // The hand-made change is in the outputs now, but the inputs did not change: a is left
    // alone, as a plan compares inputs.
    assert_eq!(env.read("a.txt").as_deref(), Some("changed by hand"));
}

#[test]
fn secrets_stay_out_of_plans() {
    let env = TestEnv::new();
    let provider = env.program_path("nixops4-resources-testing");
    let deployment = format!(
        r#"
      providers.testing = {{ executable = "{}"; }};
      resources = {{
        key = {{ type = "testing.secret"; inputs.name = "db"; }};
        config = {{ type = "local.file"; inputs = {{ name = "config"; contents = "password=${{resources.key.token}} user=${{resources.key.public}}"; }}; }};
      }};"#,
        provider.display()
    );
    env.write_deployment(&deployment);
    env.run(&["apply"]).success();
    assert_eq!(
        env.read("config").as_deref(),
        Some("password=s3cr3t-token-for-db user=public-db")
    );
    env.write_deployment(&deployment.replace("user=", "login="));
    let plan = env.run(&["plan"]).success();
    assert!(!plan.stdout.contains("s3cr3t"), "{plan}");
    assert!(
        plan.stdout
            .contains("contents: \"(sensitive)\" → \"(sensitive)\""),
        "{plan}"
    );
    let json = env.run(&["plan", "--json"]).success();
    assert!(!json.stdout.contains("s3cr3t"), "{json}");
}
