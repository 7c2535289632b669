//! The evaluator against real Nix, with the fixture flakes in `tests/fixtures/eval/`.
//!
//! The Nix command comes from `NIXOPS4_TEST_NIX` (default `nix`), so CI runs the same
//! tests against Nix 2.8 and current Nix. The engine's part (creating resources) is
//! played by made-up outputs. Each test is one scenario on the same harness, which is why
//! they share a file rather than being split by size.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use nixops4_eval::client::{EvalClient, EvalOptions};
use nixops4_eval::protocol::*;
use nixops4_tests::{eval_fixture as fixture, nix_command};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

struct Harness {
    client: EvalClient,
    logs: mpsc::UnboundedReceiver<LogLine>,
    flake: tempfile::TempDir,
    loaded: Loaded,
}

async fn start(fixture_name: &str, timeout: Duration) -> Result<Harness, EvalError> {
    let (sink, logs) = mpsc::unbounded_channel();
    let client = EvalClient::start(EvalOptions {
        program: Some(nixops4_tests::binary("nixops4-eval")),
        nix_command: Some(nix_command()),
        timeout: Some(timeout),
        log_sink: Some(sink),
    })
    .await
    .expect("start nixops4-eval");
    let flake = fixture(fixture_name);
    let loaded = client.load_flake(flake.path().to_str().unwrap()).await?;
    Ok(Harness {
        client,
        logs,
        flake,
        loaded,
    })
}

async fn loaded(fixture_name: &str) -> Harness {
    start(fixture_name, Duration::from_secs(120))
        .await
        .expect("the fixture loads")
}

fn path(dotted: &str) -> ResourcePath {
    ResourcePath::parse_dotted(dotted)
}

fn made_up_outputs(path: &ResourcePath) -> Map<String, Value> {
    json!({"path": format!("/out/{path}"), "id": format!("id-{path}"), "public": format!("pub-{path}"), "stdout": format!("stdout-{path}")})
        .as_object()
        .unwrap()
        .clone()
}

/// How often each `builtins.trace` message was logged so far.
fn trace_counts(logs: &mut mpsc::UnboundedReceiver<LogLine>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    while let Ok(line) = logs.try_recv() {
        if line.level == LogLevel::Trace {
            *counts.entry(line.message).or_default() += 1;
        }
    }
    counts
}

async fn ready(h: &Harness, deployment: &str, resource: &str) -> ResourceSpec {
    match h
        .client
        .evaluate_resource(deployment, &path(resource))
        .await
    {
        Ok(Evaluation::Ready { value }) => value,
        other => panic!("{resource}: expected ready, got {other:?}"),
    }
}

/// What a resource waits for; fails the test when it does not wait.
async fn waiting(h: &Harness, resource: &str) -> Vec<ResourcePath> {
    match h.client.evaluate_resource("default", &path(resource)).await {
        Ok(Evaluation::Waiting { resources }) => resources,
        other => panic!("{resource}: expected waiting, got {other:?}"),
    }
}

/// The resources of the default deployment, as dotted paths.
async fn resource_names(h: &Harness) -> Vec<String> {
    let resources = h.client.list_resources("default").await.unwrap();
    resources.iter().map(ToString::to_string).collect()
}

async fn provide(h: &Harness, resource: &str) {
    let resource = path(resource);
    h.client
        .provide_outputs("default", &resource, made_up_outputs(&resource))
        .await
        .unwrap();
}

async fn error(h: &Harness, deployment: &str, resource: &str) -> EvalError {
    match h
        .client
        .evaluate_resource(deployment, &path(resource))
        .await
    {
        Err(error) => error,
        other => panic!("{resource}: expected an error, got {other:?}"),
    }
}

fn flake_file(h: &Harness) -> String {
    h.flake.path().join("flake.nix").display().to_string()
}

