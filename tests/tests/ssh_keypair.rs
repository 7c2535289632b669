//! `ssh.keypair` end to end through `nixops4`: a key made once and kept, replaced when an
//! input changes, rotated on demand with its users updated, and its private key kept out of
//! plans and output.

use nixops4_tests::TestEnv;
use serde_json::Value;

fn keypair_env(keypair_inputs: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_deployment(&format!(
        r#"
      providers.ssh = {{ executable = "{}"; }};
      outputs.publicKey = resources.key.publicKey;
      outputs.fingerprint = resources.key.fingerprint;
      resources = {{
        key = {{ type = "ssh.keypair"; inputs = {{ {keypair_inputs} }}; }};
        authorized = {{ type = "local.file"; inputs = {{ name = "authorized_keys"; contents = resources.key.publicKey; }}; }};
        identity = {{ type = "local.file"; inputs = {{ name = "identity"; contents = resources.key.privateKey; }}; }};
      }};"#,
        env.program_path("nixops4-resources-ssh").display()
    ));
    env
}

/// The private key as the state file records it.
fn recorded_private_key(env: &TestEnv) -> String {
    let state = env
        .read(".nixops4/default.state.jsonl")
        .expect("the state file");
    let start = state
        .find(r#""privateKey":"#)
        .expect("a recorded private key")
        + 13;
    let mut stream = serde_json::Deserializer::from_str(&state[start..]).into_iter::<String>();
    stream.next().unwrap().unwrap()
}

fn output(env: &TestEnv, name: &str) -> String {
    env.run(&["output", name])
        .success()
        .stdout
        .trim()
        .to_owned()
}

#[test]
fn a_key_is_kept_replaced_on_input_change_and_rotated_on_demand() {
    let env = keypair_env(r#"comment = "deploy@test";"#);
    let apply = env.run(&["apply"]).success();
    let public = output(&env, "publicKey");
    let fingerprint = output(&env, "fingerprint");
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(public.ends_with(" deploy@test"), "{public}");
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    assert_eq!(env.read("authorized_keys").unwrap(), public);
    let private = recorded_private_key(&env);
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    // ssh-keygen reads the key back and derives the same public key.
    let id = env.dir().join("id");
    std::fs::write(&id, &private).unwrap();
    std::fs::set_permissions(&id, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let derived = std::process::Command::new("ssh-keygen")
        .arg("-yf")
        .arg(&id)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(derived.stdout).unwrap().trim(), public);

    // Kept: a second apply changes nothing, and nothing shows the private key.
    let again = env.run(&["apply"]).success();
    assert!(again.to_string().contains("No changes"), "{again}");
    assert_eq!(output(&env, "fingerprint"), fingerprint);
    let plan = env.run(&["plan", "--json"]).success();
    for text in [&apply.to_string(), &again.to_string(), &plan.to_string()] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }

    // Rotated: a new key, and the next plan updates the resources that use it.
    let rotate = env.command(&["run", "key", "rotate"]).output().unwrap();
    assert!(rotate.status.success(), "{rotate:?}");
    let result: Value = serde_json::from_slice(&rotate.stdout).unwrap();
    let rotated = result["fingerprint"].as_str().unwrap().to_owned();
    assert_ne!(rotated, fingerprint);
    assert!(!String::from_utf8_lossy(&rotate.stderr).contains("PRIVATE KEY"));
    let plan = env.run(&["plan"]).success();
    let shown = plan.to_string();
    assert!(shown.contains("~ update   authorized"), "{plan}");
    // The key it replaces was a secret too, though no output holds it any more.
    assert!(
        shown.contains(
            "~ update   identity (local.file)\n      contents: \"(sensitive)\" → \"(sensitive)\""
        ),
        "{plan}"
    );
    assert!(!shown.contains("PRIVATE KEY"), "{plan}");
    env.run(&["apply"]).success();
    assert_ne!(env.read("authorized_keys").unwrap(), public);
    assert_eq!(output(&env, "fingerprint"), rotated);

    // An input change replaces the key.
    let env_changed = keypair_env(r#"comment = "other@test";"#);
    std::fs::copy(env.dir().join("flake.nix"), env.dir().join("flake.old")).unwrap();
    std::fs::copy(
        env_changed.dir().join("flake.nix"),
        env.dir().join("flake.nix"),
    )
    .unwrap();
    let plan = env.run(&["plan"]).success();
    assert!(
        plan.to_string().contains("-/+ replace  key (ssh.keypair)"),
        "{plan}"
    );
    assert!(plan.to_string().contains("(forces replacement)"), "{plan}");
    env.run(&["apply", "--yes"]).success();
    assert_ne!(output(&env, "fingerprint"), rotated);
    assert!(output(&env, "publicKey").ends_with(" other@test"));
}

#[test]
fn rsa_keys_are_offered() {
    let env = keypair_env(r#"algorithm = "rsa"; rsaBits = 2048;"#);
    env.run(&["apply", "--target", "key"]).success();
    assert!(output(&env, "publicKey").starts_with("ssh-rsa "));
    for (inputs, at) in [
        (r#"algorithm = "dsa";"#, "algorithm"),
        (r#"algorithm = "rsa"; rsaBits = 1024;"#, "rsaBits"),
    ] {
        let refused = keypair_env(inputs).run(&["apply", "--target", "key"]);
        assert_ne!(refused.code(), Some(0));
        assert!(refused.stderr.contains(at), "{refused}");
    }
}
