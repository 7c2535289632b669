//! The evaluation-backed side of the real `nixops4-lsp`, with real Nix and the real local
//! provider: plan lenses after a save for every kind of change, `nixops4/plan` and
//! `nixops4/planChanged`, apply from a command with progress, destroy with confirmation,
//! an operation, commands refused at the boundary, completion answered while an apply
//! runs, cancelling by progress and by request, and an untrusted workspace that runs
//! nothing. Each test is one editor session on the same harness, so they stay together.

use std::cell::RefCell;

use nixops4_tests::TestEnv;
use nixops4_tests::lsp_client::{LspClient, file_uri, is_response};
use serde_json::{Value, json};

fn uri(env: &TestEnv) -> String {
    file_uri(&env.dir().join("flake.nix"))
}

fn open(client: &mut LspClient, env: &TestEnv) {
    client.open_file(&env.dir().join("flake.nix"));
}

/// Rewrites the deployment on disk and in the editor, then saves.
fn save(client: &mut LspClient, env: &TestEnv, body: &str, version: i64) {
    env.write_deployment(body);
    let text = env.read("flake.nix").unwrap();
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(env), "version": version}, "contentChanges": [{"text": text}]}),
    );
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri(env)}}),
    );
}

/// The lens titles once the plan of the current text is shown: polls until they are not
/// "planning" and differ from `before`.
fn lenses_after(client: &mut LspClient, env: &TestEnv, before: &[String]) -> Vec<String> {
    let deadline = std::time::Instant::now() + nixops4_tests::lsp_client::DEADLINE;
    loop {
        let lenses = client.request(
            "textDocument/codeLens",
            json!({"textDocument": {"uri": uri(env)}}),
        );
        let titles: Vec<String> = lenses
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["command"]["title"].as_str().unwrap().to_owned())
            .collect();
        if !titles.iter().any(|t| t.contains("planning")) && titles != before {
            return titles;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lenses stayed {titles:?}"
        );
        // Wait for the server's next lens refresh rather than asking in a loop.
        let _ = client.wait_for("a lens refresh", |m| {
            m["method"] == "workspace/codeLens/refresh"
        });
    }
}

/// Waits until a resource's command has left its mark (`marker`), asking the server
/// something meanwhile so that the wait has a deadline without sleeping.
fn started(client: &mut LspClient, env: &TestEnv, marker: &std::path::Path, what: &str) {
    let deadline = std::time::Instant::now() + nixops4_tests::lsp_client::DEADLINE;
    while !marker.exists() {
        assert!(std::time::Instant::now() < deadline, "{what} never started");
        let _ = client.request("nixops4/documentText", json!({"uri": uri(env)}));
    }
}

const TWO_FILES: &str = r#"      resources.a = { type = "local.file"; inputs = { name = "a.txt"; contents = "one"; }; };
      resources.b = { type = "local.file"; inputs = { name = "b.txt"; contents = resources.a.sha256; }; };"#;

/// Runs a command, answering the server's questions with `answer`, and returns its
/// result with every `$/progress` notification seen meanwhile.
fn command(
    client: &mut LspClient,
    name: &str,
    argument: Value,
    answer: Option<&str>,
) -> (Value, Vec<Value>) {
    let id = client.send_request(
        "workspace/executeCommand",
        json!({"command": name, "arguments": [argument]}),
    );
    let seen = RefCell::new(Vec::new());
    loop {
        let message = client.wait_for(name, |m| {
            if m["method"] == "$/progress" {
                seen.borrow_mut().push(m["params"]["value"].clone());
            }
            is_response(m, id) || m["method"] == "window/showMessageRequest"
        });
        if message["method"] == "window/showMessageRequest" {
            let result = answer.map_or(Value::Null, |title| json!({"title": title}));
            client.send(json!({"jsonrpc": "2.0", "id": message["id"], "result": result}));
            continue;
        }
        assert!(message.get("error").is_none(), "{name} failed: {message}");
        return (message["result"].clone(), seen.into_inner());
    }
}

