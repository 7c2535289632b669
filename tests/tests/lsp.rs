//! The real `nixops4-lsp` over stdio: initialize, diagnostics after open and after
//! incremental edits, completion at positions in non-ASCII text, an edit and a request sent
//! back to back, the files an untrusted workspace may open, and a clean shutdown.

use std::process::Command;

use nixops4_tests::lsp_client::{LspClient, marked};
use serde_json::{Value, json};

const URI: &str = "file:///work/flake.nix";

fn labels(result: &Value) -> Vec<String> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn diagnostics_and_completion_follow_edits() {
    let mut client = LspClient::start(&[], None, json!({}));
    let text = "{ outputs = { self }: { nixops4Deployments.default = { resources, ... }: {\n  resources.a = { type = \"local.file\"; inputs = { name = \"é😀\"; contnets = \"x\"; }; };\n}; }; }\n";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "nix", "version": 1, "text": text}}),
    );
    let diagnostics = client.diagnostics(1);
    let codes: Vec<&str> = diagnostics
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["missing-input", "unknown-input"], "{diagnostics:?}");
    // `contnets` starts after "é😀" (1 + 2 UTF-16 units) on line 1.
    let unknown = &diagnostics[1];
    let line1 = text.lines().nth(1).unwrap();
    let column = line1[..line1.find("contnets").unwrap()]
        .encode_utf16()
        .count();
    assert_eq!(
        unknown["range"]["start"],
        json!({"line": 1, "character": column})
    );

    // Fix the typo with an incremental edit.
    let start = json!({"line": 1, "character": column});
    let end = json!({"line": 1, "character": column + "contnets".len()});
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"range": {"start": start, "end": end}, "text": "contents"}]}),
    );
    assert_eq!(client.diagnostics(2), Vec::<Value>::new());

    // An edit and a completion request back to back: the request sees the edit.
    let (new_text, position) = marked(&text.replace("contnets = \"x\";", "contents = \"x\"; $0"));
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 3}, "contentChanges": [{"text": new_text}]}),
    );
    let items = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": URI}, "position": position}),
    );
    assert_eq!(labels(&items), ["mode"]);
    client.shutdown();
}

#[test]
fn an_edit_and_a_hover_sent_back_to_back() {
    let mut client = LspClient::start(&[], None, json!({}));
    let text = "{ resources = {\n  a = { type = \"local.file\"; inputs = { name = \"é😀\"; contents = \"ü\"; }; };\n}; }\n";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "nix", "version": 1, "text": text}}),
    );
    // Renames the input `name` to `mode`, then hovers the new word at once: the hover
    // must see the edit (it documents `mode`, not `name`).
    let (_, start) = marked(&text.replacen("name =", "$0name =", 1));
    let end = json!({"line": start["line"], "character": start["character"].as_u64().unwrap() + 4});
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"range": {"start": start, "end": end}, "text": "mode"}]}),
    );
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": URI}, "position": start}),
    );
    let shown = hover["contents"]["value"].as_str().unwrap();
    assert!(shown.starts_with("**mode**"), "{shown}");
    client.shutdown();
}

#[test]
fn completes_types_resources_and_outputs() {
    let mut client = LspClient::start(&[], None, json!({}));
    let (text, position) = marked(
        "{ resources = {\n  a = { type = \"local.file\"; inputs = { name = \"a\"; contents = \"ü\"; }; };\n  b = { type = \"local.exec\"; inputs.executable = resources.a.$0; };\n}; }\n",
    );
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "nix", "version": 1, "text": text}}),
    );
    let items = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": URI}, "position": position}),
    );
    assert_eq!(labels(&items), ["path", "sha256"]);
    assert_eq!(items[0]["kind"], 5, "a field");
    let unopened = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": "file:///other.nix"}, "position": position}),
    );
    assert_eq!(unopened, Value::Null);
    client.shutdown();
}

#[test]
fn hover_and_definition() {
    let mut client = LspClient::start(&[], None, json!({}));
    let text = "{ resources = {\n  a = { type = \"local.file\"; inputs = { name = \"a\"; contents = \"ü\"; }; };\n  b = { type = \"local.exec\"; inputs.executable = resources.a.path; };\n}; }\n";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "nix", "version": 1, "text": text}}),
    );
    let (_, on_name) = marked(&text.replacen("name =", "na$0me =", 1));
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": URI}, "position": on_name}),
    );
    let value = hover["contents"]["value"].as_str().unwrap();
    assert!(
        value.starts_with("**name** `string` (required, changing it replaces the resource)"),
        "{value}"
    );
    let (_, on_output) = marked(&text.replacen("a.path", "a.pa$0th", 1));
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": URI}, "position": on_output}),
    );
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("Absolute path of the file"),
        "{hover}"
    );
    let (_, on_reference) = marked(&text.replacen("resources.a.", "resources.$0a.", 1));
    let definition = client.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": URI}, "position": on_reference}),
    );
    assert_eq!(
        definition["range"]["start"],
        json!({"line": 1, "character": 2})
    );
    client.shutdown();
}

