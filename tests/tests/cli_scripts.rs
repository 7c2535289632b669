//! `nixops4 script` end to end, with real Nix, the real local provider and the testing
//! provider's secret: a script gets the outputs it declares as environment variables and
//! as a JSON file, its arguments, stdin, stdout, stderr and exit status pass through, the
//! state is not locked while it runs, and the secret reaches the script only: not what
//! nixops4 itself prints, as text or JSON, and not its errors.

use nixops4_tests::TestEnv;
use serde_json::{Value, json};

const SECRET: &str = "s3cr3t-token-for-db";

/// A script in the flake (`${./show.sh}`, so a store path) that records what it got in
/// `got.json`, answers on stdout and stderr without the secret, and exits with 7.
const SHOW: &str = r#"#!/bin/sh
read -r line
if flock -n "$PWD/.nixops4/default.state.jsonl.lock" true; then lock=free; else lock=held; fi
cat > got.json <<END
{"token": "$TOKEN", "public": "$PUBLIC", "count": $COUNT, "file": $(cat "$NIXOPS4_OUTPUTS_FILE"),
 "fileName": "$NIXOPS4_OUTPUTS_FILE", "args": "$*", "stdin": "$line", "lock": "$lock"}
END
echo "the script's stdout"
echo "the script's stderr" >&2
exit 7
"#;

fn deployment(env: &TestEnv) {
    env.write("show.sh", SHOW);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        env.dir().join("show.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let provider = env.program_path("nixops4-resources-testing");
    env.write_deployment(&format!(
        r#"
      providers.testing = {{ executable = "{}"; }};
      resources.key = {{ type = "testing.secret"; inputs.name = "db"; }};
      scripts.show = {{
        program = "${{./show.sh}}";
        args = [ "declared" ];
        outputs = {{ TOKEN = resources.key.token; PUBLIC = resources.key.public; COUNT = 2; }};
      }};
      scripts.leaky = {{ program = "/bin/sh"; outputs.X = builtins.throw "cannot use ${{resources.key.token}}"; }};"#,
        provider.display()
    ));
}

#[test]
fn a_script_gets_its_outputs_and_the_secret_stays_with_it() {
    let env = TestEnv::new();
    deployment(&env);
    let early = env.run(&["script", "show"]);
    insta::assert_snapshot!(early, @r"
    ------- stderr -------
    error: script `show` needs the outputs of key, which is not applied yet
    [exit status: 2]
    [EOF]
    ");
    env.run(&["apply"]).success();
    insta::assert_snapshot!(env.run(&["script"]).success(), @r"
    leaky
    show
    [EOF]
    ");

    let ran = env.run_with_input(&["script", "show", "--", "one", "--two"], "typed\n");
    // Exactly what the script printed, and its exit status.
    insta::assert_snapshot!(ran, @r"
    the script's stdout
    ------- stderr -------
    the script's stderr
    [exit status: 7]
    [EOF]
    ");
    let got: Value = serde_json::from_str(&env.read("got.json").unwrap()).unwrap();
    let outputs = json!({"TOKEN": SECRET, "PUBLIC": "public-db", "COUNT": 2});
    assert_eq!(got["token"], SECRET);
    assert_eq!(got["public"], "public-db");
    assert_eq!(got["count"], 2);
    assert_eq!(got["file"], outputs);
    assert_eq!(got["args"], "declared one --two");
    assert_eq!(got["stdin"], "typed");
    assert_eq!(got["lock"], "free", "the state is not locked while it runs");
    let file = got["fileName"].as_str().unwrap();
    assert!(
        !std::path::Path::new(file).exists(),
        "{file} is removed once the script ended"
    );

    // Options before the name are nixops4's; JSON logs show nothing of the outputs either.
    let json = env.run_with_input(&["--log-format", "json", "script", "show"], "\n");
    assert_eq!(json.code(), Some(7), "{json}");
    // An evaluation error that would show the secret has it hidden.
    let leaky = env.run(&["script", "leaky"]);
    assert!(leaky.stderr.contains("cannot use (sensitive)"), "{leaky}");
    for output in [&early, &ran, &json, &leaky] {
        assert!(
            !output.stdout.contains("s3cr3t") && !output.stderr.contains("s3cr3t"),
            "nixops4 showed the secret:\n{output}"
        );
    }
}

#[test]
fn scripts_that_cannot_run_say_why() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"
      scripts.missing = { program = "/nonexistent/program"; };
      scripts.fine = { program = "/bin/sh"; args = [ "-c" "exit 0" ]; };"#,
    );
    insta::assert_snapshot!(env.run(&["script", "missing"]), @r"
    ------- stderr -------
    error: cannot run script `missing` (/nonexistent/program): No such file or directory (os error 2)
    [exit status: 2]
    [EOF]
    ");
    insta::assert_snapshot!(env.run(&["script", "nope"]), @r"
    ------- stderr -------
    error: the deployment has no script nope (it has: fine, missing)
    [exit status: 1]
    [EOF]
    ");
    env.run(&["script", "fine"]).success();
}