#[test]
fn lenses_show_each_kind_of_change_and_apply_turns_them_to_no_changes() {
    let env = TestEnv::new();
    env.write_deployment(TWO_FILES);
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    open(&mut client, &env);
    let created = lenses_after(&mut client, &env, &[]);
    assert_eq!(
        created,
        [
            "▶ Apply deployment `default` (+2 ~0 -/+0 -0)",
            "+ create",
            "+ create, waiting for resources.a"
        ]
    );
    let plan = client.request("nixops4/plan", json!({"uri": uri(&env)}));
    assert_eq!(plan["summary"]["create"], 2, "{plan}");
    assert_eq!(plan["plan"]["resources"][0]["resource"], json!(["a"]));
    assert_eq!(
        plan["operations"],
        json!([{"resource": ["a"], "operations": ["backup"]}, {"resource": ["b"], "operations": ["backup"]}])
    );

    let (report, progress) = command(
        &mut client,
        "nixops4.apply",
        json!({"uri": uri(&env)}),
        None,
    );
    assert_eq!(
        report["applied"],
        json!({"a": "create", "b": "create"}),
        "{report}"
    );
    assert!(env.dir().join("a.txt").exists() && env.dir().join("b.txt").exists());
    let kinds: Vec<&str> = progress
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"begin"), "{progress:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{progress:?}");
    assert!(
        progress.iter().any(|p| p["message"] == "created b"),
        "{progress:?}"
    );
    let applied = lenses_after(&mut client, &env, &created);
    assert_eq!(
        applied,
        [
            "▶ Apply deployment `default` (+0 ~0 -/+0 -0)",
            "no changes",
            "no changes"
        ]
    );

    save(
        &mut client,
        &env,
        &TWO_FILES.replace("\"one\"", "\"two\""),
        2,
    );
    let updated = lenses_after(&mut client, &env, &applied);
    assert_eq!(
        updated,
        [
            "▶ Apply deployment `default` (+0 ~2 -/+0 -0)",
            "~ update: contents",
            "~ update, waiting for resources.a"
        ]
    );
    save(
        &mut client,
        &env,
        &TWO_FILES.replace("\"a.txt\"", "\"c.txt\""),
        3,
    );
    let replaced = lenses_after(&mut client, &env, &updated);
    assert_eq!(replaced[1], "-/+ replace: name");
    // Gone from the expression: shown where it was declared.
    save(&mut client, &env, TWO_FILES.lines().next().unwrap(), 4);
    let deleted = lenses_after(&mut client, &env, &replaced);
    assert_eq!(
        deleted,
        [
            "▶ Apply deployment `default` (+0 ~0 -/+0 -1)",
            "no changes",
            "- delete"
        ]
    );
    client.shutdown();
}

#[test]
fn destroy_asks_first_and_operations_run() {
    let env = TestEnv::new();
    env.write_deployment(TWO_FILES);
    env.run(&["apply"]).success();
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    open(&mut client, &env);
    let target = json!({"uri": uri(&env), "targets": [["b"]]});
    let (kept, _) = command(
        &mut client,
        "nixops4.destroy",
        target.clone(),
        Some("Cancel"),
    );
    assert_eq!(kept, json!({"destroyed": false}));
    assert!(env.dir().join("b.txt").exists());
    let (report, _) = command(&mut client, "nixops4.destroy", target, Some("Destroy"));
    assert_eq!(report["applied"], json!({"b": "delete"}), "{report}");
    assert!(!env.dir().join("b.txt").exists());
    let (ran, _) = command(
        &mut client,
        "nixops4.runOperation",
        json!({"uri": uri(&env), "targets": [["a"]], "operation": "backup"}),
        None,
    );
    assert_eq!(ran["ran"], true, "{ran}");
    let backup = ran["result"]["path"].as_str().expect("the backup's path");
    assert_eq!(std::fs::read_to_string(backup).unwrap(), "one");
    client.shutdown();
}

