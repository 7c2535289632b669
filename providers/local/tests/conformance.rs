//! Conformance tests: the real `nixops4-resources-local` binary over stdio, every request
//! type, every resource type, several requests per process, and bad input of every kind.
//! Each test runs in its own temporary directory, which is the provider's working
//! directory, so relative `name`s land there.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// How long a single response may take before the test fails instead of hanging.
const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

struct Provider {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Provider {
    fn start(dir: &Path) -> Provider {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nixops4-resources-local"))
            .current_dir(dir)
            .env("NIXOPS4_PROVIDER_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the provider");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Provider {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// Starts a provider and completes the handshake, as NixOps4 does.
    fn started(dir: &Path) -> Provider {
        let mut provider = Provider::start(dir);
        let answer = provider
            .request(json!({"handshakeRequest": {"protocolVersions": [0], "client": "test"}}));
        assert_eq!(
            answer["handshakeResponse"]["protocolVersion"], 0,
            "{answer}"
        );
        provider
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    fn answer(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(ANSWER_DEADLINE)
            .expect("the provider answers within the deadline");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("response is not JSON ({e}): {line}"))
    }

    fn send_line(&mut self, line: &str) -> Value {
        self.write_raw(format!("{line}\n").as_bytes());
        self.answer()
    }

    fn request(&mut self, message: Value) -> Value {
        self.send_line(&message.to_string())
    }

    /// Closes stdin and waits for the process to end.
    fn finish(mut self) -> ExitStatus {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(
            self.lines.try_recv().is_err(),
            "no output may follow the last answer"
        );
        status
    }
}

fn ok<'a>(answer: &'a Value, key: &str) -> &'a Value {
    answer
        .get(key)
        .unwrap_or_else(|| panic!("expected {key}, got {answer}"))
}

fn error(answer: &Value) -> &Value {
    ok(answer, "errorResponse")
}

fn create(resource_type: &str, inputs: Value, stateful: bool) -> Value {
    json!({"createResourceRequest": {"type": resource_type, "inputProperties": inputs, "isStateful": stateful}})
}

fn extant(resource_type: &str, inputs: Value, outputs: Option<Value>) -> Value {
    let mut resource = json!({"type": resource_type, "inputProperties": inputs});
    if let Some(outputs) = outputs {
        resource["outputProperties"] = outputs;
    }
    resource
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn handshake_and_describe() {
    let dir = temp();
    let mut p = Provider::start(dir.path());
    let answer =
        p.request(json!({"handshakeRequest": {"protocolVersions": [3, 0], "client": "test"}}));
    let handshake = ok(&answer, "handshakeResponse");
    assert_eq!(handshake["provider"]["name"], "nixops4-resources-local");
    assert_eq!(
        handshake["capabilities"],
        json!(["describe", "read", "destroy", "operation"])
    );

    let answer = p.request(json!({"describeRequest": {}}));
    let types = &ok(&answer, "describeResponse")["resourceTypes"];
    let names: Vec<&String> = types.as_object().unwrap().keys().collect();
    assert_eq!(names, ["exec", "file", "memo", "state_file"]);
    let file = &types["file"];
    assert_eq!(file["inputs"]["required"], json!(["name", "contents"]));
    assert!(file["inputs"]["properties"]["contents"]["description"].is_string());
    assert_eq!(file["replaceOnChange"], json!(["name"]));
    assert!(file["operations"]["backup"]["description"].is_string());
    assert_eq!(file["outputs"]["required"], json!(["path", "sha256"]));
    assert_eq!(types["memo"]["requiresState"], true);
    assert!(types["exec"]["operations"]["rerun"].is_object());
    assert!(p.finish().success());
}

#[test]
fn handshake_with_no_common_version_is_refused() {
    let dir = temp();
    let mut p = Provider::start(dir.path());
    let answer =
        p.request(json!({"handshakeRequest": {"protocolVersions": [7], "client": "test"}}));
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("speaks protocol version 0"),
        "{answer}"
    );
    assert!(p.finish().success());
}

#[test]
fn file_lifecycle_in_one_process() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    let inputs = json!({"name": "sub/hello.txt", "contents": "Hello\n", "mode": "0600"});
    let answer = p.request(create("file", inputs.clone(), true));
    let outputs = ok(&answer, "createResourceResponse")["outputProperties"].clone();
    let path = dir.path().join("sub/hello.txt");
    assert_eq!(outputs["path"], path.to_str().unwrap());
    assert_eq!(
        outputs["sha256"],
        "66a045b452102c59d840ec097d59d9467e13a3f34f6494e539ffd32c1bb35f18"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "Hello\n");
    assert_eq!(mode_of(&path), 0o600);

