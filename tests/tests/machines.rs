//! NixOS machines deployed over SSH, end to end: the real `nixops4`, the real SSH provider,
//! real sshd test hosts (chroots with their own Nix store on 127.0.3.x) and fake NixOS
//! systems (`tests/fixtures/machines/fake-system.nix`). Needs root, as CI is
//! (`nixops4_tests::test_hosts`). Each test uses its own host addresses.

use std::time::Duration;

use nixops4_tests::test_hosts::{TestHost, wait_for};
use nixops4_tests::{TestEnv, repository_root};

/// A flake whose deployment has a key pair `sshkeypair` and `resources`, with the Nix
/// library as `nixops4` and the fake systems as `fake` in scope.
fn machines_env(resources: &str) -> TestEnv {
    let env = TestEnv::new();
    write_machines_flake(&env, resources);
    let root = repository_root();
    env.write(
        "nixops4-lib.nix",
        &std::fs::read_to_string(root.join("nix/lib.nix")).unwrap(),
    );
    env.write(
        "fake-system.nix",
        &std::fs::read_to_string(root.join("tests/fixtures/machines/fake-system.nix")).unwrap(),
    );
    env
}

fn write_machines_flake(env: &TestEnv, resources: &str) {
    let flake = format!(
        r#"{{
  outputs = {{ self }}:
    let
      nixops4 = import ./nixops4-lib.nix;
      fake = import ./fake-system.nix;
    in {{
      nixops4Deployments.default = {{ resources, ... }}: {{
        providers.ssh = {{ executable = "{ssh}"; }};
        providers.testing = {{ executable = "{testing}"; }};
        outputs.publicKey = resources.sshkeypair.publicKey;
        resources = {{
          state = {{ type = "local.state_file"; inputs.name = "machines.state.jsonl"; }};
          sshkeypair = {{ type = "ssh.keypair"; state = resources.state; inputs.comment = "nixops4-test"; }};
{resources}
        }};
      }};
    }};
}}
"#,
        ssh = env.program_path("nixops4-resources-ssh").display(),
        testing = env.program_path("nixops4-resources-testing").display(),
    );
    env.write("flake.nix", &flake);
}

/// A machine resource for `host` deploying a fake system.
fn machine(name: &str, host: &TestHost, system: &str, extra: &str) -> String {
    format!(
        r#"          {name} = nixops4.nixos {{
            ssh = {{ host = "{address}"; privateKey = resources.sshkeypair.privateKey; hostPublicKey = "{key}"; }};
            system = fake {system};
            {extra}
          }};"#,
        address = host.address,
        key = host.host_public_key(),
    )
}

/// Makes the key pair and lets it log in to `hosts` (the test setup's part).
fn make_key_and_authorize(env: &TestEnv, hosts: &[&TestHost]) -> String {
    env.run(&["apply", "--target", "sshkeypair"]).success();
    let public_key = env.run(&["output", "publicKey"]).success().stdout;
    assert!(public_key.starts_with("ssh-ed25519 "), "{public_key}");
    for host in hosts {
        host.authorize(&public_key);
    }
    public_key
}

/// A host at `address` with the good fake system deployed by the deployment of a flake
/// whose machine resource is `nixos`; returns the deployed system as well.
fn deployed_machine(address: &str) -> (TestHost, TestEnv, String) {
    let host = TestHost::start(address);
    let env = machines_env(&machine("nixos", &host, "{ }", ""));
    make_key_and_authorize(&env, &[&host]);
    env.run(&["apply"]).success();
    let system = host.profile().expect("the machine is deployed");
    (host, env, system)
}

fn state(env: &TestEnv) -> String {
    env.read("machines.state.jsonl").unwrap_or_default()
}

