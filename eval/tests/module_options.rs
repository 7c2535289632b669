//! Module-system deployments as the language server asks about them, against real Nix and
//! a nixpkgs `lib` from `NIXOPS4_NIXPKGS_LIB` (skipped, saying so, without one): the
//! option tree with descriptions, types and declarations in the flake's own files, and
//! generated resources placed at the expression that generates them. A deployment
//! written as a plain function has no options, with or without a nixpkgs `lib`.

mod common;

use std::path::Path;

use common::{client, path};
use nixops4_eval::client::EvalClient;
use nixops4_eval::protocol::*;
use nixops4_tests::{eval_fixture, nixpkgs_lib};

async fn loaded(name: &str) -> (tempfile::TempDir, EvalClient) {
    let flake = eval_fixture(name);
    let client = client().await;
    client
        .load_flake(flake.path().to_str().unwrap())
        .await
        .expect("the fixture loads");
    (flake, client)
}

/// Where a resource is said to be declared, relative to the flake: `file:line:column`.
async fn position(client: &EvalClient, flake: &Path, resource: &str) -> String {
    let spec = match client.evaluate_resource("default", &path(resource)).await {
        Ok(Evaluation::Ready { value }) => value,
        other => panic!("{resource}: expected ready, got {other:?}"),
    };
    let position = spec.position.expect("a position");
    let file = Path::new(&position.file);
    let relative = file.strip_prefix(flake).unwrap_or(file).display();
    format!("{relative}:{}:{}", position.line, position.column)
}

#[tokio::test(flavor = "multi_thread")]
async fn module_options_are_listed_with_their_descriptions_and_declarations() {
    let Some(_) = nixpkgs_lib() else { return };
    let (flake, client) = loaded("pixelfed").await;
    let options = client.list_options("default").await.unwrap();
    let paths: Vec<String> = options.iter().map(|o| o.path.join(".")).collect();
    assert_eq!(
        paths,
        [
            "customers",
            "customers.<name>.domain",
            "customers.<name>.plan",
            "outputs",
            "providers",
            "resources"
        ]
    );
    let domain = &options[1];
    assert_eq!(
        domain.description.as_deref(),
        Some("The customer's domain, where their Pixelfed answers.")
    );
    assert_eq!(domain.type_description.as_deref(), Some("string"));
    assert_eq!(domain.example.as_deref(), Some("\"pixelfed.example.org\""));
    assert_eq!(domain.default, None);
    // Literal wrappers give their text; a plain default is written as in Nix.
    let plan = &options[2];
    assert_eq!(
        plan.description.as_deref(),
        Some("How much the customer pays for: *small* or *large*.")
    );
    assert_eq!(
        plan.type_description.as_deref(),
        Some("one of \"small\", \"large\"")
    );
    assert_eq!(plan.default.as_deref(), Some("\"small\""));
    assert_eq!(
        plan.example.as_deref(),
        Some("if big then \"large\" else \"small\"")
    );
    let declared = &domain.declarations[0];
    assert_eq!(
        Path::new(&declared.file),
        flake.path().canonicalize().unwrap().join("customer.nix"),
        "declared in the flake's own file, not its store copy"
    );
    // Libs since 24.05 record the line and column; older ones the file only.
    if let Some(line) = declared.line {
        assert_eq!((line, declared.column), (2, Some(3)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_resources_are_placed_where_their_set_is_written() {
    let Some(_) = nixpkgs_lib() else { return };
    let (flake, client) = loaded("pixelfed").await;
    let flake = flake.path().canonicalize().unwrap();
    for customer in ["alice", "bob"] {
        assert_eq!(
            position(&client, &flake, &format!("pixelfed-{customer}")).await,
            "applications/pixelfed.nix:3:5",
            "{customer}'s resource, generated with `lib.mapAttrs'`"
        );
    }
    // Declared by name, but merged by the module system: still the user's file.
    assert_eq!(
        position(&client, &flake, "sshkeypair").await,
        "deployment.nix:2:28"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_deployment_has_no_options() {
    let (_flake, client) = loaded("chain").await;
    assert_eq!(client.list_options("default").await.unwrap(), []);
}