#[test]
fn version_flag() {
    let output = Command::new(nixops4_tests::binary("nixops4-lsp"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("nixops4-lsp "));
}

fn uri(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

fn open(client: &mut LspClient, uri: &str, text: &str) {
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
}

/// A flake whose deployment is written as two modules: `resources.nix` declares, and
/// `flake.nix` uses what it declares.
fn module_workspace() -> nixops4_tests::TestEnv {
    let env = nixops4_tests::TestEnv::new();
    env.write(
        "flake.nix",
        "{\n  outputs = { self }: {\n    nixops4Deployments.default = { resources, ... }: {\n      resources.copy = {\n        type = \"local.file\";\n        inputs = { name = \"copy.txt\"; contents = resources.greeting.sha256; };\n      };\n    };\n  };\n}\n",
    );
    env.write(
        "modules/resources.nix",
        "{ resources, ... }: {\n  resources.greeting = { type = \"local.file\"; inputs = { name = \"hello.txt\"; contents = \"hello\"; }; };\n}\n",
    );
    env
}

#[test]
fn references_and_rename_reach_module_files_on_disk() {
    let env = module_workspace();
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": false}));
    let flake = env.dir().join("flake.nix");
    let text = env.read("flake.nix").unwrap();
    open(&mut client, &uri(&flake), &text);
    // The scan of the workspace finds the module: nothing is unknown once it is read.
    let settled = client.wait_for("diagnostics without unknown resources", |m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["diagnostics"] == json!([])
    });
    assert_eq!(settled["params"]["uri"], json!(uri(&flake)));
    let (_, position) = marked(&text.replacen("resources.greeting", "resources.gree$0ting", 1));
    let at = json!({"textDocument": {"uri": uri(&flake)}, "position": position});
    let definition = client.request("textDocument/definition", at.clone());
    let module = uri(&env.dir().join("modules/resources.nix"));
    assert_eq!(definition["uri"], json!(module));
    assert_eq!(
        definition["range"]["start"],
        json!({"line": 1, "character": 12})
    );
    let mut with_declaration = at.clone();
    with_declaration["context"] = json!({"includeDeclaration": true});
    let references = client.request("textDocument/references", with_declaration);
    let files: Vec<&str> = references
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["uri"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "{references}");
    let prepared = client.request("textDocument/prepareRename", at.clone());
    assert_eq!(prepared["placeholder"], "greeting");
    let mut rename = at.clone();
    rename["newName"] = json!("welcome message");
    let edit = client.request("textDocument/rename", rename);
    assert_eq!(
        edit["changes"][uri(&flake).as_str()][0]["newText"],
        json!("\"welcome message\"")
    );
    assert_eq!(
        edit["changes"][module.as_str()].as_array().map(Vec::len),
        Some(1)
    );
    // Outputs are the provider's names: renaming one is refused with a reason.
    let (_, on_output) = marked(&text.replacen("sha256", "sha$0256", 1));
    let id = client.send_request(
        "textDocument/prepareRename",
        json!({"textDocument": {"uri": uri(&flake)}, "position": on_output}),
    );
    let refused = client.wait_for("prepareRename", |m| {
        nixops4_tests::lsp_client::is_response(m, id)
    });
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("provider"),
        "{refused}"
    );
    client.shutdown();
}

