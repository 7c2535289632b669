//! Derivations that deployments refer to are built before a provider sees them, end to
//! end with real Nix and no nixpkgs: a provider that is a derivation's output, inputs
//! that name built files, a build that fails beside resources that apply, fifty resources
//! sharing one derivation built once, a second apply that builds nothing, and the
//! language server's progress while it builds.
//!
//! Derivations are `builtins.derivation` with `/bin/sh` as builder (TestEnv turns the
//! sandbox off, so builders may use the machine's tools); each carries the flake's
//! directory, so a run never finds its outputs in the store from an earlier run, and
//! each builder appends a line to a log of builds, which counts them (in a directory of
//! its own that Nix's build users may write to).
//! With `NIXOPS4_TEST_NIX_ROOT` (scripts/test.sh) the same tests run inside the current
//! Nix root.

use nixops4_tests::TestEnv;
use nixops4_tests::lsp_client::{LspClient, is_response};
use serde_json::{Value, json};

/// Where builders note that they ran: a file in a directory anyone may write to.
struct BuildLog(tempfile::TempDir);

impl BuildLog {
    fn new() -> BuildLog {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("open the directory to build users");
        BuildLog(dir)
    }

    fn file(&self) -> std::path::PathBuf {
        self.0.path().join("builds.log")
    }

    /// Which derivations were built, one name per build.
    fn builds(&self) -> Vec<String> {
        std::fs::read_to_string(self.file())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A `let` binding a derivation `name` whose output is a file with `text`, built by a
/// builder that first runs `extra` (shell).
fn derivation(env: &TestEnv, log: &BuildLog, name: &str, text: &str, extra: &str) -> String {
    let log = log.file();
    format!(
        r#"{name} = builtins.derivation {{
          name = "{name}"; system = "{system}"; builder = "/bin/sh"; nonce = "{nonce}";
          args = [ "-c" "echo {name} >> {log}; {extra} echo '{text}' > $out" ];
        }};"#,
        system = system(),
        nonce = env.dir().display(),
        log = log.display(),
    )
}

fn system() -> String {
    format!("{}-linux", std::env::consts::ARCH)
}

/// Writes a deployment whose body is preceded by `let` bindings.
fn write(env: &TestEnv, bindings: &[String], body: &str) {
    let flake = format!(
        "{{\n  outputs = {{ self }}: {{\n    nixops4Deployments.default = {{ resources, ... }}:\n      let\n        {}\n      in {{\n{body}\n      }};\n  }};\n}}\n",
        bindings.join("\n        ")
    );
    env.write("flake.nix", &flake);
}

/// The JSON events of an apply with `--log-format json`, and its report.
fn json_apply(env: &TestEnv) -> (Vec<Value>, Value, bool) {
    let output = env.run(&["apply", "--yes", "--log-format", "json"]);
    let lines: Vec<Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON lines"))
        .collect();
    let (report, events) = lines.split_last().expect("a report");
    (events.to_vec(), report.clone(), output.status.success())
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn a_provider_built_by_a_derivation_applies() {
    let (env, log) = (TestEnv::new(), BuildLog::new());
    let provider = format!(
        r#"provider = builtins.derivation {{
          name = "provider"; system = "{}"; builder = "/bin/sh"; nonce = "{}";
          args = [ "-c" "echo provider >> {}; /bin/mkdir -p $out/bin; /bin/cp {} $out/bin/provider" ];
        }};"#,
        system(),
        env.dir().display(),
        log.file().display(),
        env.program_path("nixops4-resources-local").display()
    );
    write(
        &env,
        &[provider],
        r#"        providers.built = { executable = "${provider}/bin/provider"; };
        resources.greeting = { type = "built.file"; inputs = { name = "hello.txt"; contents = "hi"; }; };"#,
    );
    let plan = env.run(&["plan"]).success();
    assert!(
        plan.stdout
            .contains("NixOps4 will build 1 derivation first:\n  provider  (for greeting)"),
        "{plan}"
    );
    assert!(log.builds().is_empty(), "a plan builds nothing");
    env.run(&["apply"]).success();
    assert_eq!(env.read("hello.txt").as_deref(), Some("hi"));
    assert_eq!(log.builds(), ["provider"]);
}

#[test]
fn a_script_built_by_a_derivation_is_built_once_then_run() {
    let (env, log) = (TestEnv::new(), BuildLog::new());
    let tool = format!(
        r#"tool = builtins.derivation {{
          name = "tool"; system = "{}"; builder = "/bin/sh"; nonce = "{}";
          args = [ "-c" "echo tool >> {}; printf '#!/bin/sh\\necho hello $1 from $greeting\\n' > $out; /bin/chmod +x $out" ];
        }};"#,
        system(),
        env.dir().display(),
        log.file().display(),
    );
    write(
        &env,
        &[tool],
        r#"        resources.greeting = { type = "local.exec"; inputs = { executable = "printf"; args = [ "the memo" ]; }; };
        scripts.greet = { program = "${tool}"; outputs.greeting = resources.greeting.stdout; };"#,
    );
    env.run(&["apply"]).success();
    assert!(log.builds().is_empty(), "an apply builds no script");
    let first = env.run(&["script", "greet", "world"]).success();
    assert_eq!(first.stdout, "hello world from the memo\n");
    assert!(first.stderr.contains("tool"), "the build is shown: {first}");
    let again = env.run(&["script", "greet", "again"]).success();
    assert_eq!(again.stdout, "hello again from the memo\n");
    assert_eq!(log.builds(), ["tool"], "built once");
}