#[test]
fn completion_is_answered_while_an_apply_runs() {
    let env = TestEnv::new();
    let marker = env.dir().join("slow-started");
    env.write_deployment(&format!(
        r#"      resources.slow = {{ type = "local.exec"; inputs = {{ executable = "sh"; args = [ "-c" "touch '{}'; sleep 3" ]; }}; }};
      resources.f = {{ type = "local.file"; inputs = {{ name = "f.txt"; contents = resources.slow.stdout; }}; }};"#,
        marker.display()
    ));
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    open(&mut client, &env);
    let apply = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri(&env)}]}),
    );
    started(&mut client, &env, &marker, "the slow resource");
    let text = env.read("flake.nix").unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("resources.slow.stdout"))
        .unwrap();
    let column = text.lines().nth(line).unwrap().find("slow.stdout").unwrap() + "slow.".len();
    let completion = client.send_request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri(&env)}, "position": {"line": line, "character": column}}),
    );
    // The completion's answer comes while the apply still runs, before the apply's.
    let first = client.wait_for("an answer", |m| {
        is_response(m, completion) || is_response(m, apply)
    });
    assert_eq!(first["id"], json!(completion), "{first}");
    let labels: Vec<&str> = first["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"stdout"), "{labels:?}");
    let done = client.wait_for("the apply", |m| is_response(m, apply));
    assert_eq!(
        done["result"]["applied"],
        json!({"f": "create", "slow": "create"}),
        "{done}"
    );
    client.shutdown();
}

#[test]
fn an_untrusted_workspace_runs_nothing_and_says_why() {
    let env = TestEnv::new();
    env.write_deployment(TWO_FILES);
    let ran = env.dir().join("nix-ran");
    let nix = env.dir().join("nix.sh");
    std::fs::write(
        &nix,
        format!("#!/bin/sh\ntouch '{}'\nexec nix \"$@\"\n", ran.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&nix, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut client = LspClient::start_program(
        &nixops4_tests::binary("nixops4-lsp"),
        &[],
        Some(env.dir()),
        json!({"trusted": false}),
        &[("NIXOPS4_NIX", nix.to_str().unwrap())],
    );
    open(&mut client, &env);
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri(&env)}}),
    );
    let lenses = client.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri(&env)}}),
    );
    assert_eq!(lenses, json!([]));
    let told = std::cell::Cell::new(0);
    let wait = |client: &mut LspClient, id: i64| {
        client.wait_for("an answer", |m| {
            if m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("not trusted")
            {
                told.set(told.get() + 1);
            }
            is_response(m, id)
        })
    };
    for _ in 0..2 {
        let id = client.send_request(
            "workspace/executeCommand",
            json!({"command": "nixops4.apply", "arguments": [{"uri": uri(&env)}]}),
        );
        let refused = wait(&mut client, id);
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not trusted"),
            "{refused}"
        );
    }
    let id = client.send_request("nixops4/documentText", json!({"uri": uri(&env)}));
    wait(&mut client, id);
    // Told once, not at every attempt.
    assert_eq!(told.get(), 1);
    client.shutdown();
    assert!(!ran.exists(), "an untrusted workspace ran nix");
    assert!(!env.dir().join("a.txt").exists());
}

#[test]
fn evaluation_errors_become_diagnostics_and_refresh_runs() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"      resources.a = { type = "local.file"; inputs = { name = "a.txt"; contents = "one"; }; };
      resources.bad = { type = "local.file"; inputs = { name = "bad.txt"; contents = builtins.throw "no contents yet"; }; };"#,
    );
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    open(&mut client, &env);
    let published = client.wait_for("the evaluation error", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["diagnostics"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["code"] == "evaluation"))
    });
    let error = published["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "evaluation")
        .unwrap()
        .clone();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no contents yet"),
        "{error}"
    );
    // On the line that declares `bad` (the 5th of the flake).
    assert_eq!(error["range"]["start"]["line"], 4, "{error}");
    let (report, _) = command(
        &mut client,
        "nixops4.refresh",
        json!({"uri": uri(&env)}),
        None,
    );
    assert_eq!(report["unchanged"], 0, "{report}");
    client.shutdown();
}

#[test]
fn shutting_down_during_an_apply_records_what_ran() {
    let env = TestEnv::new();
    env.write_deployment(
        r#"      resources.slow = { type = "local.exec"; inputs = { executable = "sh"; args = [ "-c" "sleep 2; echo done" ]; }; };
      resources.after = { type = "local.file"; inputs = { name = "after.txt"; contents = resources.slow.stdout; }; };"#,
    );
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    open(&mut client, &env);
    let apply = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri(&env)}]}),
    );
    client.wait_for("the apply's progress", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["message"] == "creating slow"
    });
    let shutdown = client.send_request("shutdown", json!(null));
    client.wait_for("the shutdown", |m| is_response(m, shutdown));
    // Answered only once the running call (two seconds long) is recorded; nothing new
    // was started after the shutdown came.
    let state = env.run(&["state", "list"]).success().stdout;
    assert!(
        state.contains("slow") && !state.contains("after"),
        "{state}"
    );
    let _ = apply;
    drop(client);
}