    let answer = p.request(json!({"readResourceRequest": {"resource": extant("file", inputs.clone(), Some(outputs.clone()))}}));
    assert_eq!(
        ok(&answer, "readResourceResponse"),
        &json!({"status": "present", "outputProperties": outputs})
    );

    // Update: new contents and mode, same file.
    let new_inputs = json!({"name": "sub/hello.txt", "contents": "Hello again\n", "mode": "644"});
    let answer = p.request(json!({"updateResourceRequest": {
        "resource": extant("file", inputs.clone(), Some(outputs.clone())), "inputProperties": new_inputs}}));
    let updated = ok(&answer, "updateResourceResponse")["outputProperties"].clone();
    assert_ne!(updated["sha256"], outputs["sha256"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "Hello again\n");
    assert_eq!(mode_of(&path), 0o644);

    // Drift: the read reports what is on disk now.
    std::fs::write(&path, "changed by hand").unwrap();
    let answer = p.request(json!({"readResourceRequest": {"resource": extant("file", new_inputs.clone(), Some(updated.clone()))}}));
    let read = &ok(&answer, "readResourceResponse")["outputProperties"];
    assert_ne!(read["sha256"], updated["sha256"]);

    // Operation: backup next to the file.
    let answer = p.request(json!({"operationRequest": {"resource": extant("file", new_inputs.clone(), Some(updated.clone())),
        "operation": "backup", "arguments": {}, "isStateful": true}}));
    let backup = ok(&answer, "operationResponse")["result"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        backup.starts_with(path.to_str().unwrap()) && backup.contains(".backup-"),
        "{backup}"
    );
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), "changed by hand");
    let answer = p.request(
        json!({"operationRequest": {"resource": extant("file", new_inputs.clone(), None),
        "operation": "backup", "isStateful": true}}),
    );
    let second = ok(&answer, "operationResponse")["result"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        second, backup,
        "a second backup in the same second gets its own name"
    );

    // A changed name through update moves the file.
    let moved_inputs = json!({"name": "moved.txt", "contents": "Moved\n"});
    let answer = p.request(json!({"updateResourceRequest": {
        "resource": extant("file", new_inputs.clone(), Some(updated)), "inputProperties": moved_inputs}}));
    ok(&answer, "updateResourceResponse");
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("moved.txt")).unwrap(),
        "Moved\n"
    );

    // Delete, then delete again: both succeed; then the read says gone.
    for _ in 0..2 {
        let answer = p.request(json!({"destroyResourceRequest": {"resource": extant("file", moved_inputs.clone(), None)}}));
        assert_eq!(ok(&answer, "destroyResourceResponse"), &json!({}));
    }
    assert!(!dir.path().join("moved.txt").exists());
    let answer =
        p.request(json!({"readResourceRequest": {"resource": extant("file", moved_inputs, None)}}));
    assert_eq!(
        ok(&answer, "readResourceResponse"),
        &json!({"status": "gone"})
    );
    assert!(p.finish().success());
    // No temporary files are left behind.
    assert!(
        entries(&dir.path().join("sub"))
            .iter()
            .all(|n| !n.ends_with(".tmp"))
    );
}