#[test]
fn an_input_naming_a_derivation_output_is_built_and_the_provider_reads_it() {
    let (env, log) = (TestEnv::new(), BuildLog::new());
    write(
        &env,
        &[derivation(&env, &log, "data", "built contents", "")],
        r#"        resources.reader = { type = "local.exec"; inputs = { executable = "cat"; args = [ "${data}" ]; }; };
        resources.copy = { type = "local.file"; inputs = { name = "copy.txt"; contents = resources.reader.stdout; }; };"#,
    );
    env.run(&["apply"]).success();
    assert_eq!(env.read("copy.txt").as_deref(), Some("built contents\n"));
    assert_eq!(log.builds(), ["data"]);
}

#[test]
fn a_failed_build_fails_its_resource_with_the_log_tail_and_the_rest_applies() {
    let (env, log) = (TestEnv::new(), BuildLog::new());
    write(
        &env,
        &[derivation(
            &env,
            &log,
            "broken",
            "never",
            "echo first line; echo the last words; exit 3;",
        )],
        r#"        resources.user = { type = "local.exec"; inputs = { executable = "cat"; args = [ "${broken}" ]; }; };
        resources.after = { type = "local.file"; inputs = { name = "after.txt"; contents = resources.user.stdout; }; };
        resources.fine = { type = "local.file"; inputs = { name = "fine.txt"; contents = "fine"; }; };"#,
    );
    let (events, report, succeeded) = json_apply(&env);
    assert!(!succeeded);
    let error = report["failed"]["user"].as_str().expect("user failed");
    assert!(error.starts_with("could not build broken: "), "{error}");
    assert!(error.ends_with("first line\nthe last words"), "{error}");
    assert_eq!(
        report["skipped"]["after"], "needs the outputs of user",
        "{report}"
    );
    assert_eq!(report["applied"], json!({"fine": "create"}), "{report}");
    assert_eq!(env.read("fine.txt").as_deref(), Some("fine"));
    let failed = events_of(&events, "buildFailed");
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0]["name"], "broken");
}

#[test]
fn fifty_resources_share_one_build_and_a_second_apply_builds_nothing() {
    let (env, log) = (TestEnv::new(), BuildLog::new());
    write(
        &env,
        &[derivation(&env, &log, "shared", "shared text", "")],
        r#"        resources = builtins.listToAttrs (builtins.genList (i: {
          name = "r${toString i}";
          value = { type = "local.exec"; inputs = { executable = "cat"; args = [ "${shared}" ]; }; };
        }) 50);"#,
    );
    let (events, report, succeeded) = json_apply(&env);
    assert!(succeeded, "{report}");
    assert_eq!(report["applied"].as_object().unwrap().len(), 50);
    assert_eq!(log.builds(), ["shared"]);
    assert_eq!(events_of(&events, "buildStarted").len(), 1, "{events:?}");
    let built = events_of(&events, "built");
    assert_eq!(built.len(), 1, "{events:?}");
    assert_eq!(built[0]["name"], "shared");

    let (events, report, succeeded) = json_apply(&env);
    assert!(succeeded, "{report}");
    assert_eq!(report["unchanged"], 50, "{report}");
    assert!(
        events
            .iter()
            .all(|e| !e["event"].as_str().unwrap().starts_with("build")),
        "{events:?}"
    );
    assert_eq!(log.builds(), ["shared"], "nothing was built again");
}

#[test]
fn the_language_server_reports_builds_in_the_progress_of_an_apply() {
    if TestEnv::in_root() {
        // The server runs on this machine in LspClient; the CLI tests cover current Nix.
        return;
    }
    let (env, log) = (TestEnv::new(), BuildLog::new());
    write(
        &env,
        &[derivation(&env, &log, "page", "page text", "")],
        r#"        resources.page = { type = "local.exec"; inputs = { executable = "cat"; args = [ "${page}" ]; }; };"#,
    );
    let uri = format!("file://{}", env.dir().join("flake.nix").display());
    let mut client = LspClient::start_program(
        &nixops4_tests::binary("nixops4-lsp"),
        &[],
        Some(env.dir()),
        json!({"trusted": true}),
        &[("NIX_CONFIG", "substituters =\nsandbox = false\n")],
    );
    let text = env.read("flake.nix").unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let plan = client.request("nixops4/plan", json!({"uri": uri}));
    assert_eq!(plan["summaryText"], "+1 ~0 -/+0 -0, 1 to build", "{plan}");
    assert_eq!(plan["plan"]["builds"][0]["name"], "page", "{plan}");
    assert!(log.builds().is_empty(), "a plan builds nothing");

    let id = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri}]}),
    );
    let messages = std::cell::RefCell::new(Vec::new());
    let answer = client.wait_for("the apply", |m| {
        if m["method"] == "$/progress"
            && let Some(message) = m["params"]["value"]["message"].as_str()
        {
            messages.borrow_mut().push(message.to_owned());
        }
        is_response(m, id)
    });
    let messages = messages.into_inner();
    assert_eq!(
        answer["result"]["applied"],
        json!({"page": "create"}),
        "{answer}"
    );
    let building = messages.iter().position(|m| m == "building page");
    let built = messages.iter().position(|m| m == "built page");
    let created = messages.iter().position(|m| m == "created page");
    assert!(
        building < built && built < created && building.is_some(),
        "{messages:?}"
    );
    assert_eq!(log.builds(), ["page"]);
}