#[test]
fn cancelling_the_progress_stops_the_apply_after_the_running_call() {
    let env = TestEnv::new();
    let marker = env.dir().join("first-started");
    env.write_deployment(&format!(
        r#"      resources.first = {{ type = "local.exec"; inputs = {{ executable = "sh"; args = [ "-c" "touch '{}'; sleep 2; echo one" ]; }}; }};
      resources.second = {{ type = "local.file"; inputs = {{ name = "second.txt"; contents = resources.first.stdout; }}; }};"#,
        marker.display()
    ));
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    open(&mut client, &env);
    let apply = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri(&env)}]}),
    );
    let begun = client.wait_for("the progress", |m| {
        m["method"] == "$/progress" && m["params"]["value"]["kind"] == "begin"
    });
    let token = begun["params"]["token"].clone();
    started(&mut client, &env, &marker, "the first resource");
    client.notify("window/workDoneProgress/cancel", json!({"token": token}));
    let done = client.wait_for("the apply", |m| is_response(m, apply));
    assert_eq!(done["result"]["interrupted"], true, "{done}");
    assert_eq!(
        done["result"]["applied"],
        json!({"first": "create"}),
        "{done}"
    );
    assert!(!env.dir().join("second.txt").exists());
    client.shutdown();
}

/// A `nix` that leaves a mark when it runs, for a server that must not run it.
fn marking_nix(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf) {
    let ran = env.dir().join("nix-ran");
    let nix = env.dir().join("nix.sh");
    std::fs::write(
        &nix,
        format!("#!/bin/sh\ntouch '{}'\nexec nix \"$@\"\n", ran.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&nix, std::fs::Permissions::from_mode(0o755)).unwrap();
    (nix, ran)
}

#[test]
fn commands_whose_targets_are_not_resource_paths_are_refused_before_anything_starts() {
    let env = TestEnv::new();
    env.write_deployment(TWO_FILES);
    let (nix, ran) = marking_nix(&env);
    let mut client = LspClient::start_program(
        &nixops4_tests::binary("nixops4-lsp"),
        &[],
        Some(env.dir()),
        json!({"trusted": true, "planOnSave": false}),
        &[("NIXOPS4_NIX", nix.to_str().unwrap())],
    );
    open(&mut client, &env);
    for (command, targets) in [
        ("nixops4.runOperation", json!([[]])),
        ("nixops4.runOperation", json!([[""]])),
        ("nixops4.destroy", json!([["a", ""]])),
        ("nixops4.apply", json!([["a"], []])),
        ("nixops4.apply", json!("a")),
    ] {
        let id = client.send_request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [{"uri": uri(&env), "targets": targets, "operation": "backup", "confirmed": true}]}),
        );
        let refused = client.wait_for(command, |m| is_response(m, id));
        assert_eq!(
            refused["error"]["code"], -32602,
            "{command} {targets}: {refused}"
        );
    }
    // Still serving; nothing was evaluated, and the state was not even opened.
    client.request("nixops4/documentText", json!({"uri": uri(&env)}));
    assert!(!ran.exists(), "nix ran");
    assert!(!env.dir().join(".nixops4").exists(), "the state was opened");
    client.shutdown();
}

/// Sends a request and waits for its answer and for a `nixops4/planChanged`, in
/// whichever order they come; the plan `nixops4/plan` then answers.
fn answer_and_plan_changed(client: &mut LspClient, env: &TestEnv, id: Option<i64>) -> Value {
    let (mut answered, mut changed) = (id.is_none(), false);
    while !(answered && changed) {
        let message = client.wait_for("an answer and nixops4/planChanged", |m| {
            id.is_some_and(|id| is_response(m, id)) || m["method"] == "nixops4/planChanged"
        });
        if message["method"] == "nixops4/planChanged" {
            assert_eq!(
                message["params"],
                json!({"deployment": "default", "flake": env.dir()}),
            );
            changed = true;
        } else {
            assert!(message.get("error").is_none(), "{message}");
            answered = true;
        }
    }
    client.request("nixops4/plan", json!({"uri": uri(env)}))
}

