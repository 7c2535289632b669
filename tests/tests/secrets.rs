//! A canary secret across every surface, with real Nix, the real providers, the real CLI
//! and the real language server. The testing provider's `secret.token` flows into
//! another resource's input, into a failing command's arguments (whose stderr echoes it),
//! into an evaluation error, and into a deployment output. Nothing a person or a log sees
//! shows it, unless asked for with `--show-secrets`; what is made from it shows as
//! sensitive in plans and hover; the state and its lock are readable by their owner only.

use std::os::unix::fs::PermissionsExt;

use nixops4_tests::lsp_client::{LspClient, file_uri, is_response, marked};
use nixops4_tests::{CommandOutput, TestEnv};
use serde_json::{Value, json};

/// The deployment; `derived` is the text its `derived` file is made of.
fn deployment(env: &TestEnv, canary: &str, derived: &str) {
    let provider = env.program_path("nixops4-resources-testing");
    env.write_deployment(&format!(
        r#"
      providers.testing = {{ executable = "{provider}"; }};
      resources.key = {{ type = "testing.secret"; inputs.name = "{canary}"; }};
      resources.derived = {{ type = "local.file"; inputs = {{ name = "derived.txt"; contents = "{derived}"; }}; }};
      resources.failing = {{ type = "local.exec"; inputs = {{ executable = "/bin/sh"; args = [ "-c" "echo refusing ${{resources.key.token}} >&2; exit 3" ]; }}; }};
      resources.broken = {{ type = "local.file"; inputs = {{ name = "x"; contents = builtins.throw "cannot use ${{resources.key.token}}"; }}; }};
      outputs.url = "postgres://app:${{resources.key.token}}@db";"#,
        provider = provider.display()
    ));
}

const DERIVED: &str = "url=postgres://app:${resources.key.token}@db";

/// Where the canary may not appear: one surface each.
struct Surfaces {
    token: String,
    checked: Vec<String>,
}

impl Surfaces {
    fn check(&mut self, surface: &str, text: &str) {
        assert!(
            !text.contains(&self.token),
            "{surface} shows the secret:\n{text}"
        );
        self.checked.push(surface.to_owned());
    }

    fn check_output(&mut self, surface: &str, output: &CommandOutput) {
        self.check(surface, &format!("{}\n{}", output.stdout, output.stderr));
    }
}