/// The child processes of a process, from /proc.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[tokio::test]
async fn lists_deployments_and_resources() {
    let h = loaded("chain").await;
    assert_eq!(h.loaded.deployments, ["default", "empty"]);
    assert!(h.loaded.flake.starts_with("path:"), "{}", h.loaded.flake);
    let names = resource_names(&h).await;
    assert_eq!(
        names,
        [
            "a",
            "afterBroken",
            "b",
            "bottom",
            "broken",
            "c",
            "independent",
            "left",
            "right",
            "top"
        ]
    );
    assert!(h.client.list_resources("empty").await.unwrap().is_empty());
    let missing = h.client.list_resources("nope").await.unwrap_err();
    assert_eq!(
        missing.message,
        "the flake has no deployment `nope` (it has: default, empty)"
    );
}

#[tokio::test]
async fn evaluates_plain_inputs_with_their_position() {
    let h = loaded("chain").await;
    let a = ready(&h, "default", "a").await;
    assert_eq!(a.type_name, "local.file");
    assert_eq!(a.resource_type, "file");
    assert_eq!(
        a.provider,
        ProviderSpec {
            name: "local".into(),
            executable: None,
            args: vec![]
        }
    );
    assert_eq!(
        Value::Object(a.inputs),
        json!({"name": "a.txt", "contents": "A"})
    );
    assert_eq!(a.state, None);
    let position = a.position.unwrap();
    assert_eq!(
        (position.file.as_str(), position.line),
        (flake_file(&h).as_str(), 15)
    );
    let independent = ready(&h, "default", "independent").await;
    assert_eq!(independent.inputs["args"], json!(["1", 2]));
}