fn labels(plan: &Value) -> Vec<&str> {
    plan["plan"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect()
}

#[test]
fn the_client_is_told_when_a_plan_changes_and_gets_it_with_its_labels() {
    let env = TestEnv::new();
    env.write_deployment(TWO_FILES);
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": true}));
    // Editors send `didSave`, which starts a plan, only to a server that asks for it.
    assert_eq!(client.capabilities()["textDocumentSync"]["save"], true);
    open(&mut client, &env);
    let opened = answer_and_plan_changed(&mut client, &env, None);
    assert_eq!(opened["summaryText"], "+2 ~0 -/+0 -0", "{opened}");
    assert_eq!(
        labels(&opened),
        ["+ create", "+ create, waiting for resources.a"]
    );
    // After an apply (from a lens, say): told, and the plan says so.
    let apply = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri(&env)}]}),
    );
    let applied = answer_and_plan_changed(&mut client, &env, Some(apply));
    assert_eq!(applied["summaryText"], "+0 ~0 -/+0 -0", "{applied}");
    assert_eq!(labels(&applied), ["no changes", "no changes"]);
    // After a save: told once the new plan exists, never the one from before.
    save(
        &mut client,
        &env,
        &TWO_FILES.replace("\"a.txt\"", "\"c.txt\""),
        2,
    );
    let saved = answer_and_plan_changed(&mut client, &env, None);
    assert_eq!(saved["summaryText"], "+0 ~1 -/+1 -0", "{saved}");
    assert_eq!(
        labels(&saved),
        ["-/+ replace: name", "~ update, waiting for resources.a"]
    );
    client.shutdown();
}

#[test]
fn cancelling_the_request_interrupts_an_apply() {
    let env = TestEnv::new();
    let marker = env.dir().join("first-started");
    env.write_deployment(&format!(
        r#"      resources.first = {{ type = "local.exec"; inputs = {{ executable = "sh"; args = [ "-c" "touch '{}'; sleep 2; echo one" ]; }}; }};
      resources.second = {{ type = "local.file"; inputs = {{ name = "second.txt"; contents = resources.first.stdout; }}; }};"#,
        marker.display()
    ));
    let mut client = LspClient::start(
        &[],
        Some(env.dir()),
        json!({"trusted": true, "planOnSave": false}),
    );
    open(&mut client, &env);
    // A job: interrupted, and answered with what it did.
    let apply = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri(&env)}]}),
    );
    started(&mut client, &env, &marker, "the first resource");
    client.notify("$/cancelRequest", json!({"id": apply}));
    let done = client.wait_for("the apply", |m| is_response(m, apply));
    assert_eq!(done["result"]["interrupted"], true, "{done}");
    assert_eq!(
        done["result"]["applied"],
        json!({"first": "create"}),
        "{done}"
    );
    assert!(!env.dir().join("second.txt").exists());
    client.shutdown();
}

#[test]
fn cancelling_a_plan_request_answers_it_at_once() {
    let env = TestEnv::new();
    // Reading a FIFO nobody writes to blocks: this plan would never be made.
    let fifo = env.dir().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    env.write_deployment(
        r#"      resources.stuck = { type = "local.file"; inputs = { name = "x"; contents = builtins.readFile (builtins.getEnv "NIXOPS4_TEST_FIFO"); }; };"#,
    );
    let mut client = LspClient::start_program(
        &nixops4_tests::binary("nixops4-lsp"),
        &[],
        Some(env.dir()),
        json!({"trusted": true, "planOnSave": false}),
        &[("NIXOPS4_TEST_FIFO", fifo.to_str().unwrap())],
    );
    open(&mut client, &env);
    let plan = client.send_request("nixops4/plan", json!({"uri": uri(&env)}));
    client.notify("$/cancelRequest", json!({"id": plan}));
    let cancelled = client.wait_for("the plan", |m| is_response(m, plan));
    assert_eq!(cancelled["error"]["code"], -32800, "{cancelled}");
    client.shutdown();
}