/// What the module files declare is read again when one of them is edited, and only then
/// (the server keeps it between keystrokes): a reference to a resource the module no longer
/// declares becomes unknown at the next keystroke in the file that holds it.
#[test]
fn an_edited_module_changes_what_references_in_other_files_may_name() {
    let env = module_workspace();
    let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": false}));
    let (flake, module) = (
        uri(&env.dir().join("flake.nix")),
        uri(&env.dir().join("modules/resources.nix")),
    );
    let text = env.read("flake.nix").unwrap();
    let module_text = env.read("modules/resources.nix").unwrap();
    open(&mut client, &flake, &text);
    open(&mut client, &module, &module_text);
    let end = text.lines().count();
    let diagnostics_of = |client: &mut LspClient, version: i64| {
        let message = client.wait_for("the flake's diagnostics", |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == json!(flake)
                && m["params"]["version"] == json!(version)
        });
        message["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let type_in_flake = |client: &mut LspClient, version: i64| {
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": flake, "version": version}, "contentChanges": [{"range": {"start": {"line": end, "character": 0}, "end": {"line": end, "character": 0}}, "text": "\n"}]}),
        );
    };
    type_in_flake(&mut client, 2);
    assert_eq!(diagnostics_of(&mut client, 2), Vec::<Value>::new());
    // The module renames `greeting`: the flake's reference to it names nothing now.
    let at = module_text.find("greeting").unwrap();
    let rename_in_module = |client: &mut LspClient, version: i64, from: &str, to: &str| {
        let change = json!({"range": {"start": {"line": 1, "character": at - module_text.find('\n').unwrap() - 1}, "end": {"line": 1, "character": at - module_text.find('\n').unwrap() - 1 + from.len()}}, "text": to});
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": module, "version": version}, "contentChanges": [change]}),
        );
    };
    rename_in_module(&mut client, 2, "greeting", "welcome");
    type_in_flake(&mut client, 3);
    let unknown = diagnostics_of(&mut client, 3);
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(unknown[0]["code"], "unknown-resource");
    // And back: known again.
    rename_in_module(&mut client, 3, "welcome", "greeting");
    type_in_flake(&mut client, 4);
    assert_eq!(diagnostics_of(&mut client, 4), Vec::<Value>::new());
    client.shutdown();
}

#[test]
fn symbols_folding_tokens_and_quick_fixes() {
    let env = nixops4_tests::TestEnv::new();
    let text = "{\n  outputs = { self }: {\n    nixops4Deployments.default = { resources, ... }: {\n      resources = {\n        a = { type = \"local.file\"; inputs = { name = \"a\"; contnets = \"x\"; }; };\n        b = {\n          type = \"local.exec\";\n          inputs.executable = resources.a.path;\n        };\n      };\n    };\n  };\n}\n";
    env.write("flake.nix", text);
    let file = uri(&env.dir().join("flake.nix"));
    let mut client = LspClient::start(&[], Some(env.dir()), json!({}));
    open(&mut client, &file, text);
    let document = json!({"textDocument": {"uri": file}});
    let symbols = client.request("textDocument/documentSymbol", document.clone());
    let names: Vec<(String, Vec<String>)> = symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let children = s["children"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect();
            (s["name"].as_str().unwrap().to_owned(), children)
        })
        .collect();
    assert_eq!(
        names,
        [
            (
                "a".to_owned(),
                vec!["name".to_owned(), "contnets".to_owned()]
            ),
            ("b".to_owned(), vec!["executable".to_owned()])
        ]
    );
    let folds = client.request("textDocument/foldingRange", document.clone());
    let b_block = folds
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["startLine"] == 5 && f["endLine"] == 8);
    assert!(b_block, "{folds}");
    let tokens = client.request("textDocument/semanticTokens/full", document.clone());
    let data = tokens["data"].as_array().unwrap();
    // Five numbers per token: a, its type, two inputs; b, its type, an input, the reference `a` and `path`.
    assert_eq!(data.len(), 5 * 9, "{tokens}");
    // The first token is `a`'s declaration on line 4, column 8.
    assert_eq!(
        &data[..5],
        &[json!(4), json!(8), json!(1), json!(0), json!(1)]
    );
    let (_, typo) = marked(&text.replacen("contnets", "con$0tnets", 1));
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": file}, "range": {"start": typo, "end": typo}, "context": {"diagnostics": []}}),
    );
    let titles: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Change to `contents`"], "{actions}");
    assert_eq!(
        actions[0]["edit"]["changes"][file.as_str()][0]["newText"],
        "contents"
    );
    client.shutdown();
}