#[test]
fn exec_runs_commands_and_reports_failures() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    let inputs = json!({"executable": "sh", "args": ["-c", "read x; echo \"$x $GREETING $0\"", "arg0"],
        "stdin": "hello", "env": {"GREETING": "world"}});
    let answer = p.request(create("exec", inputs.clone(), false));
    assert_eq!(
        ok(&answer, "createResourceResponse")["outputProperties"],
        json!({"stdout": "hello world arg0\n", "exit_status": 0})
    );

    let failing = json!({"executable": "sh", "args": ["-c", "echo partial; for i in $(seq 1 40); do echo problem $i >&2; done; exit 3"]});
    let answer = p.request(create("exec", failing, false));
    let message = error(&answer)["message"].as_str().unwrap();
    assert!(message.contains("exit status 3"), "{message}");
    assert!(
        message.contains("problem 40") && !message.contains("problem 1\n"),
        "only the tail: {message}"
    );

    let allowed = json!({"executable": "sh", "args": ["-c", "echo no match; exit 1"], "success_exit_codes": [0, 1]});
    let answer = p.request(create("exec", allowed, false));
    assert_eq!(
        ok(&answer, "createResourceResponse")["outputProperties"]["exit_status"],
        1
    );

    let answer = p.request(create(
        "exec",
        json!({"executable": "/no/such/program"}),
        false,
    ));
    assert_eq!(error(&answer)["inputPath"], json!(["executable"]));
    assert_eq!(error(&answer)["kind"], "invalid-input");

    // `once` needs state, keeps its first result on update, and `rerun` runs it anyway.
    let counter = dir.path().join("count");
    let script = format!("echo x >> {0}; wc -l < {0}", counter.display());
    let once = json!({"executable": "sh", "args": ["-c", script], "once": true});
    let answer = p.request(create("exec", once.clone(), false));
    assert_eq!(error(&answer)["inputPath"], json!(["once"]), "{answer}");
    let answer = p.request(create("exec", once.clone(), true));
    let first = ok(&answer, "createResourceResponse")["outputProperties"].clone();
    assert_eq!(first["stdout"], "1\n");
    let answer = p.request(json!({"updateResourceRequest": {"resource": extant("exec", once.clone(), Some(first.clone())), "inputProperties": once.clone()}}));
    assert_eq!(
        ok(&answer, "updateResourceResponse")["outputProperties"],
        first
    );
    let answer = p.request(json!({"operationRequest": {"resource": extant("exec", once.clone(), Some(first)), "operation": "rerun", "isStateful": true}}));
    let rerun = ok(&answer, "operationResponse");
    assert_eq!(rerun["outputProperties"]["stdout"], "2\n");
    assert_eq!(rerun["result"]["stdout"], "2\n");

    let answer =
        p.request(json!({"destroyResourceRequest": {"resource": extant("exec", once, None)}}));
    ok(&answer, "destroyResourceResponse");
    assert!(p.finish().success());
}

#[test]
fn memo_keeps_its_first_value_and_needs_state() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    let answer = p.request(create("memo", json!({"initialize_with": {"v": 1}}), false));
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("require state"),
        "{answer}"
    );
    let answer = p.request(create("memo", json!({"initialize_with": {"v": 1}}), true));
    let outputs = ok(&answer, "createResourceResponse")["outputProperties"].clone();
    assert_eq!(outputs, json!({"value": {"v": 1}}));
    let answer = p.request(json!({"updateResourceRequest": {
        "resource": extant("memo", json!({"initialize_with": {"v": 1}}), Some(outputs.clone())),
        "inputProperties": {"initialize_with": {"v": 2}}}}));
    assert_eq!(
        ok(&answer, "updateResourceResponse")["outputProperties"],
        outputs
    );
    let answer = p.request(json!({"readResourceRequest": {"resource": extant("memo", json!({"initialize_with": 2}), Some(outputs.clone()))}}));
    assert_eq!(
        ok(&answer, "readResourceResponse")["outputProperties"],
        outputs
    );
    assert!(p.finish().success());
}

fn state_resource(name: &str) -> Value {
    extant("state_file", json!({"name": name}), Some(json!({})))
}

fn state_event(name: &str, event: &str, patch: Value) -> Value {
    json!({"stateResourceEvent": {"resource": state_resource(name), "event": event, "nixopsVersion": "0.1.0", "patch": patch}})
}

fn read_state(p: &mut Provider, name: &str) -> Value {
    p.request(json!({"stateResourceReadRequest": {"resource": state_resource(name)}}))
}

