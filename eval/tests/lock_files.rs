//! The evaluator against real Nix (`NIXOPS4_TEST_NIX`, so CI runs these on Nix 2.8 and
//! current Nix): flakes whose inputs are not locked yet, which load the first time and
//! get their `flake.lock`.

mod common;

use common::{client, path};
use nixops4_eval::client::EvalClient;
use nixops4_eval::protocol::*;

/// A flake with a `path:` input (another local flake) and no `flake.lock`.
fn unlocked_flake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("input")).unwrap();
    std::fs::create_dir_all(dir.path().join("main")).unwrap();
    std::fs::write(
        dir.path().join("input/flake.nix"),
        "{ outputs = { self }: { greeting = \"from an input\"; }; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main/flake.nix"),
        format!(
            r#"{{
  inputs.other.url = "path:{}";
  outputs = {{ self, other }}: {{
    nixops4Deployments.default = {{ resources, ... }}: {{
      resources.a = {{ type = "local.file"; inputs = {{ name = "a"; contents = other.greeting; }}; }};
    }};
  }};
}}
"#,
            dir.path().join("input").display()
        ),
    )
    .unwrap();
    dir
}

async fn contents_of_a(client: &EvalClient) -> serde_json::Value {
    match client.evaluate_resource("default", &path("a")).await {
        Ok(Evaluation::Ready { value }) => value.inputs["contents"].clone(),
        other => panic!("a: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flake_without_a_lock_file_loads_and_gets_one() {
    let dir = unlocked_flake();
    let main = dir.path().join("main");
    let client = client().await;
    let loaded = client.load_flake(main.to_str().unwrap()).await.unwrap();
    let lock = main.join("flake.lock");
    assert_eq!(
        loaded.lock_file,
        Some(LockFileChange {
            path: lock.display().to_string(),
            created: true,
            git: false
        })
    );
    assert!(lock.is_file());
    assert_eq!(contents_of_a(&client).await, "from an input");
    // Locked now: loading again leaves it alone.
    let written = std::fs::read_to_string(&lock).unwrap();
    let again = client.load_flake(main.to_str().unwrap()).await.unwrap();
    assert_eq!(again.lock_file, None);
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), written);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_flake_without_a_lock_file_loads_and_says_to_add_it() {
    let dir = unlocked_flake();
    let main = dir.path().join("main");
    nixops4_tests::commit_flake_to_git(&main);
    let client = client().await;
    let loaded = client.load_flake(main.to_str().unwrap()).await.unwrap();
    let change = loaded.lock_file.expect("the lock file is created");
    assert!(change.created && change.git, "{change:?}");
    assert!(
        change
            .to_string()
            .ends_with(&format!("`git -C {} add flake.lock`", main.display())),
        "{change}"
    );
    assert_eq!(contents_of_a(&client).await, "from an input");
}
