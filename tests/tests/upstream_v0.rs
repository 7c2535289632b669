//! Upstream's lifecycle for providers that speak upstream's protocol v0, end to end: a
//! resource without state whose inputs change is created again (upstream's providers refuse
//! to update one), and a removed or destroyed resource is forgotten with a warning, since
//! v0 has no delete. The provider is `tests/providers/upstream_v0_provider.py`, which
//! answers as upstream's local provider does on these points; it stands in for that
//! provider, which cannot be built in CI (its source is not on crates.io). Where
//! `NIXOPS4_UPSTREAM_LOCAL_PROVIDER` names a build of upstream's provider, each scenario
//! runs with it as well.

use nixops4_tests::TestEnv;

/// The v0 providers to run each scenario with: the stand-in always, and upstream's own
/// local provider where `NIXOPS4_UPSTREAM_LOCAL_PROVIDER` names a build of it (made by
/// hand from upstream's source; CI cannot fetch that source).
fn v0_providers() -> Vec<std::path::PathBuf> {
    let mut providers =
        vec![nixops4_tests::repository_root().join("tests/providers/upstream_v0_provider.py")];
    match std::env::var_os("NIXOPS4_UPSTREAM_LOCAL_PROVIDER") {
        Some(upstream) => providers.push(upstream.into()),
        None => eprintln!(
            "upstream's own local provider not tried: NIXOPS4_UPSTREAM_LOCAL_PROVIDER is not set"
        ),
    }
    providers
}

/// A `file` (no state) and a `memo` (state) of a v0 provider, upstream's types.
fn deployment(
    env: &TestEnv,
    provider: &std::path::Path,
    contents: &str,
    memo: u32,
    with_file: bool,
) {
    let file = if with_file {
        format!(
            r#"hello = {{ type = "v0.file"; inputs = {{ name = "hello.txt"; contents = "{contents}"; }}; }};"#
        )
    } else {
        String::new()
    };
    env.write_deployment(&format!(
        r#"
      providers.v0 = {{ executable = "{}"; }};
      resources = {{
        {file}
        memo = {{ type = "v0.memo"; inputs.initialize_with = {memo}; state = resources.st; }};
        st = {{ type = "local.state_file"; inputs.name = "state.jsonl"; }};
      }};"#,
        provider.display()
    ));
}

fn state_list(env: &TestEnv) -> String {
    env.run(&["state", "list"]).success().stdout
}

#[test]
fn a_resource_without_state_is_created_again_when_its_inputs_change() {
    // Every provider must give the same plan.
    for provider in v0_providers() {
        insta::allow_duplicates! { created_again(&provider) }
    }
}

