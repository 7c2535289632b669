//! A fresh flake with an input and no `flake.lock` applies the first time, as `nix build`
//! would build it: the lock file is created (and, in a Git repository, `nixops4` and the
//! language server say to add it), and later commands leave it alone. The input is a copy
//! of the repository's own Nix library flake (`nix/`) beside the flake, a `path:` input (a
//! copy, so that it is also there where the tests run inside another root).

use nixops4_tests::lsp_client::LspClient;
use nixops4_tests::{TestEnv, repository_root};
use serde_json::json;

fn flake_with_an_input(env: &TestEnv) {
    for file in ["flake.nix", "lib.nix"] {
        let text = std::fs::read_to_string(repository_root().join("nix").join(file))
            .expect("the Nix library");
        env.write(&format!("library/{file}"), &text);
    }
    env.write(
        "flake.nix",
        &format!(
            r#"{{
  inputs.nixops4.url = "path:{}";
  outputs = {{ self, nixops4 }}: {{
    nixops4Deployments.default = {{ resources, ... }}: {{
      resources.steps = nixops4.lib.mkSequence [
        {{ name = "one"; type = "local.file"; inputs = {{ name = "one.txt"; contents = "1"; }}; }}
        {{ name = "two"; type = "local.file"; inputs = {{ name = "two.txt"; contents = "2"; }}; }}
      ];
    }};
  }};
}}
"#,
            env.dir().join("library").display()
        ),
    );
}

#[test]
fn a_flake_without_a_lock_file_applies_the_first_time() {
    let env = TestEnv::new();
    flake_with_an_input(&env);
    insta::assert_snapshot!(env.run(&["apply", "--parallelism", "1"]).success(), @"
    ------- stderr -------
    note: created <flake>/flake.lock to lock the flake's inputs
    NixOps4 will perform these actions on deployment `default`:

      + create   steps.one (local.file)
      + create   steps.two (local.file)

    Plan: 2 to create, 0 to update, 0 to replace, 0 to delete; 0 unchanged.
    creating steps.one...
    created steps.one
    creating steps.two...
    created steps.two
    Done: 2 created, 0 updated, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 0 skipped.
    [EOF]
    ");
    assert_eq!(env.read("two.txt").as_deref(), Some("2"));
    let lock = env.read("flake.lock").expect("the lock file is created");
    assert!(lock.contains("\"nixops4\""), "{lock}");
    insta::assert_snapshot!(env.run(&["plan"]).success(), @"
    No changes. 2 resources up to date.
    [EOF]
    ");
    assert_eq!(
        env.read("flake.lock"),
        Some(lock),
        "left alone once complete"
    );
}

#[test]
fn in_a_git_repository_the_new_lock_file_is_to_be_added() {
    let env = TestEnv::new();
    flake_with_an_input(&env);
    nixops4_tests::commit_flake_to_git(env.dir());
    let applied = env.run(&["apply"]).success();
    assert!(
        applied.stderr.starts_with(
            "note: created <flake>/flake.lock to lock the flake's inputs; add it to Git, which is where Nix looks for a flake's files: `git -C <flake> add flake.lock`\n"
        ),
        "{applied}"
    );
    assert_eq!(env.read("one.txt").as_deref(), Some("1"));
}

#[test]
fn the_language_server_says_so_too() {
    let env = TestEnv::new();
    flake_with_an_input(&env);
    nixops4_tests::commit_flake_to_git(env.dir());
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    client.open_file(&env.dir().join("flake.nix"));
    let told = client.wait_for("the note", |m| m["method"] == "window/showMessage");
    assert_eq!(
        told["params"]["message"],
        format!(
            "NixOps4: created {dir}/flake.lock to lock the flake's inputs; add it to Git, which is where Nix looks for a flake's files: `git -C {dir} add flake.lock`",
            dir = env.dir().display()
        )
    );
    client.wait_for("the plan", |m| m["method"] == "nixops4/planChanged");
    client.shutdown();
}