#[test]
fn state_file_records_and_replays_events() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    ok(
        &p.request(create("state_file", json!({"name": "s.jsonl"}), false)),
        "createResourceResponse",
    );
    let answer = p.request(state_event(
        "s.jsonl",
        "create",
        json!([{"op": "add", "path": "/resources/a",
        "value": {"type": "file", "input_properties": {"name": "a"}, "output_properties": {}}}]),
    ));
    assert_eq!(ok(&answer, "stateResourceEventResponse"), &json!({}));
    let answer = p.request(state_event(
        "s.jsonl",
        "update",
        json!([{"op": "replace", "path": "/resources/a/input_properties/name", "value": "b"}]),
    ));
    ok(&answer, "stateResourceEventResponse");

    // A patch that does not apply is refused and nothing is written.
    let before = std::fs::read(dir.path().join("s.jsonl")).unwrap();
    let answer = p.request(state_event(
        "s.jsonl",
        "destroy",
        json!([{"op": "remove", "path": "/resources/nope"}]),
    ));
    assert_eq!(error(&answer)["kind"], "invalid-input");
    assert_eq!(std::fs::read(dir.path().join("s.jsonl")).unwrap(), before);

    let answer = read_state(&mut p, "s.jsonl");
    let state = &ok(&answer, "stateResourceReadResponse")["state"];
    assert_eq!(state["_type"], "nixopsState");
    assert_eq!(state["resources"]["a"]["input_properties"]["name"], "b");

    // One event per line, indices counting up, and what produced each.
    let text = std::fs::read_to_string(dir.path().join("s.jsonl")).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let indices: Vec<u64> = events
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [0, 1, 2]);
    assert_eq!(events[2]["meta"]["event"], "update");

    // A fresh process (a new session) sees the same state; re-creating keeps the file.
    let mut second = Provider::started(dir.path());
    ok(
        &second.request(create("state_file", json!({"name": "s.jsonl"}), false)),
        "createResourceResponse",
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.jsonl")).unwrap(),
        text
    );
    assert_eq!(
        ok(
            &read_state(&mut second, "s.jsonl"),
            "stateResourceReadResponse"
        )["state"],
        *state
    );

    // Deleting a state file that still records resources is refused.
    let answer =
        second.request(json!({"destroyResourceRequest": {"resource": state_resource("s.jsonl")}}));
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("still records 1 resource"),
        "{answer}"
    );
    ok(
        &second.request(state_event(
            "s.jsonl",
            "destroy",
            json!([{"op": "remove", "path": "/resources/a"}]),
        )),
        "stateResourceEventResponse",
    );
    // The first process notices the foreign write and replays before its next event.
    ok(
        &p.request(state_event(
            "s.jsonl",
            "create",
            json!([{"op": "add", "path": "/resources/c", "value": {}}]),
        )),
        "stateResourceEventResponse",
    );
    let answer = read_state(&mut second, "s.jsonl");
    assert_eq!(
        ok(&answer, "stateResourceReadResponse")["state"]["resources"],
        json!({"c": {}})
    );
    assert!(p.finish().success());
    assert!(second.finish().success());
}

#[test]
fn state_file_refuses_torn_and_corrupt_files_with_their_line() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    ok(
        &p.request(create("state_file", json!({"name": "s.jsonl"}), false)),
        "createResourceResponse",
    );
    ok(
        &p.request(state_event(
            "s.jsonl",
            "create",
            json!([{"op": "add", "path": "/resources/a", "value": {}}]),
        )),
        "stateResourceEventResponse",
    );
    let path = dir.path().join("s.jsonl");
    let good = std::fs::read_to_string(&path).unwrap();

    // A crash in the middle of an append leaves a torn last line.
    std::fs::write(
        &path,
        format!("{good}{{\"index\":2,\"meta\":{{\"time\":\"t\"}},\"pat"),
    )
    .unwrap();
    let answer = read_state(&mut p, "s.jsonl");
    let message = error(&answer)["message"].as_str().unwrap();
    assert!(message.contains("line 3 is incomplete"), "{message}");
    // ... and nothing is appended after it.
    let answer = p.request(state_event(
        "s.jsonl",
        "create",
        json!([{"op": "add", "path": "/resources/b", "value": {}}]),
    ));
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("line 3 is incomplete")
    );
    let answer = p.request(create("state_file", json!({"name": "s.jsonl"}), false));
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("line 3 is incomplete")
    );

    std::fs::write(&path, format!("{good}not json at all\n")).unwrap();
    let answer = read_state(&mut p, "s.jsonl");
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("corrupt at line 3"),
        "{answer}"
    );

    let answer = read_state(&mut p, "missing.jsonl");
    assert_eq!(error(&answer)["kind"], "not-found");
    assert!(p.finish().success());
}

