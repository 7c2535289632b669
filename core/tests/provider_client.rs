//! The provider client against real provider programs: the local provider (our SDK), a
//! provider that speaks only upstream's v0 (a Python program), and programs that crash,
//! print garbage or hang.

use std::time::Duration;

use nixops4_core::provider_client::{Dialect, ProviderCommand, ProviderError, ProviderProcess};
use nixops4_provider_protocol::*;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

fn properties(value: serde_json::Value) -> Properties {
    value.as_object().expect("an object").clone()
}

fn create(resource_type: &str, inputs: serde_json::Value) -> Request {
    Request::CreateResourceRequest(CreateResourceRequest {
        resource_type: resource_type.into(),
        input_properties: properties(inputs),
        is_stateful: false,
    })
}

fn local(dir: &std::path::Path) -> ProviderCommand {
    ProviderCommand::new(nixops4_tests::binary("nixops4-resources-local")).in_directory(dir)
}

fn shell(script: &str) -> ProviderCommand {
    let mut command = ProviderCommand::new("sh");
    command.args = vec!["-c".into(), script.into()];
    command
}

#[tokio::test]
async fn local_provider_handshakes_and_serves_many_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut provider = ProviderProcess::start(&local(dir.path()), DEADLINE)
        .await
        .unwrap();
    let Dialect::Extended(handshake) = provider.dialect() else {
        panic!("the local provider speaks the extended protocol");
    };
    assert_eq!(handshake.provider.name, "nixops4-resources-local");

    let Response::DescribeResponse(describe) = provider
        .request(&Request::DescribeRequest(DescribeRequest {}))
        .await
        .unwrap()
    else {
        unreachable!()
    };
    assert!(describe.resource_types.contains_key("file"));

    for n in 0..20 {
        let response = provider
            .request(&create(
                "file",
                json!({"name": format!("f{n}"), "contents": "x"}),
            ))
            .await
            .unwrap();
        assert!(matches!(response, Response::CreateResourceResponse(_)));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 20);
    assert!(provider.close().await.unwrap().success());
}

#[tokio::test]
async fn provider_errors_keep_kind_and_input_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut provider = ProviderProcess::start(&local(dir.path()), DEADLINE)
        .await
        .unwrap();
    let error = provider
        .request(&create("file", json!({"name": "x", "contents": 1})))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::InvalidInput));
    let message = error.to_string();
    assert!(message.ends_with("(at input contents)"), "{message}");
    assert!(
        message.contains("nixops4-resources-local"),
        "names the provider: {message}"
    );
}

#[tokio::test]
async fn upstream_v0_provider_works_for_create_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let script = nixops4_tests::repository_root().join("tests/providers/upstream_v0_provider.py");
    let mut provider = ProviderProcess::start(
        &ProviderCommand::new(script).in_directory(dir.path()),
        DEADLINE,
    )
    .await
    .unwrap();
    assert_eq!(provider.dialect(), &Dialect::UpstreamV0);

    let response = provider
        .request(&create("greeting", json!({"name": "world"})))
        .await
        .unwrap();
    assert_eq!(
        response,
        Response::CreateResourceResponse(CreateResourceResponse {
            output_properties: properties(json!({"text": "Hello, world!"}))
        })
    );
    let update = Request::UpdateResourceRequest(UpdateResourceRequest {
        resource: ExtantResource {
            resource_type: "greeting".into(),
            input_properties: properties(json!({"name": "world"})),
            output_properties: Some(properties(json!({"text": "Hello, world!"}))),
        },
        input_properties: properties(json!({"name": "you"})),
    });
    assert_eq!(
        provider.request(&update).await.unwrap(),
        Response::UpdateResourceResponse(UpdateResourceResponse {
            output_properties: properties(json!({"text": "Hello, you!"}))
        })
    );
    // As upstream's local provider: a file (a resource without state there) is never
    // updated, only created afresh.
    let update_file = Request::UpdateResourceRequest(UpdateResourceRequest {
        resource: ExtantResource {
            resource_type: "file".into(),
            input_properties: properties(json!({"name": "a", "contents": "old"})),
            output_properties: Some(Properties::new()),
        },
        input_properties: properties(json!({"name": "a", "contents": "new"})),
    });
    let refused = provider
        .request(&update_file)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("update called on stateless file resource"),
        "{refused}"
    );

    // Our additions are refused before anything is sent, with a clear reason.
    let error = provider
        .request(&Request::DescribeRequest(DescribeRequest {}))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Unsupported { .. }));
    assert!(
        error
            .to_string()
            .contains("upstream's protocol v0, which has no describeRequest"),
        "{error}"
    );
    // And the process is still serving.
    assert!(
        provider
            .request(&create("greeting", json!({"name": "again"})))
            .await
            .is_ok()
    );
    assert!(provider.close().await.unwrap().success());
}

#[tokio::test]
async fn a_provider_that_crashes_is_reported_with_its_stderr() {
    let command = shell("read line; echo 'out of cheese' >&2; exit 3");
    // The handshake line is read and the program dies: no handshake, so it is treated as
    // upstream v0 and restarted; the create then meets the same crash.
    let mut provider = ProviderProcess::start(&command, DEADLINE).await.unwrap();
    let error = provider
        .request(&create("file", json!({})))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ProviderError::Exited { .. }), "{message}");
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.contains("out of cheese"), "{message}");
}

#[tokio::test]
async fn a_provider_that_prints_garbage_is_reported() {
    let mut provider = ProviderProcess::start(
        &shell("while read line; do echo 'Hello from a debug print'; done"),
        DEADLINE,
    )
    .await
    .unwrap();
    let error = provider
        .request(&create("file", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Garbage { .. }), "{error}");
    assert!(
        error.to_string().contains("Hello from a debug print"),
        "{error}"
    );
}

#[tokio::test]
async fn a_provider_that_answers_the_wrong_message_is_reported() {
    let reply = r#"{"destroyResourceResponse":{}}"#;
    let mut provider = ProviderProcess::start(
        &shell(&format!("while read line; do echo '{reply}'; done")),
        DEADLINE,
    )
    .await
    .unwrap();
    let error = provider
        .request(&create("file", json!({})))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(
            "answered destroyResourceResponse to a request that expects createResourceResponse"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_provider_that_hangs_is_stopped_at_the_deadline() {
    let started = std::time::Instant::now();
    let error = match ProviderProcess::start(&shell("sleep 600"), Duration::from_millis(300)).await
    {
        Err(error) => error,
        Ok(_) => panic!("a provider that never answers cannot complete a handshake"),
    };
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the deadline holds"
    );
}

#[tokio::test]
async fn a_missing_program_is_reported() {
    let error =
        match ProviderProcess::start(&ProviderCommand::new("/no/such/provider"), DEADLINE).await {
            Err(error) => error,
            Ok(_) => panic!("cannot start what does not exist"),
        };
    assert!(
        error
            .to_string()
            .starts_with("cannot start provider /no/such/provider"),
        "{error}"
    );
}
