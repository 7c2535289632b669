//! Keeps the Rust types, the checked-in JSON Schema and the example messages in step:
//! every example parses into our types, serialises back to the same JSON and validates;
//! every message the types can produce validates; the upstream v0 messages round-trip.

use std::path::{Path, PathBuf};

use nixops4_provider_protocol::*;
use serde_json::{Value, json};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(crate_dir().join("schema/provider-protocol-v0.json"))
        .expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::meta::validate(&schema).expect("schema is a valid JSON Schema");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, message: &Value, origin: &str) {
    let errors: Vec<String> = validator
        .iter_errors(message)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{origin}: does not match the schema:\n{}\n{message}",
        errors.join("\n")
    );
}

/// Parses a message as a request or a response and serialises it back.
fn round_trip(message: &Value) -> Result<Value, String> {
    let key = message
        .as_object()
        .and_then(|o| o.keys().next())
        .ok_or("not an object")?;
    if key.ends_with("Request") || key == "stateResourceEvent" {
        let request: Request =
            serde_json::from_value(message.clone()).map_err(|e| e.to_string())?;
        assert_eq!(request.name(), key);
        Ok(serde_json::to_value(&request).unwrap())
    } else {
        let response: Response =
            serde_json::from_value(message.clone()).map_err(|e| e.to_string())?;
        assert_eq!(response.name(), key);
        Ok(serde_json::to_value(&response).unwrap())
    }
}

fn files_in(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_round_trips_and_validates() {
    let validator = validator();
    let files = files_in(&crate_dir().join("examples"), "json");
    assert!(files.len() >= 20, "examples went missing: {files:?}");
    for file in files {
        let origin = file.display().to_string();
        let message: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert_valid(&validator, &message, &origin);
        let back = round_trip(&message).unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert_eq!(back, message, "{origin}: changed in a round trip");
    }
}

#[test]
fn every_message_name_has_an_example() {
    let names: Vec<String> = files_in(&crate_dir().join("examples"), "json")
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap();
            stem.split('-').next().unwrap().to_owned()
        })
        .collect();
    for message in produced_messages() {
        let key = message.as_object().unwrap().keys().next().unwrap().clone();
        assert!(names.contains(&key), "no example file for {key}");
    }
}

#[test]
fn upstream_v0_messages_round_trip() {
    let validator = validator();
    let files = files_in(&crate_dir().join("examples/upstream-v0"), "jsonl");
    assert!(files.len() >= 5);
    for file in files {
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let origin = format!("{}:{}", file.display(), n + 1);
            let message: Value = serde_json::from_str(line).unwrap();
            assert_valid(&validator, &message, &origin);
            let back = round_trip(&message).unwrap_or_else(|e| panic!("{origin}: {e}"));
            assert_eq!(back, message, "{origin}: changed in a round trip");
        }
    }
}

/// The example bodies that upstream publishes beside its schema, read from the shared
/// reference folder next to the repository when it is there (it is in CI).
#[test]
fn upstream_reference_bodies_round_trip() {
    let reference = crate_dir().join("../../../shared/reference/nixops4-upstream-v0");
    if !reference.exists() {
        eprintln!("skipped: no upstream reference at {}", reference.display());
        return;
    }
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(reference.join(name)).unwrap()).unwrap()
    };
    let body = read("CreateResourceRequest.json");
    let parsed: CreateResourceRequest = serde_json::from_value(body.clone()).unwrap();
    assert!(!parsed.is_stateful);
    assert_eq!(serde_json::to_value(&parsed).unwrap(), body);

    let body = read("CreateResourceResponse.json");
    let parsed: CreateResourceResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), body);
}

