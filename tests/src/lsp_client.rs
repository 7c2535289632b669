//! A language client for tests and benchmarks: speaks LSP to a real server program over
//! its stdio, with a deadline on every wait.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any wait may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A language client over the server's stdio, reading messages on a thread.
pub struct LspClient {
    child: Child,
    stdin: ChildStdin,
    /// Each message with the moment it was read.
    messages: Receiver<(Instant, Value)>,
    next_id: i64,
    /// What the server answered to `initialize`.
    initialized: Value,
    /// Every message read so far, as the server sent it, for tests that check what a
    /// user could ever see.
    transcript: Vec<Value>,
}

impl LspClient {
    /// Starts `nixops4-lsp` with `arguments`, initialised with `root` as the workspace and
    /// `initialization_options`.
    pub fn start(
        arguments: &[&str],
        root: Option<&Path>,
        initialization_options: Value,
    ) -> LspClient {
        LspClient::start_program(
            &crate::binary("nixops4-lsp"),
            arguments,
            root,
            initialization_options,
            &[],
        )
    }

    /// Starts any language server program (a general Nix server, for comparison), with
    /// extra environment variables.
    pub fn start_program(
        program: &Path,
        arguments: &[&str],
        root: Option<&Path>,
        initialization_options: Value,
        environment: &[(&str, &str)],
    ) -> LspClient {
        let mut child = Command::new(program)
            .args(arguments)
            .envs(environment.iter().copied())
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
                let message = serde_json::from_slice(&body).expect("a JSON message");
                if sender.send((Instant::now(), message)).is_err() {
                    return;
                }
            }
        });
        let mut client = LspClient {
            child,
            stdin,
            messages,
            next_id: 1,
            initialized: Value::Null,
            transcript: Vec::new(),
        };
        let root_uri = root.map(|r| format!("file://{}", r.display()));
        let result = client.request(
            "initialize",
            json!({
                "capabilities": {
                    "window": {"showMessage": {}, "workDoneProgress": true},
                    "workspace": {"codeLens": {"refreshSupport": true}},
                },
                "processId": null,
                "rootUri": root_uri,
                "initializationOptions": initialization_options,
            }),
        );
        assert!(
            result["capabilities"]["completionProvider"].is_object(),
            "{result}"
        );
        client.notify("initialized", json!({}));
        client.initialized = result;
        client
    }

    /// The server's capabilities, as it answered `initialize`.
    pub fn capabilities(&self) -> &Value {
        &self.initialized["capabilities"]
    }

    pub fn send(&mut self, message: Value) {
        self.send_body(message.to_string().as_bytes());
    }

    /// Sends any bytes as a message's body, correctly framed.
    pub fn send_body(&mut self, body: &[u8]) {
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
        self.send_bytes(body);
    }

    /// Sends bytes as they are, framed or not.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Opens a Nix file as it is on disk (version 1).
    pub fn open_file(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path).expect("read the file to open");
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": file_uri(path), "languageId": "nix", "version": 1, "text": text}}),
        );
    }

    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The next message that `wanted` accepts; others (logs, other notifications) pass.
    pub fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_timed(what, wanted).1
    }

    /// Like [`LspClient::wait_for`], with the moment the message was read.
    pub fn wait_for_timed(
        &mut self,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
        self.try_wait_for_timed(wanted)
            .unwrap_or_else(|| panic!("no {what} within {DEADLINE:?}"))
    }

    /// Like [`LspClient::wait_for_timed`], `None` when the server stopped answering: no such
    /// message within the deadline, or its output ended (it exited).
    pub fn try_wait_for_timed(
        &mut self,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<(Instant, Value)> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, message) = self.messages.recv_timeout(left).ok()?;
            self.transcript.push(message.clone());
            if wanted(&message) {
                return Some((at, message));
            }
            // A request from the server that nobody waits for (configuration, registration):
            // answered empty, so that a server waiting for it goes on.
            if let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) {
                let result = if method == "workspace/configuration" {
                    json!(vec![
                        Value::Null;
                        message["params"]["items"]
                            .as_array()
                            .map_or(0, Vec::len)
                    ])
                } else {
                    Value::Null
                };
                self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
            }
        }
    }

    /// Every message read so far.
    pub fn transcript(&self) -> &[Value] {
        &self.transcript
    }

    /// Forgets the messages read so far: a benchmark that reads thousands of answers,
    /// some of 10 MB, would otherwise hold them all.
    pub fn forget_transcript(&mut self) {
        self.transcript.clear();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        let response = self.wait_for(method, |m| is_response(m, id));
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    /// The diagnostics published for a document's version.
    pub fn diagnostics(&mut self, version: i64) -> Vec<Value> {
        let message = self.wait_for("diagnostics", |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["version"] == json!(version)
        });
        message["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn shutdown(mut self) {
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

/// The `file://` URI of a path.
pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Whether a message answers our request `id` (the server numbers its own requests too).
pub fn is_response(message: &Value, id: i64) -> bool {
    message.get("method").is_none() && message["id"] == json!(id)
}

impl Drop for LspClient {
    /// A test that failed half-way leaves no server behind (it would hold the test's
    /// output open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The UTF-16 position of the `$0` marker, and the text without it.
pub fn marked(text: &str) -> (String, Value) {
    let offset = text.find("$0").expect("a $0 marker");
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let column: usize = before.rsplit('\n').next().unwrap().encode_utf16().count();
    (
        text.replacen("$0", "", 1),
        json!({"line": line, "character": column}),
    )
}
