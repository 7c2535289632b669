//! State encrypted at rest for age recipients, end to end: the real CLI, Nix, the local
//! provider's `state_file` and the testing provider's secret output as the canary that
//! must not be in the stored bytes. Keys come from the environment (docs/state-encryption.md).

use nixops4_tests::age_key::AgeKey;
use nixops4_tests::{CommandOutput, TestEnv};

const STATE: &str = ".nixops4/default.state.jsonl";
const CANARY: &str = "s3cr3t-token-for-db";

/// An age key pair: the recipient, and an identity file holding the secret key.
fn deployment(env: &TestEnv, user: &str) {
    env.write_deployment(&format!(
        r#"
      providers.testing = {{ executable = "{}"; }};
      resources = {{
        key = {{ type = "testing.secret"; inputs.name = "db"; }};
        config = {{ type = "local.file"; inputs = {{ name = "config"; contents = "password=${{resources.key.token}} user={user}"; }}; }};
      }};"#,
        env.program_path("nixops4-resources-testing").display()
    ));
}

/// `nixops4 <args>` writing for `to` and reading with `with`.
fn run(env: &TestEnv, args: &[&str], to: Option<&AgeKey>, with: Option<&AgeKey>) -> CommandOutput {
    let identity = with.map(|k| k.identity_file.display().to_string());
    let mut vars = Vec::new();
    if let Some(key) = to {
        vars.push(("NIXOPS4_STATE_RECIPIENTS", key.recipient.as_str()));
    }
    if let Some(identity) = &identity {
        vars.push(("NIXOPS4_STATE_IDENTITY_FILE", identity.as_str()));
    }
    env.run_with_env(args, &vars)
}

fn stored(env: &TestEnv) -> String {
    env.read(STATE).expect("the state file exists")
}

/// How many stored events are encrypted, and how many are plain.
fn sealed_and_plain(env: &TestEnv) -> (usize, usize) {
    let lines: Vec<serde_json::Value> = stored(env)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sealed = lines.iter().filter(|l| l.get("age").is_some()).count();
    (sealed, lines.len() - sealed)
}

#[test]
fn encrypted_state_holds_no_secret_and_reads_back() {
    let env = TestEnv::new();
    let a = AgeKey::generate();
    deployment(&env, "alice");
    run(&env, &["apply"], Some(&a), Some(&a)).success();
    assert_eq!(
        env.read("config").as_deref(),
        Some("password=s3cr3t-token-for-db user=alice")
    );
    let bytes = stored(&env);
    assert!(
        !bytes.contains(CANARY),
        "the secret is stored plain:\n{bytes}"
    );
    assert!(
        !bytes.contains("alice"),
        "inputs are stored plain:\n{bytes}"
    );
    let (sealed, plain) = sealed_and_plain(&env);
    assert!(sealed >= 3 && plain == 0, "{sealed} sealed, {plain} plain");

    let plan = run(&env, &["plan"], Some(&a), Some(&a)).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");
    let list = run(&env, &["state", "list"], None, Some(&a)).success();
    assert_eq!(list.stdout, "config  local.file\nkey  testing.secret\n");
}

#[test]
fn a_wrong_or_missing_key_is_a_clear_error_naming_the_state_file() {
    let env = TestEnv::new();
    let (a, b) = (AgeKey::generate(), AgeKey::generate());
    deployment(&env, "alice");
    run(&env, &["apply"], Some(&a), Some(&a)).success();

    let wrong = run(&env, &["plan"], Some(&b), Some(&b));
    assert_eq!(wrong.code(), Some(1), "{wrong}");
    let expected = format!(
        "state file <flake>/{STATE}, line 1: cannot read the event: it is encrypted for other keys: no identity in {} (NIXOPS4_STATE_IDENTITY_FILE) can decrypt it",
        b.identity_file.display()
    );
    assert!(wrong.stderr.contains(&expected), "{wrong}");

    let missing = run(&env, &["apply"], Some(&a), None);
    assert_eq!(missing.code(), Some(1), "{missing}");
    assert!(
        missing.stderr.contains(&format!(
            "state file <flake>/{STATE}, line 1: cannot read the event: it is encrypted and no identity is configured: set NIXOPS4_STATE_IDENTITY_FILE"
        )),
        "{missing}"
    );
    for output in [&wrong, &missing] {
        assert!(!output.stderr.contains("panicked"), "{output}");
        assert!(!output.stderr.contains(CANARY), "{output}");
    }
    let reading = run(&env, &["plan"], None, Some(&a));
    assert_eq!(
        reading.code(),
        Some(0),
        "reading needs no recipients: {reading}"
    );

    // A secret key pasted where a recipient belongs is refused without being echoed.
    let pasted = "AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE";
    let misconfigured = env.run_with_env(&["plan"], &[("NIXOPS4_STATE_RECIPIENTS", pasted)]);
    assert_eq!(misconfigured.code(), Some(1), "{misconfigured}");
    assert!(
        misconfigured.stderr.contains(&format!(
            "state file <flake>/{STATE}: the encryption keys are not usable: NIXOPS4_STATE_RECIPIENTS: `AGE-SECR…` is not an age X25519 recipient (age1…)"
        )),
        "{misconfigured}"
    );
    assert!(!misconfigured.stderr.contains("QPZRY9"), "{misconfigured}");
}