#[test]
fn seed_example_deploys_with_the_generated_key_and_then_does_nothing() {
    let host = TestHost::start("127.0.3.1");
    const KEY: &str = r#"keys."db-password" = { text = resources.secret.token; user = "deployer"; group = "deployer"; permissions = "0640"; };"#;
    // The machine with `system` and `extra` inputs, and the secret its key holds.
    let resources = |system: &str, extra: &str| {
        format!(
            "{}\n          secret = {{ type = \"testing.secret\"; inputs.name = \"db\"; }};",
            machine("nixos", &host, system, extra)
        )
    };
    let env = machines_env(&resources("{ }", KEY));
    make_key_and_authorize(&env, &[&host]);
    let apply = env.run(&["apply"]).success();
    let system = host.profile().expect("the profile is set");
    assert!(system.ends_with("-nixos-system-fake-good-1"), "{system}");
    assert_eq!(host.active().as_deref(), Some(system.as_str()));
    assert_eq!(host.activations(), format!("{system} switch\n"));
    assert!(state(&env).contains(&system), "the system is recorded");

    // The key: content, owner and mode; and nowhere it must not be.
    let key_path = host.path("/run/keys/db-password");
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        "s3cr3t-token-for-db"
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let metadata = std::fs::metadata(&key_path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o640);
    assert_eq!((metadata.uid(), metadata.gid()), (1000, 1000), "deployer");
    let plan_json = env.run(&["plan", "--json"]).success();
    for text in [
        &apply.stdout,
        &apply.stderr,
        &plan_json.stdout,
        &plan_json.stderr,
    ] {
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
    let store = host.path("/nix/store");
    let grep = std::process::Command::new("grep")
        .args(["-rl", "s3cr3t-token-for-db"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty(), "the secret is in the host's store");

    // Nothing new: nothing copied, nothing activated.
    let again = env.run(&["apply"]).success();
    assert!(again.to_string().contains("No changes"), "{again}");
    assert_eq!(host.activations(), format!("{system} switch\n"));

    // An input changes but the system does not: the provider is called, and finds the
    // machine running it already.
    write_machines_flake(
        &env,
        &resources("{ }", &format!("confirmTimeout = 20; {KEY}")),
    );
    let update = env.run(&["apply"]).success();
    assert!(update.to_string().contains("updated nixos"), "{update}");
    assert_eq!(host.activations(), format!("{system} switch\n"));

    // A new system is a new generation.
    write_machines_flake(&env, &resources(r#"{ label = "2"; }"#, ""));
    env.run(&["apply", "--yes"]).success();
    let second = host.profile().unwrap();
    assert!(second.ends_with("-nixos-system-fake-good-2"), "{second}");
    assert!(host.path("/nix/var/nix/profiles/system-2-link").exists());
    assert!(
        !key_path.exists(),
        "a key taken out of the inputs is removed"
    );
}

#[test]
fn a_failing_activation_rolls_back() {
    let (host, env, good) = deployed_machine("127.0.3.2");

    for (variant, says) in [
        ("fail", "switch-to-configuration failed with exit status 2"),
        ("units-failed", "exited with 4: some units failed"),
    ] {
        write_machines_flake(
            &env,
            &machine(
                "nixos",
                &host,
                &format!("{{ variant = \"{variant}\"; }}"),
                "",
            ),
        );
        let failed = env.run(&["apply", "--yes"]);
        assert_ne!(failed.code(), Some(0), "{failed}");
        assert!(failed.stderr.contains("was rolled back"), "{failed}");
        assert!(failed.stderr.contains(says), "{failed}");
        assert!(failed.stderr.contains("127.0.3.2"), "{failed}");
        assert_eq!(host.profile().as_deref(), Some(good.as_str()));
        assert_eq!(host.active().as_deref(), Some(good.as_str()));
        assert!(!host.path("/nix/var/nix/profiles/system-2-link").exists());
        let activations = host.activations();
        assert!(
            activations.ends_with(&format!("{variant}-1 switch\n{good} switch\n")),
            "the good system is activated again:\n{activations}"
        );
    }
}

#[test]
fn an_unreachable_host_rolls_itself_back_after_the_timeout() {
    let (host, env, good) = deployed_machine("127.0.3.3");

    write_machines_flake(
        &env,
        &machine(
            "nixos",
            &host,
            r#"{ variant = "cut-off"; }"#,
            "confirmTimeout = 3;",
        ),
    );
    let failed = env.run(&["apply", "--yes"]);
    assert_ne!(failed.code(), Some(0), "{failed}");
    // Either NixOps4 gives up first, or it reads that the host rolled back once the old
    // system's sshd let it in again.
    assert!(failed.stderr.contains("127.0.3.3:22"), "{failed}");
    assert!(
        failed.stderr.contains("did not answer a new connection")
            || failed
                .stderr
                .contains("not reachable over a new connection within 3s"),
        "{failed}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || host.profile().as_deref()
            == Some(good.as_str())
            && host.active().as_deref() == Some(good.as_str())),
        "the host rolled back to {good}:\n{}{}",
        host.activations(),
        std::process::Command::new("sh").arg("-c").arg(format!("tail -n 30 {0}/run/nixops4/*/status {0}/run/nixops4/*/log; ls -la {0}/run/nixops4/*/", host.root().display())).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    );
    // The old system started sshd again: the host is reachable, and a new apply works.
    assert!(wait_for(Duration::from_secs(10), || host.is_listening()));
    write_machines_flake(&env, &machine("nixos", &host, "{ }", ""));
    env.run(&["apply", "--yes"]).success();
}

#[test]
fn a_wrong_host_key_is_refused_and_a_wrong_private_key_names_host_and_user() {
    let host = TestHost::start("127.0.3.4");
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("k");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let wrong = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let fingerprint = |path: &std::path::Path| {
        let out = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let wrong_fingerprint = fingerprint(&key.with_extension("pub"));
    let real_fingerprint = fingerprint(&host.path("/etc/ssh/ssh_host_ed25519_key.pub"));

    let resource = machine("nixos", &host, "{ }", "").replace(
        &host.host_public_key(),
        wrong
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
            .as_str(),
    );
    let env = machines_env(&resource);
    make_key_and_authorize(&env, &[&host]);
    let refused = env.run(&["apply"]);
    assert_ne!(refused.code(), Some(0), "{refused}");
    assert!(
        refused.stderr.contains("refusing 127.0.3.4:22"),
        "{refused}"
    );
    assert!(refused.stderr.contains(&real_fingerprint), "{refused}");
    assert!(refused.stderr.contains(&wrong_fingerprint), "{refused}");
    assert!(refused.stderr.contains("ssh.hostPublicKey"), "{refused}");
    assert_eq!(host.profile(), None, "nothing was deployed");

    // The right host key, but the host does not know the private key.
    write_machines_flake(&env, &machine("nixos", &host, "{ }", ""));
    host.authorize(&wrong);
    let denied = env.run(&["apply"]);
    assert_ne!(denied.code(), Some(0), "{denied}");
    assert!(
        denied
            .stderr
            .contains("cannot log in to 127.0.3.4:22 as root"),
        "{denied}"
    );
    assert!(!denied.stderr.contains("PRIVATE KEY"), "{denied}");
}

#[test]
fn a_user_other_than_root_deploys_through_sudo() {
    let host = TestHost::start("127.0.3.5");
    let env = machines_env(&machine("nixos", &host, "{ }", "").replace(
        "privateKey = resources.sshkeypair.privateKey;",
        r#"privateKey = resources.sshkeypair.privateKey; user = "deployer";"#,
    ));
    make_key_and_authorize(&env, &[&host]);
    env.run(&["apply"]).success();
    let system = host.profile().expect("deployed");
    assert_eq!(host.activations(), format!("{system} switch\n"));
    let owner = std::fs::symlink_metadata(host.path("/nix/var/nix/profiles/system")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&owner),
        0,
        "set as root, through sudo"
    );
}

#[test]
fn the_nixos_helper_evaluates_the_system_from_nixpkgs_and_a_module() {
    let host = TestHost::start("127.0.3.16");
    // A stand-in for nixpkgs (none exists here): its `lib.nixosSystem` makes a fake system
    // from the module it is given, so the helper's wiring is what is checked.
    let resource = machine("nixos", &host, "{ }", "").replace(
        "system = fake { };",
        r#"nixpkgs = { lib.nixosSystem = { modules }: { config.system.build.toplevel = fake (builtins.head modules); }; };
            module = { label = "from-a-module"; };"#,
    );
    let env = machines_env(&resource);
    make_key_and_authorize(&env, &[&host]);
    env.run(&["apply"]).success();
    let system = host.profile().expect("deployed");
    assert!(
        system.ends_with("-nixos-system-fake-good-from-a-module"),
        "{system}"
    );
}

#[test]
fn operations_list_roll_back_run_and_reboot() {
    let (host, env, first) = deployed_machine("127.0.3.6");
    write_machines_flake(&env, &machine("nixos", &host, r#"{ label = "2"; }"#, ""));
    env.run(&["apply"]).success();
    let second = host.profile().unwrap();

    let operation = |args: &[&str]| -> serde_json::Value {
        let output = env.command(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let generations = operation(&["run", "nixos", "generations"]);
    assert_eq!(
        generations,
        serde_json::json!([
            { "generation": 1, "system": first, "current": false },
            { "generation": 2, "system": second, "current": true },
        ])
    );

    let rolled = operation(&["run", "nixos", "rollback"]);
    assert_eq!(rolled["generation"], 1);
    assert_eq!(host.profile().as_deref(), Some(first.as_str()));
    assert_eq!(host.active().as_deref(), Some(first.as_str()));
    assert!(host.activations().ends_with(&format!("{first} switch\n")));
    assert!(state(&env).contains("operation rollback on nixos"));

    // A change by hand, which a refresh reads back.
    operation(&[
        "run",
        "nixos",
        "run",
        "--arg",
        "command=nix-env -p /nix/var/nix/profiles/system --switch-generation 2",
    ]);
    assert_eq!(host.profile().as_deref(), Some(second.as_str()));
    env.run(&["refresh"]).success();
    let recorded = state(&env);
    let last = recorded.lines().last().unwrap();
    assert!(
        last.contains(&second) && last.contains(r#""generation":2"#),
        "{last}"
    );

    let ran = operation(&["run", "nixos", "run", "--arg", "command=id -u; exit 3"]);
    assert_eq!(ran["stdout"], "0\n");
    assert_eq!(ran["exitCode"], 3);

    let boot_id = || std::fs::read_to_string(host.path("/proc/sys/kernel/random/boot_id")).unwrap();
    let before = boot_id();
    operation(&["run", "nixos", "reboot", "--arg", "timeout=30"]);
    assert_ne!(boot_id(), before);

    // switch-to-configuration's 100: the profile is set, and a reboot is required.
    write_machines_flake(
        &env,
        &machine("nixos", &host, r#"{ variant = "reboot-required"; }"#, ""),
    );
    env.run(&["apply", "--yes"]).success();
    assert!(host.profile().unwrap().ends_with("fake-reboot-required-1"));
    assert!(
        state(&env).contains(r#""rebootRequired":true"#),
        "{}",
        state(&env)
    );
}

#[test]
fn eight_hosts_deploy_in_parallel_and_a_broken_one_stops_none_of_the_others() {
    let hosts: Vec<TestHost> = (7..=14)
        .map(|n| TestHost::start(&format!("127.0.3.{n}")))
        .collect();
    let resources: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| machine(&format!("m{i}"), host, "{ }", ""))
        .collect();
    let env = machines_env(&resources.join("\n"));
    make_key_and_authorize(&env, &hosts.iter().collect::<Vec<_>>());
    // The last host is broken: its sshd is stopped.
    let broken = &hosts[7];
    let pid = std::fs::read_to_string(broken.path("/run/sshd.pid")).unwrap();
    let status = std::process::Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_for(Duration::from_secs(5), || !broken.is_listening()));

    let apply = env.run(&["apply", "--parallelism", "4"]);
    assert_ne!(apply.code(), Some(0), "{apply}");
    assert!(apply.stderr.contains("could not create m7"), "{apply}");
    assert!(
        apply.stderr.contains("cannot reach 127.0.3.14:22"),
        "{apply}"
    );
    for host in &hosts[..7] {
        let system = host
            .profile()
            .unwrap_or_else(|| panic!("{} is deployed", host.address));
        assert_eq!(host.activations(), format!("{system} switch\n"));
    }
    assert_eq!(broken.profile(), None);
}

#[test]
fn the_language_server_shows_a_machine_and_offers_rollback_and_reboot() {
    use nixops4_tests::lsp_client::{LspClient, marked};
    use serde_json::json;
    let (_host, env, system) = deployed_machine("127.0.3.15");

    let text = env.read("flake.nix").unwrap();
    let file = format!("file://{}", env.dir().join("flake.nix").display());
    let (_, on_name) = marked(&text.replacen("nixos = nixops4", "nix$0os = nixops4", 1));
    for trusted in [false, true] {
        let mut client = LspClient::start(&[], Some(env.dir()), json!({ "trusted": trusted }));
        client.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": file, "languageId": "nix", "version": 1, "text": text}}),
        );
        let titles = |client: &mut LspClient| -> Vec<String> {
            let actions = client.request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": file}, "range": {"start": on_name, "end": on_name}, "context": {"diagnostics": []}}),
            );
            actions
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["title"].as_str().unwrap().to_owned())
                .collect()
        };
        if trusted {
            // The provider's schema arrives once it has described itself.
            let mut offered = Vec::new();
            assert!(
                wait_for(Duration::from_secs(20), || {
                    offered = titles(&mut client);
                    offered.iter().any(|t| t.contains("rollback"))
                }),
                "{offered:?}"
            );
            assert!(
                offered.contains(&"Run `rollback` on nixos".to_owned()),
                "{offered:?}"
            );
            assert!(
                offered.contains(&"Run `reboot` on nixos".to_owned()),
                "{offered:?}"
            );
            let hover = client.request(
                "textDocument/hover",
                json!({"textDocument": {"uri": file}, "position": on_name}),
            );
            let shown = hover["contents"]["value"].as_str().unwrap();
            assert!(shown.contains("`ssh.nixos`"), "{shown}");
            assert!(
                shown.contains(&format!("- `system`: `\"{system}\"`")),
                "{shown}"
            );
            assert!(shown.contains("- `generation`: `1`"), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        } else {
            let offered = titles(&mut client);
            assert!(
                !offered.iter().any(|t| t.contains("rollback")),
                "{offered:?}"
            );
        }
        client.shutdown();
    }
}

#[test]
fn after_the_key_pair_rotates_the_previous_key_deploys_the_system_that_authorises_the_new_one() {
    let (host, env, first) = deployed_machine("127.0.3.17");
    let rotate = env
        .command(&["run", "sshkeypair", "rotate"])
        .output()
        .unwrap();
    assert!(rotate.status.success(), "{rotate:?}");
    // The new system would authorise the new key; the machine knows only the old one yet.
    write_machines_flake(&env, &machine("nixos", &host, r#"{ label = "2"; }"#, ""));
    let plan = env.run(&["plan", "--json"]).success();
    assert!(!plan.to_string().contains("PRIVATE KEY"), "{plan}");
    let apply = env.run(&["apply"]).success();
    assert!(!apply.to_string().contains("PRIVATE KEY"), "{apply}");
    let second = host.profile().unwrap();
    assert_ne!(second, first);
    assert!(second.ends_with("-nixos-system-fake-good-2"), "{second}");
    // Once the machine has the new key, operations use it.
    let public_key = env.run(&["output", "publicKey"]).success().stdout;
    host.authorize(&public_key);
    let ran = env
        .command(&["run", "nixos", "run", "--arg", "command=echo ok"])
        .output()
        .unwrap();
    assert!(ran.status.success(), "{ran:?}");
}