#[test]
fn a_secret_appears_on_no_surface_unless_revealed() {
    let env = TestEnv::new();
    let canary = format!("canary-{}", std::process::id());
    let token = format!("s3cr3t-token-for-{canary}");
    let mut surfaces = Surfaces {
        token: token.clone(),
        checked: Vec::new(),
    };
    deployment(&env, &canary, DERIVED);

    let applied = env.run(&["apply", "--yes"]);
    assert_eq!(applied.code(), Some(1), "two resources fail:\n{applied}");
    assert!(applied.stderr.contains("refusing (sensitive)"), "{applied}");
    assert!(
        applied.stderr.contains("cannot use (sensitive)"),
        "{applied}"
    );
    surfaces.check_output("`apply` (text)", &applied);
    assert_eq!(
        env.read("derived.txt").unwrap(),
        format!("url=postgres://app:{token}@db"),
        "the secret still reaches where it is used"
    );
    let json = env.run(&["--log-format", "json", "apply", "--yes"]);
    assert!(json.stdout.contains("(sensitive)"), "{json}");
    surfaces.check_output("`apply` JSON log, events and summary", &json);

    // Made from the secret, the file's contents show as sensitive in a plan.
    deployment(&env, &canary, &format!("v2 {DERIVED}"));
    let plan = env.run(&["plan"]);
    assert!(plan.stdout.contains("(sensitive)"), "{plan}");
    surfaces.check_output("`plan` (text)", &plan);
    let plan_json = env.run(&["plan", "--json"]);
    let parsed: Value = serde_json::from_str(&plan_json.stdout).unwrap();
    let derived = parsed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == json!(["derived"]))
        .unwrap();
    assert_eq!(
        derived["changes"][0],
        json!({"input": "contents", "before": "(sensitive)", "after": "(sensitive)", "forcesReplacement": false}),
    );
    surfaces.check_output("`plan --json`", &plan_json);

    let shown = env.run(&["state", "show"]).success();
    assert!(
        shown.stdout.contains(r#""token": "(sensitive)""#),
        "{shown}"
    );
    assert!(
        shown.stdout.contains(r#""contents": "(sensitive)""#),
        "{shown}"
    );
    surfaces.check_output("`state show`", &shown);
    surfaces.check_output("`state list`", &env.run(&["state", "list"]).success());
    let output = env.run(&["output", "url"]).success();
    assert_eq!(output.stdout.trim(), "(sensitive)");
    surfaces.check_output("`output` (text)", &output);
    surfaces.check_output(
        "`output --json`",
        &env.run(&["output", "url", "--json"]).success(),
    );

    // Asked for explicitly, they print it.
    let revealed = env.run(&["output", "url", "--show-secrets"]).success();
    assert_eq!(revealed.stdout.trim(), format!("postgres://app:{token}@db"));
    let revealed = env.run(&["state", "show", "--show-secrets"]).success();
    assert!(revealed.stdout.contains(&token), "{revealed}");

    // The state and its lock are the owner's only.
    for file in [
        ".nixops4/default.state.jsonl",
        ".nixops4/default.state.jsonl.lock",
    ] {
        let mode = std::fs::metadata(env.dir().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }

    let headless = env.run_program("nixops4-lsp", &["--apply", "--yes"]);
    assert_eq!(headless.code(), Some(1), "{headless}");
    surfaces.check_output("`nixops4-lsp --apply` (text)", &headless);
    let headless = env.run_program("nixops4-lsp", &["--apply", "--yes", "--json"]);
    surfaces.check_output("`nixops4-lsp --apply --json`", &headless);

    language_server(&env, &mut surfaces);

    // The secret changes (a rotated key): what the old one was made into, still recorded
    // for `derived`, stays hidden.
    deployment(&env, &format!("{canary}-rotated"), &format!("v2 {DERIVED}"));
    env.run(&["apply", "--yes", "--target", "key"]).success();
    let plan = env.run(&["plan"]);
    assert!(plan.stdout.contains("(sensitive)"), "{plan}");
    surfaces.check_output("`plan` after the secret changed", &plan);
    surfaces.check_output(
        "`state show` after the secret changed",
        &env.run(&["state", "show"]).success(),
    );
    eprintln!(
        "the canary was looked for on {} surfaces: {}",
        surfaces.checked.len(),
        surfaces.checked.join("; ")
    );
    assert_eq!(surfaces.checked.len(), 17);
}

/// The editor's side: diagnostics, hover, lenses, `nixops4/plan`, an apply's progress
/// and messages, and everything else the server ever sent.
fn language_server(env: &TestEnv, surfaces: &mut Surfaces) {
    let uri = file_uri(&env.dir().join("flake.nix"));
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    client.open_file(&env.dir().join("flake.nix"));

    let diagnostics = client.wait_for("the evaluation's diagnostics", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["diagnostics"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["code"] == "evaluation"))
    });
    let shown = diagnostics.to_string();
    assert!(shown.contains("cannot use (sensitive)"), "{shown}");
    surfaces.check("diagnostics", &shown);

    let text = env.read("flake.nix").unwrap();
    let (_, on_contents) = marked(&text.replacen("contents = \"v2", "conte$0nts = \"v2", 1));
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": on_contents}),
    );
    let hovered = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        hovered.contains("(sensitive: made from a secret, not shown)"),
        "{hovered}"
    );
    surfaces.check("hover", hovered);

    let lenses = client.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
    surfaces.check("code lenses", &lenses.to_string());
    let plan = client.request("nixops4/plan", json!({"uri": uri}));
    surfaces.check("`nixops4/plan`", &plan.to_string());

    let id = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri, "confirmed": true}]}),
    );
    client.wait_for("the apply's answer", |m| is_response(m, id));
    let transcript: Vec<String> = client.transcript().iter().map(Value::to_string).collect();
    let progress: Vec<&String> = transcript
        .iter()
        .filter(|m| m.contains("$/progress"))
        .collect();
    assert!(
        progress.iter().any(|m| m.contains("refusing (sensitive)")),
        "{progress:?}"
    );
    surfaces.check(
        "every message of the session: progress, window messages and logs",
        &transcript.join("\n"),
    );
    client.shutdown();
}
