//! Scripts in the real `nixops4-lsp`, with real Nix and the testing provider's secret: in a
//! trusted workspace each script the document declares gets a "run" lens and
//! `nixops4.runScript` runs it with its outputs, its output going to the client's log and
//! its exit code to the result, the secret reaching no message; in an untrusted one there
//! is no such lens and nothing runs.

use std::cell::RefCell;

use nixops4_tests::TestEnv;
use nixops4_tests::lsp_client::{LspClient, file_uri, is_response};
use serde_json::{Value, json};

const SECRET: &str = "s3cr3t-token-for-db";

/// A deployment with a secret and a script that writes the secret and its arguments to
/// `got` (which `ran` names), says hello on stdout and exits with 3.
fn deployment(env: &TestEnv) {
    let provider = nixops4_tests::binary("nixops4-resources-testing");
    env.write_deployment(&format!(
        r#"      providers.testing = {{ executable = "{}"; }};
      resources.key = {{ type = "testing.secret"; inputs.name = "db"; }};
      scripts.show = {{
        program = "/bin/sh";
        args = [ "-c" "echo \"$TOKEN $*\" > got; echo hello from the script; exit 3" "show" ];
        outputs.TOKEN = resources.key.token;
      }};"#,
        provider.display()
    ));
}

fn uri(env: &TestEnv) -> String {
    file_uri(&env.dir().join("flake.nix"))
}

fn lenses(client: &mut LspClient, env: &TestEnv) -> Vec<Value> {
    let lenses = client.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri(env)}}),
    );
    lenses.as_array().unwrap().clone()
}

/// Runs a command; its answer, and every message the server sent meanwhile.
fn run(client: &mut LspClient, command: &str, argument: Value) -> (Value, Vec<Value>) {
    let id = client.send_request(
        "workspace/executeCommand",
        json!({"command": command, "arguments": [argument]}),
    );
    let seen = RefCell::new(Vec::new());
    let answer = client.wait_for(command, |m| {
        seen.borrow_mut().push(m.clone());
        is_response(m, id)
    });
    (answer, seen.into_inner())
}

#[test]
fn a_trusted_workspace_runs_scripts_from_their_lenses() {
    let env = TestEnv::new();
    deployment(&env);
    env.run(&["apply"]).success();
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    client.open_file(&env.dir().join("flake.nix"));
    // The plan, and with it the script list.
    client.wait_for("the plan", |m| m["method"] == "nixops4/planChanged");
    let lenses = lenses(&mut client, &env);
    let lens = lenses
        .iter()
        .find(|l| l["command"]["title"] == "▶ Run script `show`")
        .unwrap_or_else(|| panic!("no script lens in {lenses:?}"));
    // On the line that declares it (the 6th of the flake).
    assert_eq!(lens["range"]["start"]["line"], 5, "{lens}");
    assert_eq!(lens["command"]["command"], "nixops4.runScript");
    let plan = client.request("nixops4/plan", json!({"uri": uri(&env)}));
    assert_eq!(plan["scripts"], json!([["show"]]));

    let mut argument = lens["command"]["arguments"][0].clone();
    assert_eq!(argument, json!({"uri": uri(&env), "script": ["show"]}));
    argument["scriptArgs"] = json!(["one", "two"]);
    let (answer, seen) = run(&mut client, "nixops4.runScript", argument);
    assert_eq!(answer["result"], json!({"exitCode": 3}), "{answer}");
    assert_eq!(env.read("got"), Some(format!("{SECRET} one two\n")));
    let said = |method: &str| -> Vec<String> {
        seen.iter()
            .filter(|m| m["method"] == method)
            .map(|m| {
                m["params"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    assert!(
        said("window/logMessage").contains(&"show: hello from the script".to_owned()),
        "{seen:?}"
    );
    assert!(
        said("window/showMessage")
            .contains(&"NixOps4: script `show` exited with 3; its output is in the log".to_owned()),
        "{seen:?}"
    );
    let everything = serde_json::to_string(&seen).unwrap() + &answer.to_string();
    assert!(
        !everything.contains("s3cr3t"),
        "the secret reached the client"
    );

    let (refused, _) = run(&mut client, "nixops4.runScript", json!({"uri": uri(&env)}));
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    client.shutdown();
}

#[test]
fn an_untrusted_workspace_offers_no_script_and_runs_none() {
    let env = TestEnv::new();
    deployment(&env);
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": false}));
    client.open_file(&env.dir().join("flake.nix"));
    assert_eq!(lenses(&mut client, &env), Vec::<Value>::new());
    let argument = json!({"uri": uri(&env), "script": ["show"]});
    let (refused, _) = run(&mut client, "nixops4.runScript", argument);
    assert_eq!(
        refused["error"]["message"], "the workspace is not trusted",
        "{refused}"
    );
    client.shutdown();
    assert!(
        env.read("got").is_none(),
        "an untrusted workspace ran a script"
    );
}
