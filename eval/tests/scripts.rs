//! A deployment's scripts against real Nix (`NIXOPS4_TEST_NIX`, so CI runs these on Nix
//! 2.8 and current Nix): listed without resource outputs, evaluated with them, with the
//! string context of what they run, and contract errors with their positions.

mod common;

use std::path::Path;

use common::{client, path};
use nixops4_eval::client::EvalClient;
use nixops4_eval::protocol::*;
use nixops4_tests::eval_fixture;
use serde_json::json;

async fn script(client: &EvalClient, deployment: &str, name: &str) -> Result<ScriptSpec, String> {
    match client.evaluate_script(deployment, &path(name)).await {
        Ok(Evaluation::Ready { value }) => Ok(value),
        Ok(Evaluation::Waiting { resources }) => Err(format!("waiting for {resources:?}")),
        Err(error) => Err(error.message),
    }
}

/// The `scripts` fixture, loaded.
async fn scripts_fixture() -> (tempfile::TempDir, EvalClient) {
    let flake = eval_fixture("scripts");
    let client = client().await;
    client
        .load_flake(flake.path().to_str().unwrap())
        .await
        .unwrap();
    (flake, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_are_listed_without_outputs_and_evaluated_with_them() {
    let (flake, client) = scripts_fixture().await;
    let listed = client.list_scripts("default").await.unwrap();
    let names: Vec<String> = listed.iter().map(|s| s.script.to_string()).collect();
    assert_eq!(names, ["backup", "build", "plain", "web.ssh"]);
    let backup = listed[0]
        .position
        .as_ref()
        .expect("where backup is declared");
    assert_eq!(
        (Path::new(&backup.file), backup.line),
        (flake.path().join("flake.nix").as_path(), 23)
    );

    // Its outputs need db, which is not applied yet.
    assert_eq!(
        script(&client, "default", "backup").await,
        Err(format!("waiting for {:?}", [path("db")]))
    );
    let outputs = json!({"path": "/out/db", "id": "s3cr3t"});
    client
        .provide_outputs("default", &path("db"), outputs.as_object().unwrap().clone())
        .await
        .unwrap();
    let backup = script(&client, "default", "backup").await.unwrap();
    assert!(
        backup.program.starts_with("/nix/store/") && backup.program.ends_with("-backup.sh"),
        "{backup:?}"
    );
    assert_eq!(backup.args, ["--all"]);
    assert_eq!(
        serde_json::Value::Object(backup.outputs.clone()),
        json!({"DB_URL": "/out/db", "TOKEN": "s3cr3t", "COUNT": 3})
    );
    assert_eq!(backup.needs, []);
    assert!(
        !format!("{backup:?}").contains("s3cr3t"),
        "Debug names outputs without their values"
    );

    // A program from a derivation reports what must be built first.
    let build = script(&client, "default", "build").await.unwrap();
    let [needed] = build.needs.as_slice() else {
        panic!("one derivation: {build:?}");
    };
    assert!(needed.path.ends_with("-tool.drv"), "{needed:?}");
    assert_eq!(build.program, format!("{}/bin/tool", needed.outputs["out"]));

    assert_eq!(
        script(&client, "default", "web.ssh").await,
        Err(format!("waiting for {:?}", [path("web.key")]))
    );
    assert!(
        script(&client, "default", "nope")
            .await
            .unwrap_err()
            .contains("the deployment has no script nope (it has: backup, build, plain, web.ssh)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scripts_that_break_the_contract_say_how() {
    let (_flake, client) = scripts_fixture().await;
    for (name, message) in [
        (
            "number",
            "`program` of script number must be the program to run, a string or a path, got an integer",
        ),
        (
            "dashed",
            "output `db-url` of script dashed cannot be an environment variable",
        ),
        (
            "reserved",
            "output `NIXOPS4_OUTPUTS_FILE` of script reserved cannot be an environment variable",
        ),
        ("args", "`args` of script args must be a list of strings"),
    ] {
        let error = client
            .evaluate_script("broken", &path(name))
            .await
            .expect_err(name);
        assert!(error.message.contains(message), "{name}: {error}");
        let position = error.position.expect("where the script is declared");
        assert!(position.file.ends_with("flake.nix"), "{position}");
    }
    let error = client.list_scripts("notAttrs").await.unwrap_err();
    assert!(
        error
            .message
            .contains("`scripts` of deployment `notAttrs` must be an attribute set, got a list"),
        "{error}"
    );
}
