//! The S3 provider's lease, spoken to over the provider protocol on a real Garage: a
//! holder that stops renewing (frozen with SIGSTOP, as a stuck machine would be) is taken
//! over once its lease expired, and when it wakes up it may no longer write the state.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nixops4_tests::garage::{BUCKET, Garage, REGION};
use serde_json::{Value, json};

const LEASE_SECONDS: u64 = 2;

struct Provider {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Provider {
    fn start(garage: &Garage) -> Provider {
        let mut child = Command::new(nixops4_tests::binary("nixops4-resources-s3"))
            .envs(garage.credentials())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the S3 provider");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        let mut provider = Provider {
            child,
            input,
            output,
        };
        let handshake = provider
            .request(json!({"handshakeRequest": {"protocolVersions": [0], "client": "test"}}));
        let capabilities = &handshake["handshakeResponse"]["capabilities"];
        assert!(
            capabilities
                .as_array()
                .unwrap()
                .contains(&json!("stateLock")),
            "{handshake}"
        );
        provider
    }

    fn request(&mut self, message: Value) -> Value {
        writeln!(self.input, "{message}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn resource(garage: &Garage) -> Value {
    json!({"type": "object", "inputProperties": {"endpoint": garage.endpoint(), "bucket": BUCKET, "prefix": "lease", "region": REGION, "lease_seconds": LEASE_SECONDS}, "outputProperties": {}})
}

fn lock(garage: &Garage, who: &str) -> Value {
    json!({"stateLockRequest": {"resource": resource(garage), "holder": {"user": who, "host": "test", "pid": 1, "since": "2026-12-03T09:00:00Z", "operation": "a test"}}})
}

fn event(garage: &Garage, name: &str) -> Value {
    json!({"stateResourceEvent": {"resource": resource(garage), "event": name, "nixopsVersion": "0", "patch": [{"op": "add", "path": format!("/resources/{name}"), "value": {"type": "t", "input_properties": {}, "output_properties": {}}}]}})
}

#[test]
fn a_frozen_holder_is_taken_over_and_may_not_write_after() {
    let garage = Garage::start();
    let mut first = Provider::start(&garage);
    assert_eq!(
        first.request(lock(&garage, "first")),
        json!({"stateLockResponse": {}})
    );
    assert_eq!(
        first.request(event(&garage, "a")),
        json!({"stateResourceEventResponse": {}})
    );

    let mut second = Provider::start(&garage);
    let refused = second.request(lock(&garage, "second"));
    assert_eq!(refused["errorResponse"]["kind"], "locked", "{refused}");
    let message = refused["errorResponse"]["message"].as_str().unwrap();
    assert!(
        message.contains("is locked by first@test (process 1, a test)"),
        "{message}"
    );

    // The first holder freezes; its lease expires and the second one takes over.
    first.signal("-STOP");
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECONDS * 4);
    loop {
        let answer = second.request(lock(&garage, "second"));
        if answer == json!({"stateLockResponse": {}}) {
            break;
        }
        assert!(Instant::now() < deadline, "no takeover: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
    first.signal("-CONT");
    let late = first.request(event(&garage, "late"));
    assert_eq!(late["errorResponse"]["kind"], "locked", "{late}");

    // The new holder writes on top of what the first one recorded, and only that.
    second.request(json!({"stateResourceReadRequest": {"resource": resource(&garage)}}));
    assert_eq!(
        second.request(event(&garage, "b")),
        json!({"stateResourceEventResponse": {}})
    );
    let read = second.request(json!({"stateResourceReadRequest": {"resource": resource(&garage)}}));
    let resources = &read["stateResourceReadResponse"]["state"]["resources"];
    let mut names: Vec<&String> = resources.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    let status = second.request(json!({"stateLockStatusRequest": {"resource": resource(&garage)}}));
    assert_eq!(
        status["stateLockStatusResponse"]["holders"][0]["user"], "second",
        "{status}"
    );
}