#[test]
fn state_file_reads_upstream_pretty_printed_logs() {
    let dir = temp();
    std::fs::write(
        dir.path().join("upstream.json"),
        r#"{
  "index": 0,
  "meta": {
    "time": "2025-04-15T11:48:06.434450914+00:00"
  },
  "patch": [
    { "op": "add", "path": "", "value": { "_type": "nixopsState", "deployments": {}, "resources": {} } }
  ]
}
{
  "index": 0,
  "meta": { "time": "2025-04-15T11:48:07+00:00", "event": "create" },
  "patch": [ { "op": "add", "path": "/deployments/d", "value": { "resources": { "m": { "type": "memo",
    "input_properties": { "initialize_with": 1 }, "output_properties": { "value": 1 } } }, "deployments": {} } } ]
}
"#,
    )
    .unwrap();
    let mut p = Provider::started(dir.path());
    let answer = read_state(&mut p, "upstream.json");
    let state = &ok(&answer, "stateResourceReadResponse")["state"];
    assert_eq!(
        state["deployments"]["d"]["resources"]["m"]["output_properties"]["value"],
        1
    );
    ok(
        &p.request(state_event(
            "upstream.json",
            "update",
            json!([{"op": "add", "path": "/resources/x", "value": 1}]),
        )),
        "stateResourceEventResponse",
    );
    let mut again = Provider::started(dir.path());
    let answer = read_state(&mut again, "upstream.json");
    assert_eq!(
        ok(&answer, "stateResourceReadResponse")["state"]["resources"]["x"],
        1
    );
    assert!(p.finish().success());
    assert!(again.finish().success());
}

