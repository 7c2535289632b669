//! `nixops4-lsp --apply`, the editor's apply without an editor: exit codes, the JSON lines
//! it prints, and the same state as `nixops4 apply` leaves.

use nixops4_tests::TestEnv;

const DEPLOYMENT: &str = r#"      resources.a = { type = "local.file"; inputs = { name = "a.txt"; contents = "one"; }; };
      resources.b = { type = "local.file"; inputs = { name = "b.txt"; contents = resources.a.sha256; }; };"#;

fn headless(env: &TestEnv, args: &[&str]) -> nixops4_tests::CommandOutput {
    let mut all = vec!["--apply"];
    all.extend_from_slice(args);
    env.run_program("nixops4-lsp", &all)
}

#[test]
fn exit_codes_follow_the_outcome() {
    let env = TestEnv::new();
    env.write_deployment(DEPLOYMENT);
    assert_eq!(
        headless(&env, &["--plan-only"]).code(),
        Some(2),
        "changes pending"
    );
    let applied = headless(&env, &[]);
    assert_eq!(applied.code(), Some(0), "{}", applied.stderr);
    assert_eq!(env.read("a.txt").as_deref(), Some("one"));
    assert_eq!(
        headless(&env, &["--plan-only"]).code(),
        Some(0),
        "nothing pending"
    );

    // Dropping `b` deletes it: refused without --yes, done with it.
    env.write_deployment(DEPLOYMENT.lines().next().unwrap());
    let refused = headless(&env, &[]);
    assert_eq!(refused.code(), Some(1));
    assert!(
        refused.stderr.contains("run with --yes"),
        "{}",
        refused.stderr
    );
    assert!(env.dir().join("b.txt").exists());
    assert_eq!(headless(&env, &["--yes"]).code(), Some(0));
    assert!(!env.dir().join("b.txt").exists());

    // A resource that fails: exit 1, and the others' results are kept.
    env.write_deployment(
        r#"      resources.a = { type = "local.file"; inputs = { name = "a.txt"; contents = "one"; }; };
      resources.bad = { type = "local.exec"; inputs = { executable = "false"; }; };"#,
    );
    let failed = headless(&env, &[]);
    assert_eq!(failed.code(), Some(1));
    assert!(failed.stdout.contains("bad failed"), "{}", failed.stdout);
    assert_eq!(headless(&env, &["--target", "nope"]).code(), Some(1));
}

#[test]
fn json_lines_show_plan_progress_and_report() {
    let env = TestEnv::new();
    env.write_deployment(DEPLOYMENT);
    let output = headless(&env, &["--json"]);
    assert_eq!(output.code(), Some(0), "{}", output.stderr);
    insta::assert_snapshot!(output.stdout);
}

#[test]
fn leaves_the_same_state_as_nixops4_apply() {
    let (cli, lsp) = (TestEnv::new(), TestEnv::new());
    for env in [&cli, &lsp] {
        env.write_deployment(DEPLOYMENT);
    }
    cli.run(&["apply"]).success();
    assert_eq!(headless(&lsp, &[]).code(), Some(0));
    let show = |env: &TestEnv| env.run(&["state", "show"]).success().stdout;
    assert_eq!(show(&cli), show(&lsp));
    assert_eq!(cli.read("b.txt"), lsp.read("b.txt"));
}