/// One message of every variant, as our types produce them.
fn produced_messages() -> Vec<Value> {
    let resource = ExtantResource {
        resource_type: "file".into(),
        input_properties: json!({"name": "a", "contents": "b"})
            .as_object()
            .unwrap()
            .clone(),
        output_properties: Some(json!({"path": "/a"}).as_object().unwrap().clone()),
    };
    let without_outputs = ExtantResource {
        output_properties: None,
        ..resource.clone()
    };
    let outputs = json!({"path": "/a"}).as_object().unwrap().clone();
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/resources/a", "value": {}},
        {"op": "replace", "path": "/resources/a", "value": 1},
        {"op": "remove", "path": "/resources/a"},
        {"op": "copy", "from": "/resources/a", "path": "/resources/b"},
        {"op": "move", "from": "/resources/a", "path": "/resources/b"},
        {"op": "test", "path": "/_type", "value": "nixopsState"}
    ]))
    .unwrap();
    let holder = LockHolder {
        user: "alice".into(),
        host: "laptop".into(),
        pid: 7,
        since: "2026-12-03T09:00:00Z".into(),
        operation: "nixops4 apply".into(),
    };
    let requests = vec![
        Request::HandshakeRequest(HandshakeRequest {
            protocol_versions: vec![0, 1],
            client: "test".into(),
        }),
        Request::DescribeRequest(DescribeRequest {}),
        Request::CreateResourceRequest(CreateResourceRequest {
            resource_type: "file".into(),
            input_properties: resource.input_properties.clone(),
            is_stateful: true,
        }),
        Request::ReadResourceRequest(ReadResourceRequest {
            resource: resource.clone(),
        }),
        Request::UpdateResourceRequest(UpdateResourceRequest {
            resource: resource.clone(),
            input_properties: resource.input_properties.clone(),
        }),
        Request::DestroyResourceRequest(DestroyResourceRequest {
            resource: without_outputs.clone(),
        }),
        Request::OperationRequest(OperationRequest {
            resource: resource.clone(),
            operation: "backup".into(),
            arguments: Default::default(),
            is_stateful: false,
        }),
        Request::StateResourceReadRequest(StateResourceReadRequest {
            resource: without_outputs.clone(),
        }),
        Request::StateResourceEvent(StateResourceEvent {
            resource: resource.clone(),
            event: "create".into(),
            nixops_version: "0.1.0".into(),
            patch,
        }),
        Request::StateLockRequest(StateLockRequest {
            resource: without_outputs.clone(),
            holder: holder.clone(),
        }),
        Request::StateLockStatusRequest(StateLockStatusRequest {
            resource: without_outputs.clone(),
        }),
        Request::StateUnlockRequest(StateUnlockRequest {
            resource: without_outputs.clone(),
            force: false,
        }),
    ];
    let provider = ProviderInfo {
        name: "p".into(),
        version: "1".into(),
    };
    let responses = vec![
        Response::HandshakeResponse(HandshakeResponse {
            protocol_version: 0,
            provider: provider.clone(),
            capabilities: vec![
                Capability::Describe,
                Capability::Read,
                Capability::Destroy,
                Capability::Operation,
                Capability::StateLock,
            ],
        }),
        Response::DescribeResponse(DescribeResponse {
            provider,
            description: "d".into(),
            resource_types: [(
                "file".to_owned(),
                ResourceTypeDescription {
                    description: "f".into(),
                    inputs: json!({"type": "object"}),
                    outputs: json!(true),
                    requires_state: false,
                    replace_on_change: vec!["name".into()],
                    secret_outputs: vec![],
                    operations: [(
                        "backup".to_owned(),
                        OperationDescription {
                            description: "b".into(),
                            arguments: json!({"type": "object"}),
                            destructive: false,
                        },
                    )]
                    .into(),
                },
            )]
            .into(),
        }),
        Response::CreateResourceResponse(CreateResourceResponse {
            output_properties: outputs.clone(),
        }),
        Response::ReadResourceResponse(ReadResourceResponse::Present {
            output_properties: outputs.clone(),
        }),
        Response::ReadResourceResponse(ReadResourceResponse::Gone {}),
        Response::UpdateResourceResponse(UpdateResourceResponse {
            output_properties: outputs.clone(),
        }),
        Response::DestroyResourceResponse(DestroyResourceResponse {}),
        Response::OperationResponse(OperationResponse {
            result: Value::Null,
            output_properties: Some(outputs.clone()),
        }),
        Response::OperationResponse(OperationResponse {
            result: json!([1, "two"]),
            output_properties: None,
        }),
        Response::StateResourceReadResponse(StateResourceReadResponse {
            state: json!({"_type": "nixopsState"}).as_object().unwrap().clone(),
        }),
        Response::StateResourceEventResponse(StateResourceEventResponse {}),
        Response::StateLockResponse(StateLockResponse {}),
        Response::StateLockStatusResponse(StateLockStatusResponse {
            holders: vec![holder.clone()],
        }),
        Response::StateUnlockResponse(StateUnlockResponse { released: vec![] }),
        Response::ErrorResponse(ErrorResponse {
            message: "locked by alice".into(),
            kind: Some(ErrorKind::Locked),
            input_path: None,
        }),
        Response::ErrorResponse(ErrorResponse {
            message: "m".into(),
            kind: Some(ErrorKind::InvalidInput),
            input_path: Some(InputPath::key("args").join(PathSegment::Index(3))),
        }),
        Response::ErrorResponse(ErrorResponse {
            message: "m".into(),
            kind: None,
            input_path: None,
        }),
    ];
    requests
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .chain(responses.iter().map(|r| serde_json::to_value(r).unwrap()))
        .collect()
}

#[test]
fn messages_our_types_produce_validate() {
    let validator = validator();
    for message in produced_messages() {
        assert_valid(&validator, &message, "produced by the Rust types");
        // And the line framing keeps them on one line.
        let line = to_line(&message);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
    }
}

#[test]
fn schema_and_types_reject_the_same_malformed_messages() {
    let validator = validator();
    let malformed = [
        json!({"createResourceRequest": {"type": "file", "inputProperties": {}}}),
        json!({"createResourceRequest": {"type": 1, "inputProperties": {}, "isStateful": true}}),
        json!({"frobnicateRequest": {}}),
        json!({"readResourceResponse": {"status": "maybe"}}),
        json!({"errorResponse": {"message": "m", "kind": "sad"}}),
        json!({"handshakeResponse": {"protocolVersion": 0, "provider": {"name": "x"}, "capabilities": []}}),
        json!("createResourceRequest"),
        json!({"describeRequest": {}, "handshakeRequest": {"protocolVersions": [0], "client": "c"}}),
        json!({"describeRequest": {"verbose": true}}),
        json!({"createResourceRequest": {"type": "f", "inputProperties": {}, "isStateful": true, "extra": 1}}),
        json!({"readResourceResponse": {"status": "gone", "outputProperties": {}}}),
        json!({"errorResponse": {"message": "m", "inputPath": ["a", -1]}}),
    ];
    for message in malformed {
        assert!(!validator.is_valid(&message), "schema accepted {message}");
        assert!(round_trip(&message).is_err(), "types accepted {message}");
    }
}