/// A provider program that leaves a mark when it is started, then runs the testing provider.
fn marking_provider(env: &nixops4_tests::TestEnv) -> std::path::PathBuf {
    let script = env.dir().join("provider.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\nexec '{}' \"$@\"\n",
            env.dir().join("provider-ran").display(),
            nixops4_tests::binary("nixops4-resources-testing").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn declared_providers_are_asked_only_in_trusted_workspaces() {
    for trusted in [false, true] {
        let env = nixops4_tests::TestEnv::new();
        let script = marking_provider(&env);
        env.write_deployment(&format!(
            "      providers.testing = {{ executable = \"{}\"; }};\n      resources.s = {{ type = \"testing.secret\"; inputs = {{ nmae = \"x\"; }}; }};",
            script.display()
        ));
        let text = env.read("flake.nix").unwrap();
        let file = uri(&env.dir().join("flake.nix"));
        let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": trusted}));
        open(&mut client, &file, &text);
        let codes = |message: &Value| -> Vec<String> {
            message["params"]["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["code"].as_str().unwrap().to_owned())
                .collect()
        };
        if trusted {
            // Once described, the provider's schema says what is wrong.
            let described = client.wait_for("diagnostics from the described schema", |m| {
                m["method"] == "textDocument/publishDiagnostics"
                    && !m["params"]["diagnostics"].as_array().unwrap().is_empty()
            });
            assert_eq!(codes(&described), ["missing-input", "unknown-input"]);
            assert!(env.dir().join("provider-ran").exists());
        } else {
            let first = client.diagnostics(1);
            assert_eq!(first, Vec::<Value>::new());
            // A request after the open has been answered, so the open is fully handled.
            client.request(
                "textDocument/documentSymbol",
                json!({"textDocument": {"uri": file}}),
            );
            assert!(
                !env.dir().join("provider-ran").exists(),
                "an untrusted workspace started a provider"
            );
        }
        client.shutdown();
    }
}

#[test]
fn hover_shows_recorded_state_and_rename_offers_the_state_move() {
    let env = nixops4_tests::TestEnv::new();
    env.write_deployment(
        "      resources.greeting = { type = \"local.file\"; inputs = { name = \"hello.txt\"; contents = \"hi\"; }; };\n      resources.copy = { type = \"local.file\"; inputs = { name = \"copy.txt\"; contents = resources.greeting.path; }; };",
    );
    env.run(&["apply"]).success();
    let text = env.read("flake.nix").unwrap();
    let file = uri(&env.dir().join("flake.nix"));
    let (_, on_path) = marked(&text.replacen("greeting.path", "greeting.pa$0th", 1));
    for trusted in [false, true] {
        let mut client = LspClient::start(&[], Some(env.dir()), json!({"trusted": trusted}));
        open(&mut client, &file, &text);
        let hover = client.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": file}, "position": on_path}),
        );
        let shown = hover["contents"]["value"].as_str().unwrap();
        let recorded = env.dir().join("hello.txt").canonicalize().unwrap();
        assert!(
            shown.contains(&format!(
                "Last recorded value: `\"{}\"`",
                recorded.display()
            )),
            "{shown}"
        );
        let mut rename =
            json!({"textDocument": {"uri": file}, "position": on_path, "newName": "welcome"});
        let (_, on_name) =
            marked(&text.replacen("resources.greeting =", "resources.gree$0ting =", 1));
        rename["position"] = on_name;
        client.request("textDocument/rename", rename);
        if trusted {
            let question = client.wait_for("the state move offer", |m| {
                m["method"] == "window/showMessageRequest"
            });
            assert!(
                question["params"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("greeting is recorded"),
                "{question}"
            );
            client.send(json!({"jsonrpc": "2.0", "id": question["id"], "result": {"title": "Move state record"}}));
            let done = client.wait_for("the outcome", |m| m["method"] == "window/showMessage");
            assert_eq!(
                done["params"]["message"], "Moved greeting to welcome in the state.",
                "{done}"
            );
            let listed = env.run(&["state", "list"]).success().stdout;
            assert!(
                listed.contains("welcome") && !listed.contains("greeting"),
                "{listed}"
            );
        } else {
            let advice = client.wait_for("the state move advice", |m| {
                m["method"] == "window/showMessage"
            });
            assert!(
                advice["params"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("nixops4 state mv 'greeting' 'welcome'"),
                "{advice}"
            );
        }
        client.shutdown();
    }
}

#[test]
fn an_untrusted_workspace_never_opens_a_file_outside_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let workspace = nixops4_tests::TestEnv::new();
    workspace.write_deployment("");
    let outside = tempfile::tempdir().unwrap();
    // Opening a FIFO for reading blocks until someone opens it for writing: this thread
    // does, so it learns whether the server opened it.
    let fifo = outside.path().join("module.nix");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (done, opened) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let writer = {
        let (fifo, done, opened) = (fifo.clone(), done.clone(), opened.clone());
        std::thread::spawn(move || {
            let file = std::fs::OpenOptions::new().write(true).open(&fifo);
            if !done.load(Ordering::SeqCst) {
                opened.store(true, Ordering::SeqCst);
            }
            if let Ok(mut file) = file {
                use std::io::Write;
                let _ = file.write_all(b"{ }");
            }
        })
    };
    let mut client = LspClient::start(&[], Some(workspace.dir()), json!({"trusted": false}));
    // Closing a document makes the server read it from disk again, if it may.
    client.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri(&fifo)}}),
    );
    // Answered after the close was handled.
    client.request("nixops4/documentText", json!({"uri": uri(&fifo)}));
    done.store(true, Ordering::SeqCst);
    if !opened.load(Ordering::SeqCst) {
        // Lets the writer's open return.
        let _ = std::fs::File::open(&fifo);
    }
    writer.join().unwrap();
    assert!(
        !opened.load(Ordering::SeqCst),
        "an untrusted workspace opened a file outside it"
    );
    client.shutdown();
}