#[test]
fn concurrent_sessions_append_without_losing_events() {
    let dir = temp();
    let mut setup = Provider::started(dir.path());
    ok(
        &setup.request(create("state_file", json!({"name": "s.jsonl"}), false)),
        "createResourceResponse",
    );
    assert!(setup.finish().success());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let dir: PathBuf = dir.path().to_owned();
            std::thread::spawn(move || {
                let mut p = Provider::started(&dir);
                for i in 0..25 {
                    let answer = p.request(state_event(
                        "s.jsonl",
                        "create",
                        json!([{"op": "add", "path": format!("/resources/w{w}_{i}"), "value": i}]),
                    ));
                    ok(&answer, "stateResourceEventResponse");
                }
                assert!(p.finish().success());
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let mut p = Provider::started(dir.path());
    let answer = read_state(&mut p, "s.jsonl");
    assert_eq!(
        ok(&answer, "stateResourceReadResponse")["state"]["resources"]
            .as_object()
            .unwrap()
            .len(),
        100
    );
    assert!(p.finish().success());
}

#[test]
fn concurrent_writes_of_one_file_never_mix() {
    let dir = temp();
    let contents: Vec<String> = (0..4).map(|w| format!("{w}").repeat(200_000)).collect();
    let writers: Vec<_> = contents
        .iter()
        .cloned()
        .map(|text| {
            let dir: PathBuf = dir.path().to_owned();
            std::thread::spawn(move || {
                let mut p = Provider::started(&dir);
                for _ in 0..10 {
                    let answer = p.request(create(
                        "file",
                        json!({"name": "shared.txt", "contents": text}),
                        false,
                    ));
                    ok(&answer, "createResourceResponse");
                }
                assert!(p.finish().success());
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let result = std::fs::read_to_string(dir.path().join("shared.txt")).unwrap();
    assert!(
        contents.contains(&result),
        "the file is one writer's whole contents"
    );
    assert_eq!(
        entries(dir.path()),
        ["shared.txt"],
        "no temporary files left"
    );
}

/// A writer killed between writing its temporary file and renaming it leaves the file
/// behind; the next write into that directory removes it, but never the temporary file of
/// a writer that is still running.
#[test]
fn stale_temporary_files_of_killed_writers_are_removed() {
    let dir = temp();
    let mut exited = Command::new("true").spawn().unwrap();
    let dead = exited.id();
    exited.wait().unwrap();
    let alive = std::process::id();
    let stale = format!(".notes.txt.nixops4-{dead}-0.tmp");
    let stale_of_another_file = format!(".other.txt.nixops4-{dead}-3.tmp");
    let in_progress = format!(".notes.txt.nixops4-{alive}-0.tmp");
    let not_ours = ".notes.txt.tmp";
    for name in [&stale, &stale_of_another_file, &in_progress, not_ours] {
        std::fs::write(dir.path().join(name), "half written").unwrap();
    }
    let mut p = Provider::started(dir.path());
    let answer = p.request(create(
        "file",
        json!({"name": "notes.txt", "contents": "whole"}),
        false,
    ));
    ok(&answer, "createResourceResponse");
    assert!(p.finish().success());
    assert_eq!(
        entries(dir.path()),
        [in_progress.as_str(), not_ours, "notes.txt"],
    );
}

#[test]
fn bad_input_gets_structured_errors_and_the_provider_keeps_serving() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    let cases: Vec<(&str, String, &str, Option<Value>, &str)> = vec![
        ("malformed JSON", "{\"createResourceRequest\": {".into(), "invalid-request", None, "malformed JSON"),
        ("not an object", "[1, 2]".into(), "invalid-request", None, "exactly one key"),
        ("two message keys", r#"{"describeRequest":{},"handshakeRequest":{}}"#.into(), "invalid-request", None, "exactly one key"),
        ("unknown request", r#"{"frobnicateRequest":{}}"#.into(), "unsupported", None, "unknown request `frobnicateRequest`"),
        ("missing field", r#"{"createResourceRequest":{"type":"file","inputProperties":{}}}"#.into(), "invalid-request", None, "isStateful"),
        ("unknown type", create("flie", json!({}), false).to_string(), "invalid-input", None, "unknown resource type `flie` for provider nixops4-resources-local (did you mean `file`?)"),
        ("unknown input", create("file", json!({"name": "x", "contents": "", "contnets": ""}), false).to_string(), "invalid-input", Some(json!(["contnets"])), "unknown input `contnets` (did you mean `contents`?)"),
        ("wrong JSON type", create("file", json!({"name": "x", "contents": 42}), false).to_string(), "invalid-input", Some(json!(["contents"])), "`contents` has the wrong type"),
        ("wrong nested type", create("exec", json!({"executable": "true", "args": ["a", 1]}), false).to_string(), "invalid-input", Some(json!(["args", 1])), "`args[1]` has the wrong type"),
        ("missing required", create("file", json!({"name": "x"}), false).to_string(), "invalid-input", Some(json!(["contents"])), "missing required input `contents`"),
        ("bad mode", create("file", json!({"name": "x", "contents": "", "mode": "rwx"}), false).to_string(), "invalid-input", Some(json!(["mode"])), "`mode` is invalid"),
        ("unknown operation", json!({"operationRequest": {"resource": extant("file", json!({"name": "x", "contents": ""}), None), "operation": "bakup", "isStateful": true}}).to_string(), "invalid-input", None, "unknown operation `bakup` for resource type `file` (did you mean `backup`?)"),
        ("bad operation argument", json!({"operationRequest": {"resource": extant("file", json!({"name": "x", "contents": ""}), None), "operation": "backup", "arguments": {"force": true}, "isStateful": true}}).to_string(), "invalid-input", Some(json!(["force"])), "unknown argument `force`"),
        ("operation on a type without any", json!({"operationRequest": {"resource": extant("memo", json!({"initialize_with": 1}), None), "operation": "x", "isStateful": true}}).to_string(), "invalid-input", None, "it has no operations"),
        ("state request to a plain resource", json!({"stateResourceReadRequest": {"resource": extant("file", json!({"name": "x", "contents": ""}), None)}}).to_string(), "unsupported", None, "does not store state"),
        ("recorded inputs that do not fit", json!({"destroyResourceRequest": {"resource": extant("file", json!({"name": 3}), None)}}).to_string(), "invalid-request", None, "recorded inputs"),
        ("unknown value inside a known request", json!({"stateResourceEvent": {"resource": state_resource("s"), "event": "e", "nixopsVersion": "0", "patch": [{"op": "frob", "path": ""}]}}).to_string(), "invalid-request", None, "malformed `stateResourceEvent`"),
        ("unknown field in a message", r#"{"describeRequest":{"verbose":true}}"#.into(), "invalid-request", None, "unknown field `verbose`"),
        ("file in place of a directory", create("file", json!({"name": "blocker/x.txt", "contents": "a"}), false).to_string(), "internal", None, "creating directory"),
    ];
    std::fs::write(dir.path().join("blocker"), "a file, not a directory").unwrap();
    for (what, line, kind, input_path, message) in cases {
        let answer = p.send_line(&line);
        let e = error(&answer);
        assert_eq!(e["kind"], kind, "{what}: {answer}");
        assert_eq!(e.get("inputPath").cloned(), input_path, "{what}: {answer}");
        assert!(
            e["message"].as_str().unwrap().contains(message),
            "{what}: {answer}"
        );
    }
    // Blank lines are skipped, and after all that the provider still works.
    p.write_raw(b"\n  \n");
    ok(
        &p.request(create(
            "file",
            json!({"name": "x", "contents": "fine"}),
            false,
        )),
        "createResourceResponse",
    );
    assert_eq!(
        entries(dir.path()),
        ["blocker", "x"],
        "no half-written files"
    );
    assert!(p.finish().success());
}

#[test]
fn errors_before_a_handshake_carry_only_a_message() {
    // Upstream's client knows only `message` and rejects unknown fields.
    let dir = temp();
    let mut p = Provider::start(dir.path());
    let answer = p.request(create("file", json!({"name": "x"}), false));
    assert_eq!(
        error(&answer)
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["message"]
    );
    // An upstream client's single create works without a handshake.
    ok(
        &p.request(create("file", json!({"name": "x", "contents": "y"}), false)),
        "createResourceResponse",
    );
    assert!(p.finish().success());
}

#[test]
fn input_closed_in_the_middle_of_a_message() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    let line = create(
        "file",
        json!({"name": "half.txt", "contents": "never written"}),
        false,
    )
    .to_string();
    p.write_raw(&line.as_bytes()[..line.len() / 2]);
    drop(p.stdin.take());
    let answer = p.answer();
    assert!(
        error(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("input ended in the middle of a message"),
        "{answer}"
    );
    assert_eq!(error(&answer)["kind"], "invalid-request");
    assert!(
        !p.finish().success(),
        "a truncated session exits with failure"
    );
    assert!(entries(dir.path()).is_empty(), "nothing was written");
}

#[test]
fn a_complete_last_message_without_newline_is_served() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    p.write_raw(
        create("file", json!({"name": "a", "contents": "b"}), false)
            .to_string()
            .as_bytes(),
    );
    drop(p.stdin.take());
    ok(&p.answer(), "createResourceResponse");
    assert!(p.finish().success());
    assert_eq!(std::fs::read_to_string(dir.path().join("a")).unwrap(), "b");
}

#[test]
fn a_last_message_without_newline_that_fails_is_not_a_truncation() {
    let dir = temp();
    let mut p = Provider::started(dir.path());
    p.write_raw(
        create("file", json!({"name": "a"}), false)
            .to_string()
            .as_bytes(),
    );
    drop(p.stdin.take());
    error(&p.answer());
    assert!(p.finish().success());
}

#[test]
fn existing_files_are_found_by_their_recorded_path() {
    // A delete from another working directory removes the recorded file, not a namesake.
    let first = temp();
    let elsewhere = temp();
    let mut p = Provider::started(first.path());
    let inputs = json!({"name": "data.txt", "contents": "x"});
    let outputs = ok(
        &p.request(create("file", inputs.clone(), true)),
        "createResourceResponse",
    )["outputProperties"]
        .clone();
    assert!(p.finish().success());
    std::fs::write(elsewhere.path().join("data.txt"), "a namesake").unwrap();
    let mut p = Provider::started(elsewhere.path());
    ok(&p.request(json!({"destroyResourceRequest": {"resource": extant("file", inputs.clone(), Some(outputs))}})), "destroyResourceResponse");
    assert!(!first.path().join("data.txt").exists());
    assert!(elsewhere.path().join("data.txt").exists());
    // Outputs recorded by upstream's local provider (none) still allow a delete by name.
    ok(&p.request(json!({"destroyResourceRequest": {"resource": extant("file", inputs, Some(json!({})))}})), "destroyResourceResponse");
    assert!(!elsewhere.path().join("data.txt").exists());
    assert!(p.finish().success());
}

#[test]
fn child_processes_cannot_write_into_the_protocol_stream() {
    // The command's own stdout is captured; anything that reaches the provider's fd 1
    // (here: the command writing to the provider's fd 1 through /proc) must go to stderr.
    // `>>`, not `>`: reopening through /proc with truncation would truncate whatever file
    // stderr is, a CI log for instance.
    let dir = temp();
    let mut p = Provider::started(dir.path());
    let answer = p.request(create(
        "exec",
        json!({"executable": "sh", "args": ["-c", "echo captured; echo stray >> /proc/$PPID/fd/1"]}),
        false,
    ));
    assert_eq!(
        ok(&answer, "createResourceResponse")["outputProperties"]["stdout"],
        "captured\n"
    );
    // The next answer is the next response, not "stray".
    ok(
        &p.request(json!({"describeRequest": {}})),
        "describeResponse",
    );
    assert!(p.finish().success());
}