/// Evaluates resources in one batch; each item as `name: ready`, `name: waits for a, b`
/// or `name: failed`, one a line.
async fn round(h: &Harness, names: &[&str]) -> (String, BTreeMap<String, BatchItem>) {
    let paths: Vec<ResourcePath> = names.iter().map(|n| path(n)).collect();
    let items = h
        .client
        .evaluate_resources("default", &paths)
        .await
        .unwrap();
    let mut shown = String::new();
    let mut by_name = BTreeMap::new();
    for (name, item) in names.iter().zip(items) {
        let status = match &item {
            BatchItem::Ready { .. } => "ready".to_owned(),
            BatchItem::Waiting { resources } => format!(
                "waits for {}",
                resources
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            BatchItem::Failed { .. } => "failed".to_owned(),
        };
        shown.push_str(&format!("{name}: {status}\n"));
        by_name.insert((*name).to_owned(), item);
    }
    (shown, by_name)
}

fn contents(items: &BTreeMap<String, BatchItem>, name: &str) -> Value {
    match &items[name] {
        BatchItem::Ready { value } => value.inputs["contents"].clone(),
        other => panic!("{name}: expected ready, got {other:?}"),
    }
}

/// The protocol round by round, as the engine drives it: what waits answers with what it
/// waits for, and is ready once those outputs are provided; an error stays with its
/// resource.
#[tokio::test]
async fn chains_and_diamonds_unblock_in_order_and_errors_stay_local() {
    let mut h = loaded("chain").await;
    let evaluator = h.client.process_id().unwrap();
    let repl_before = children(evaluator);
    let listed = resource_names(&h).await;
    let all: Vec<&str> = listed.iter().map(String::as_str).collect();
    let (shown, items) = round(&h, &all).await;
    assert_eq!(
        shown,
        "a: ready\nafterBroken: waits for broken\nb: waits for a\nbottom: waits for left\n\
         broken: failed\nc: waits for b\nindependent: ready\nleft: waits for top\n\
         right: waits for top\ntop: ready\n"
    );
    let BatchItem::Failed { error: broken } = &items["broken"] else {
        panic!("{:?}", items["broken"])
    };
    assert_eq!(broken.kind, EvalErrorKind::Expression);
    assert!(
        broken
            .message
            .contains("this resource is broken on purpose"),
        "{}",
        broken.message
    );
    assert_eq!(broken.position.as_ref().unwrap().file, flake_file(&h));
    assert_eq!(broken.position.as_ref().unwrap().line, 24);

    for ready in ["a", "independent", "top"] {
        provide(&h, ready).await;
    }
    let (shown, items) = round(&h, &["b", "bottom", "left", "right"]).await;
    assert_eq!(
        shown,
        "b: ready\nbottom: waits for left\nleft: ready\nright: ready\n"
    );
    assert!(
        contents(&items, "b")
            .as_str()
            .unwrap()
            .starts_with("/out/a ")
    );

    for ready in ["b", "left", "right"] {
        provide(&h, ready).await;
    }
    let (shown, items) = round(&h, &["afterBroken", "bottom", "c"]).await;
    assert_eq!(
        shown,
        "afterBroken: waits for broken\nbottom: ready\nc: ready\n"
    );
    assert_eq!(
        contents(&items, "c").as_str().unwrap().split(' ').next(),
        Some("/out/b")
    );
    assert_eq!(contents(&items, "bottom"), "/out/left/out/right");
    provide(&h, "c").await;

    // The laziness bar: a value shared by b and c is evaluated once across all rounds when
    // it lives outside the deployment function, on every Nix; inside it, once per
    // application, which is once where Nix forgets failures.
    let counts = trace_counts(&mut h.logs);
    assert_eq!(counts.get("EXPENSIVE-OUTER"), Some(&1), "{counts:?}");
    let inner = counts.get("EXPENSIVE-INNER").copied().unwrap_or(0);
    match h.loaded.strategy {
        Strategy::Persistent => assert_eq!(inner, 1),
        Strategy::Reapply => assert!((1..=3).contains(&inner), "inner evaluated {inner} times"),
    }
    // One evaluator, and one Nix process in it, for the whole session.
    assert_eq!(h.client.process_id(), Some(evaluator));
    assert_eq!(children(evaluator), repl_before);
    assert_eq!(repl_before.len(), 1, "one nix repl under the evaluator");

    match h
        .client
        .evaluate_output("default", "summary")
        .await
        .unwrap()
    {
        Evaluation::Ready { value } => assert_eq!(value, json!("c is at /out/c")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn outputs_wait_for_what_they_use() {
    let h = loaded("chain").await;
    match h
        .client
        .evaluate_output("default", "summary")
        .await
        .unwrap()
    {
        Evaluation::Waiting { resources } => assert_eq!(resources, vec![path("c")]),
        other => panic!("{other:?}"),
    }
    let missing = h
        .client
        .evaluate_output("default", "nope")
        .await
        .unwrap_err();
    assert!(
        missing
            .message
            .contains("has no output `nope` (it has: summary)"),
        "{}",
        missing.message
    );
}

#[tokio::test]
async fn nested_deployments_providers_state_and_sequences() {
    let h = loaded("nested").await;
    let names = resource_names(&h).await;
    assert_eq!(
        names,
        [
            "ca",
            "host.cert",
            "host.key",
            "\"odd.name\"",
            "release.build",
            "release.publish",
            "state"
        ]
    );

    let ca = ready(&h, "default", "ca").await;
    assert_eq!(ca.state, Some(path("state")));
    assert_eq!(
        ca.provider.executable.as_deref(),
        Some("/opt/vault-provider")
    );
    assert_eq!(ca.provider.args, ["--quiet"]);
    assert_eq!(ca.resource_type, "ca");

    // The nested resource sees the outer ones through the outer argument.
    assert_eq!(waiting(&h, "host.key").await, vec![path("ca")]);
    provide(&h, "ca").await;
    let key = ready(&h, "default", "host.key").await;
    assert_eq!(key.inputs["ca"], "id-ca");
    assert_eq!(
        key.provider.executable.as_deref(),
        Some("/opt/other-vault"),
        "the innermost declaration wins"
    );

    assert_eq!(waiting(&h, "host.cert").await, vec![path("host.key")]);
    provide(&h, "host.key").await;
    let cert = ready(&h, "default", "host.cert").await;
    assert_eq!(cert.inputs["contents"], "pub-host.key");
    assert_eq!(cert.depends_on, vec![path("ca")]);

    // mkSequence: each step depends on the previous one.
    assert_eq!(
        waiting(&h, "release.publish").await,
        vec![path("release.build")]
    );
    assert!(
        ready(&h, "default", "release.build")
            .await
            .depends_on
            .is_empty()
    );
    provide(&h, "release.build").await;
    let publish = ready(&h, "default", "release.publish").await;
    assert_eq!(publish.depends_on, vec![path("release.build")]);
    assert_eq!(publish.inputs["args"], json!(["stdout-release.build"]));

    let odd = h
        .client
        .evaluate_resource("default", &ResourcePath(vec!["odd.name".into()]))
        .await
        .unwrap();
    let Evaluation::Ready { value: odd } = odd else {
        panic!("{odd:?}")
    };
    assert_eq!(odd.state, Some(path("state")));
}

/// Each member of a cycle waits for the next; finding the cycle is the engine's part
/// (`core/src/schedule.rs`).
#[tokio::test]
async fn a_cycle_waits_around_and_what_is_outside_it_is_ready() {
    let h = loaded("cycle").await;
    let (shown, _) = round(&h, &["a", "b", "c", "free", "waitsOnCycle"]).await;
    assert_eq!(
        shown,
        "a: waits for b\nb: waits for c\nc: waits for a\nfree: ready\nwaitsOnCycle: waits for a\n"
    );
}

#[tokio::test]
async fn contract_violations_name_the_path() {
    let h = loaded("errors").await;
    let file = flake_file(&h);
    let e = h.client.list_resources("notAFunction").await.unwrap_err();
    assert!(
        e.message
            .contains("deployment `notAFunction` is not a deployment: expected a function"),
        "{}",
        e.message
    );
    assert!(e.message.contains("got an integer"), "{}", e.message);
    let e = h.client.list_resources("noResources").await.unwrap_err();
    assert!(
        e.message.contains(
            "`resources` of deployment `noResources` must be an attribute set, got a string"
        ),
        "{}",
        e.message
    );

    let e = error(&h, "bad", "noType").await;
    assert_eq!(
        e.message,
        "resource noType has no `type` (write `type = \"<provider>.<type>\";`, e.g. \"local.file\")"
    );
    assert_eq!(
        e.position,
        Some(Position {
            file: file.clone(),
            line: 8,
            column: 11
        })
    );
    let e = error(&h, "bad", "noProvider").await;
    assert!(
        e.message.contains("must be \"<provider>.<type>\""),
        "{}",
        e.message
    );
    let e = error(&h, "bad", "notAnAttrset").await;
    assert!(
        e.message
            .contains("resource notAnAttrset must be an attribute set"),
        "{}",
        e.message
    );
    let e = error(&h, "bad", "badState").await;
    assert!(
        e.message.contains(
            "`state` of resource badState must be a resource (`resources.<name>`), got a string"
        ),
        "{}",
        e.message
    );
    let e = error(&h, "bad", "undeclaredProvider").await;
    assert!(
        e.message
            .contains("uses provider `vault`, which is not declared: add `providers.vault"),
        "{}",
        e.message
    );
    assert_eq!(e.position.as_ref().map(|p| p.line), Some(12));
    let e = error(&h, "bad", "inputsNotAnAttrset").await;
    assert!(
        e.message.contains(
            "`inputs` of resource inputsNotAnAttrset must be an attribute set, got a list"
        ),
        "{}",
        e.message
    );
    let e = error(&h, "bad", "missingAttribute").await;
    assert!(
        e.message.contains("attribute 'notThere' missing"),
        "{}",
        e.message
    );
    let position = e.position.expect("a position");
    assert_eq!((position.file.as_str(), position.line), (file.as_str(), 14));
    let e = error(&h, "bad", "nothere").await;
    assert_eq!(e.message, "there is no resource nothere");
}

#[tokio::test]
async fn syntax_errors_carry_their_position() {
    let error = match start("syntax", Duration::from_secs(120)).await {
        Err(error) => error,
        Ok(_) => panic!("a flake with a syntax error cannot load"),
    };
    assert_eq!(error.kind, EvalErrorKind::Expression);
    assert!(error.message.contains("syntax error"), "{}", error.message);
    let position = error.position.expect("a position");
    assert!(position.file.ends_with("/flake.nix"), "{position}");
    assert!(
        !position.file.starts_with("/nix/store"),
        "mapped back to the flake: {position}"
    );
    assert_eq!(position.line, 4);
}

fn make_fifo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    (dir, fifo)
}

#[tokio::test]
async fn a_hanging_evaluation_times_out_and_the_next_request_works() {
    let (_dir, fifo) = make_fifo();
    // SAFETY: tests in this file that read the variable set it to the same kind of value.
    unsafe { std::env::set_var("NIXOPS4_TEST_FIFO", &fifo) };
    let h = start("hang", Duration::from_secs(3)).await.unwrap();
    let e = error(&h, "default", "stuck").await;
    assert_eq!(e.kind, EvalErrorKind::Nix);
    assert!(
        e.message.contains("did not finish evaluating within 3 s"),
        "{}",
        e.message
    );
    // A new repl is started and the flake loaded again.
    assert_eq!(
        ready(&h, "default", "fine").await.inputs["contents"],
        "fine"
    );
}

#[tokio::test]
async fn a_cancelled_evaluation_stops_nix() {
    let (_dir, fifo) = make_fifo();
    // SAFETY: as above.
    unsafe { std::env::set_var("NIXOPS4_TEST_FIFO", &fifo) };
    let h = start("hang", Duration::from_secs(600)).await.unwrap();
    let stuck_path = path("stuck");
    let stuck = h.client.evaluate_resource("default", &stuck_path);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stuck)
            .await
            .is_err(),
        "still stuck"
    );
    // Dropping the request cancelled it; without that, this would wait 600 s.
    let fine = tokio::time::timeout(Duration::from_secs(120), ready(&h, "default", "fine")).await;
    assert_eq!(
        fine.expect("the evaluator is free again").inputs["contents"],
        "fine"
    );
}

#[tokio::test]
async fn a_nix_that_dies_is_reported_and_replaced() {
    let h = loaded("chain").await;
    ready(&h, "default", "a").await;
    let evaluator = h.client.process_id().unwrap();
    for repl in children(evaluator) {
        std::process::Command::new("kill")
            .args(["-9", &repl.to_string()])
            .status()
            .unwrap();
    }
    let e = error(&h, "default", "top").await;
    assert_eq!(e.kind, EvalErrorKind::Nix);
    assert!(e.message.contains("exited unexpectedly"), "{}", e.message);
    assert_eq!(ready(&h, "default", "top").await.inputs["contents"], "T");
}

#[tokio::test]
async fn git_flakes_see_only_tracked_files() {
    let dir = fixture("chain");
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "flake.nix"]);
    let client = EvalClient::start(EvalOptions {
        program: Some(nixops4_tests::binary("nixops4-eval")),
        nix_command: Some(nix_command()),
        ..Default::default()
    })
    .await
    .unwrap();
    let loaded = client
        .load_flake(dir.path().to_str().unwrap())
        .await
        .unwrap();
    assert!(loaded.flake.starts_with("git+file:"), "{}", loaded.flake);
    assert_eq!(loaded.deployments, ["default", "empty"]);

    // A flake in a subdirectory of the repository.
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::copy(
        dir.path().join("flake.nix"),
        dir.path().join("sub/flake.nix"),
    )
    .unwrap();
    git(&["add", "sub/flake.nix"]);
    let loaded = client
        .load_flake(dir.path().join("sub").to_str().unwrap())
        .await
        .unwrap();
    assert!(loaded.flake.ends_with("?dir=sub"), "{}", loaded.flake);
    assert_eq!(loaded.deployments, ["default", "empty"]);
    let a = client
        .evaluate_resource("default", &path("a"))
        .await
        .unwrap();
    let Evaluation::Ready { value } = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        value.position.unwrap().file,
        dir.path().join("sub/flake.nix").display().to_string()
    );
}

#[tokio::test]
async fn module_system_deployments_with_a_nixpkgs_lib() {
    if nixops4_tests::nixpkgs_lib().is_none() {
        return;
    }
    let h = loaded("modules").await;
    let names = resource_names(&h).await;
    assert_eq!(names, ["extra", "link", "site"]);
    assert_eq!(
        ready(&h, "default", "site").await.inputs["contents"],
        "example.org"
    );
    assert_eq!(waiting(&h, "link").await, vec![path("site")]);
    provide(&h, "site").await;
    assert_eq!(
        ready(&h, "default", "link").await.inputs["contents"],
        "/out/site"
    );
    match h.client.evaluate_output("default", "url").await.unwrap() {
        Evaluation::Ready { value } => assert_eq!(value, "https://example.org/ (/out/site)"),
        other => panic!("{other:?}"),
    }
}
