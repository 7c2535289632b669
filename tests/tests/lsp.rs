//! The real `nixops4-lsp` over stdio: initialize, diagnostics after open and after
//! incremental edits, completion at positions in non-ASCII text, an edit and a request sent
//! back to back, and a clean shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

struct LspClient {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
}

impl LspClient {
    fn start() -> LspClient {
        let mut child = Command::new(nixops4_tests::binary("nixops4-lsp"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nixops4-lsp");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (sender, messages) = channel();
        std::thread::spawn(move || {
            loop {
                let mut length = None;
                loop {
                    let mut header = String::new();
                    if stdout.read_line(&mut header).unwrap_or(0) == 0 {
                        return;
                    }
                    let header = header.trim();
                    if header.is_empty() {
                        break;
                    }
                    if let Some(value) = header.strip_prefix("Content-Length: ") {
                        length = value.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if stdout.read_exact(&mut body).is_err() {
                    return;
                }
                if sender
                    .send(serde_json::from_slice(&body).expect("a JSON message"))
                    .is_err()
                {
                    return;
                }
            }
        });
        let mut client = LspClient {
            child,
            stdin,
            messages,
            next_id: 1,
        };
        let result = client.request(
            "initialize",
            json!({"capabilities": {}, "processId": null, "rootUri": null}),
        );
        assert!(
            result["capabilities"]["completionProvider"].is_object(),
            "{result}"
        );
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The next message that `wanted` accepts; others (logs, other notifications) pass.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"));
            if wanted(&message) {
                return message;
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        let response = self.wait_for(method, |m| m["id"] == json!(id));
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    fn diagnostics(&mut self, version: i64) -> Vec<Value> {
        let message = self.wait_for("diagnostics", |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["version"] == json!(version)
        });
        message["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn shutdown(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "nixops4-lsp exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "nixops4-lsp did not exit");
            std::thread::yield_now();
        }
    }
}

const URI: &str = "file:///work/flake.nix";

/// The UTF-16 position of the `$0` marker, and the text without it.
fn marked(text: &str) -> (String, Value) {
    let offset = text.find("$0").expect("a $0 marker");
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let column: usize = before.rsplit('\n').next().unwrap().encode_utf16().count();
    (
        text.replacen("$0", "", 1),
        json!({"line": line, "character": column}),
    )
}

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
    let mut client = LspClient::start();
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
fn completes_types_resources_and_outputs() {
    let mut client = LspClient::start();
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
    let mut client = LspClient::start();
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
