//! State on a real Garage encrypted for age recipients: what Garage keeps on disk holds
//! no secret (checked against the same deployment stored plain, where it does), and a
//! wrong key is an error that names the store.

use nixops4_tests::age_key::AgeKey;
use nixops4_tests::garage::{BUCKET, Garage, REGION};
use nixops4_tests::{CommandOutput, TestEnv};

const CANARY: &str = "s3cr3t-token-for-db";

/// A secret and a file made from it, with the state on `garage` under `prefix`.
fn checkout(garage: &Garage, prefix: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_deployment(&format!(
        r#"
      providers.s3 = {{ executable = "{s3}"; }};
      providers.testing = {{ executable = "{testing}"; }};
      resources = {{
        state = {{ type = "s3.object"; inputs = {{ endpoint = "{endpoint}"; bucket = "{BUCKET}"; prefix = "{prefix}"; region = "{REGION}"; }}; }};
        key = {{ type = "testing.secret"; inputs.name = "db"; state = resources.state; }};
        config = {{ type = "local.file"; inputs = {{ name = "config"; contents = "password=${{resources.key.token}}"; }}; state = resources.state; }};
      }};"#,
        s3 = env.program_path("nixops4-resources-s3").display(),
        testing = env.program_path("nixops4-resources-testing").display(),
        endpoint = garage.endpoint(),
    ));
    env
}

/// `nixops4 <args>` writing for `to` and reading with `with`.
fn run(
    env: &TestEnv,
    garage: &Garage,
    args: &[&str],
    to: Option<&AgeKey>,
    with: Option<&AgeKey>,
) -> CommandOutput {
    let identity = with.map(|k| k.identity_file.display().to_string());
    let mut vars: Vec<(&str, &str)> = garage.credentials().to_vec();
    if let Some(key) = to {
        vars.push(("NIXOPS4_STATE_RECIPIENTS", key.recipient.as_str()));
    }
    if let Some(identity) = &identity {
        vars.push(("NIXOPS4_STATE_IDENTITY_FILE", identity.as_str()));
    }
    env.run_with_env(args, &vars)
}

#[test]
fn encrypted_state_on_garage_holds_no_secret_and_a_wrong_key_names_the_store() {
    let garage = Garage::start();
    // Stored plain, the secret is in what Garage keeps: the search finds it.
    let plain = checkout(&garage, "plain");
    run(&plain, &garage, &["apply", "--yes"], None, None).success();
    assert!(garage.keeps_bytes(CANARY), "the search finds plain state");

    let garage = Garage::start();
    let (a, b) = (AgeKey::generate(), AgeKey::generate());
    let env = checkout(&garage, "sealed");
    run(&env, &garage, &["apply", "--yes"], Some(&a), Some(&a)).success();
    assert_eq!(
        env.read("config").as_deref(),
        Some(format!("password={CANARY}").as_str())
    );
    assert!(!garage.keeps_bytes(CANARY), "the secret is stored plain");
    let plan = run(&env, &garage, &["plan"], Some(&a), Some(&a)).success();
    assert!(plan.stdout.starts_with("No changes."), "{plan}");

    let wrong = run(&env, &garage, &["plan"], Some(&b), Some(&b));
    assert_eq!(wrong.code(), Some(1), "{wrong}");
    assert!(
        wrong.stderr.contains(&format!("S3 store s3://{BUCKET}"))
            && wrong
                .stderr
                .contains("it is encrypted for other keys: no identity in"),
        "{wrong}"
    );
    assert!(!wrong.stderr.contains(CANARY), "{wrong}");
}