#[test]
fn plain_state_still_reads_and_mixes_with_encrypted_events() {
    let env = TestEnv::new();
    let a = AgeKey::generate();
    deployment(&env, "alice");
    env.run(&["apply"]).success();
    assert!(
        stored(&env).contains(CANARY),
        "written plain without recipients"
    );
    let (_, plain_before) = sealed_and_plain(&env);

    // Encryption turned on later: the plain events stay, new ones are sealed.
    let plan = run(&env, &["plan"], Some(&a), Some(&a)).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");
    deployment(&env, "bob");
    run(&env, &["apply"], Some(&a), Some(&a)).success();
    let (sealed, plain) = sealed_and_plain(&env);
    assert_eq!(plain, plain_before);
    assert!(sealed >= 2, "{sealed} sealed");
    let plan = run(&env, &["plan"], Some(&a), Some(&a)).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");
    assert_eq!(
        env.read("config").as_deref(),
        Some("password=s3cr3t-token-for-db user=bob")
    );
}

#[test]
fn rekey_rotates_the_state_to_new_recipients() {
    let env = TestEnv::new();
    let (old, new) = (AgeKey::generate(), AgeKey::generate());
    deployment(&env, "alice");
    env.run(&["apply"]).success();
    run(&env, &["apply"], Some(&old), Some(&old)).success();
    let events = stored(&env).lines().count();

    // A rotation killed before its rename leaves a partial new file: it changes nothing,
    // and the next rotation writes it anew.
    env.write(&format!("{STATE}.rekey"), "{\"age\":\"-----BEGIN AGE");
    let plan = run(&env, &["plan"], Some(&old), Some(&old)).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");

    // Only the old key here: the new state could not be read back, so it is refused.
    let refused = run(&env, &["state", "rekey"], Some(&new), Some(&old));
    assert_eq!(refused.code(), Some(1), "{refused}");
    assert!(
        refused.stderr.contains(&format!(
            "state file <flake>/{STATE}: not re-encrypted, nothing was changed: the identities configured here could not read the result"
        )),
        "{refused}"
    );
    run(&env, &["plan"], None, Some(&old)).success();

    // The identity file holds the old and the new key; the recipients are the new one.
    let both = AgeKey::generate();
    std::fs::write(
        &both.identity_file,
        std::fs::read_to_string(&old.identity_file).unwrap()
            + &std::fs::read_to_string(&new.identity_file).unwrap(),
    )
    .unwrap();
    let rekey = run(&env, &["state", "rekey"], Some(&new), Some(&both)).success();
    assert_eq!(
        rekey.stderr,
        format!("Rewrote the state ({events} events), encrypted for the configured recipients.\n")
    );
    assert!(env.read(&format!("{STATE}.rekey")).is_none());
    assert_eq!(
        sealed_and_plain(&env),
        (events, 0),
        "every event is sealed now"
    );
    assert!(!stored(&env).contains(CANARY));

    let plan = run(&env, &["plan"], Some(&new), Some(&new)).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");
    let stale = run(&env, &["plan"], None, Some(&old));
    assert!(
        stale.stderr.contains("it is encrypted for other keys"),
        "{stale}"
    );

    // Back to plain: no recipients.
    let rekey = run(&env, &["state", "rekey"], None, Some(&new)).success();
    assert!(rekey.stderr.contains("written plain"), "{rekey}");
    assert_eq!(sealed_and_plain(&env), (0, events));
    let plan = env.run(&["plan"]).success();
    assert_eq!(plan.stdout, "No changes. 2 resources up to date.\n");
}
