//! State through any provider's state resource: a storage whose provider offers no lock
//! (here one that speaks only upstream's protocol v0, `tests/providers/upstream_v0_provider.py`)
//! is never changed, and the errors name the storage.

use nixops4_tests::{TestEnv, repository_root};

#[test]
fn a_storage_without_a_lock_is_never_changed() {
    let env = TestEnv::new();
    let script = repository_root().join("tests/providers/upstream_v0_provider.py");
    env.write_deployment(&format!(
        r#"
      providers.upstream = {{ executable = "python3"; args = [ "{}" ]; }};
      resources = {{
        state = {{ type = "upstream.file"; inputs = {{ name = "state.txt"; contents = "created"; }}; }};
        a = {{ type = "local.file"; inputs = {{ name = "a.txt"; contents = "a"; }}; state = resources.state; }};
      }};"#,
        script.display()
    ));
    let apply = env.run(&["apply", "--yes"]);
    assert!(!apply.status.success(), "{apply}");
    assert!(
        apply.stderr.contains(
            "the state resource state (upstream.file) cannot be locked: its provider does not offer the state lock"
        ),
        "{apply}"
    );
    assert!(
        env.read("a.txt").is_none() && env.read("state.txt").is_none(),
        "nothing was sent to a provider that changes something"
    );
    // Reading goes through the same provider, and its refusal names the storage.
    let plan = env.run(&["plan"]);
    assert!(
        plan.stderr
            .contains("the state resource state (upstream.file): provider `upstream`"),
        "{plan}"
    );
}