fn created_again(provider: &std::path::Path) {
    let env = TestEnv::new();
    deployment(&env, provider, "Hello", 1, true);
    env.run(&["apply"]).success();
    assert_eq!(env.read("hello.txt").as_deref(), Some("Hello"));

    deployment(&env, provider, "Hello again", 2, true);
    let plan = env.run(&["plan"]).success();
    insta::assert_snapshot!(plan, @r#"
    NixOps4 will perform these actions on deployment `default`:

      + recreate hello (v0.file)
          (its provider speaks upstream's protocol v0: a resource without state is created again, not updated, and nothing is deleted)
          contents: "Hello" → "Hello again"
      ~ update   memo (v0.memo)
          initialize_with: 1 → 2

    Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 1 to create again; 0 unchanged.
    [EOF]
    "#);
    let json = env.run(&["plan", "--json"]).success();
    assert!(json.stdout.contains(r#""action": "recreate""#), "{json}");

    // The provider refuses an update of `file`: the apply succeeds only by creating it.
    let apply = env.run(&["apply", "--yes", "--parallelism", "1"]).success();
    assert!(
        apply.stderr.ends_with(
            "Done: 0 created, 1 updated, 0 replaced, 0 deleted, 1 created again, 0 unchanged, 0 failed, 0 skipped.\n"
        ),
        "{apply}"
    );
    assert_eq!(env.read("hello.txt").as_deref(), Some("Hello again"));
    let plan = env.run(&["plan"]).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");
    // A memo keeps the value it was created with, as upstream's does.
    let state = env.run(&["state", "show"]).success().stdout;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["resources"]["memo"]["output_properties"]["value"], 1);
}

#[test]
fn a_removed_resource_is_forgotten_with_a_warning_that_nothing_was_deleted() {
    // Every provider must give the same plan.
    for provider in v0_providers() {
        insta::allow_duplicates! { forgotten(&provider) }
    }
}

fn forgotten(provider: &std::path::Path) {
    let env = TestEnv::new();
    deployment(&env, provider, "Hello", 1, true);
    env.run(&["apply"]).success();

    deployment(&env, provider, "Hello", 1, false);
    let plan = env.run(&["plan"]).success();
    insta::assert_snapshot!(plan, @r"
    NixOps4 will perform these actions on deployment `default`:

      - forget   hello (v0.file)
          (its provider speaks upstream's protocol v0, which cannot delete: it is only forgotten from state, and what it made stays)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 1 to forget; 1 unchanged.
    [EOF]
    ");
    let apply = env.run(&["apply", "--yes"]).success();
    assert!(
        apply.stderr.contains(
            "warning: forgot hello without deleting it: provider `v0` speaks upstream's protocol v0, which cannot delete; delete what it made yourself if it should be gone\n"
        ),
        "{apply}"
    );
    assert!(
        apply.stderr.ends_with(
            "Done: 0 created, 0 updated, 0 replaced, 0 deleted, 1 forgotten (not deleted), 1 unchanged, 0 failed, 0 skipped.\n"
        ),
        "{apply}"
    );
    assert_eq!(
        env.read("hello.txt").as_deref(),
        Some("Hello"),
        "not deleted"
    );
    assert_eq!(state_list(&env), "memo  v0.memo\n");
    assert_eq!(
        env.run(&["plan"]).success().stdout,
        "No changes. 1 resource up to date.\n"
    );

    // A destroy forgets too.
    let destroy = env.run(&["destroy", "--yes"]).success();
    assert!(
        destroy
            .stderr
            .contains("warning: forgot memo without deleting it"),
        "{destroy}"
    );
    assert_eq!(state_list(&env), "");
}

/// Upstream's local provider as NixOps4's own local provider, state file included: a copy
/// of `nixops4` and `nixops4-eval` with upstream's `nixops4-resources-local` beside them
/// (where NixOps4 looks for its local provider). Only where it is built by hand.
#[test]
fn upstream_local_provider_stores_the_state_and_gets_its_lifecycle() {
    let Some(upstream) = std::env::var_os("NIXOPS4_UPSTREAM_LOCAL_PROVIDER") else {
        eprintln!("not tried: NIXOPS4_UPSTREAM_LOCAL_PROVIDER is not set");
        return;
    };
    if TestEnv::in_root() {
        eprintln!("not tried: the copied programs would not be in the root");
        return;
    }
    let programs = tempfile::tempdir().unwrap();
    for name in ["nixops4", "nixops4-eval"] {
        std::fs::copy(nixops4_tests::binary(name), programs.path().join(name)).unwrap();
    }
    std::fs::copy(&upstream, programs.path().join("nixops4-resources-local")).unwrap();
    let env = TestEnv::new();
    let nixops4 = programs.path().join("nixops4");
    let run = |args: &[&str]| env.run_copy(&nixops4, args);
    let write = |file: &str| {
        env.write_deployment(&format!(
            r#"
      resources = {{
        {file}
        memo = {{ type = "local.memo"; inputs.initialize_with = 1; state = resources.st; }};
        st = {{ type = "local.state_file"; inputs.name = "upstream-state.json"; }};
      }};"#
        ))
    };
    write(
        r#"hello = { type = "local.file"; inputs = { name = "hello.txt"; contents = "Hello"; }; };"#,
    );
    run(&["apply", "--yes"]).success();
    // Upstream's state_file wrote it: pretty-printed events, every index 0.
    let stored = env.read("upstream-state.json").unwrap();
    assert!(stored.starts_with("{\n  \"index\": 0,"), "{stored}");
    assert!(!stored.contains("\"index\": 1"), "{stored}");

    write(
        r#"hello = { type = "local.file"; inputs = { name = "hello.txt"; contents = "Hello again"; }; };"#,
    );
    let apply = run(&["apply", "--yes"]).success();
    assert!(apply.stderr.contains("1 created again"), "{apply}");
    assert_eq!(env.read("hello.txt").as_deref(), Some("Hello again"));
    let plan = run(&["plan"]).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");

    write("");
    let apply = run(&["apply", "--yes"]).success();
    assert!(
        apply.stderr.contains("warning: forgot hello without deleting it: provider `local` speaks upstream's protocol v0"),
        "{apply}"
    );
    assert_eq!(env.read("hello.txt").as_deref(), Some("Hello again"));
    assert_eq!(
        run(&["state", "list"]).success().stdout,
        "memo  local.memo\n"
    );
}
