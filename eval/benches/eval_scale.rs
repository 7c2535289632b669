//! Evaluator scale: time to load, list and evaluate generated deployments of 1,000 and
//! 10,000 independent resources, and the cost of one unblocking round (a chain where each
//! resource waits for the previous one's outputs), with the requests the engine's loop
//! sends for them. The loop's own cost is measured by `bench/engine-scale.sh`.
//!
//! Run with `bench/eval-scale.sh`. `NIXOPS4_TEST_NIX` picks the Nix command. Compare
//! ratios within one run; absolute times depend on the machine's load.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use nixops4_eval::client::{EvalClient, EvalOptions};
use nixops4_eval::protocol::{BatchItem, Evaluation, ResourcePath};
use serde_json::json;

fn flake(independent: usize, chain: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "{ outputs = { self }: { nixops4Deployments.default = { resources, ... }: { resources = {\n",
    );
    for n in 0..independent {
        writeln!(text, "  r{n} = {{ type = \"local.file\"; inputs = {{ name = \"r{n}\"; contents = \"resource {n}\"; }}; }};").unwrap();
    }
    for n in 0..chain {
        let contents = if n == 0 {
            "\"start\"".to_owned()
        } else {
            format!("resources.c{}.path", n - 1)
        };
        writeln!(text, "  c{n} = {{ type = \"local.file\"; inputs = {{ name = \"c{n}\"; contents = {contents}; }}; }};").unwrap();
    }
    text.push_str("}; }; }; }\n");
    std::fs::write(dir.path().join("flake.nix"), text).unwrap();
    dir
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

async fn measure(independent: usize, chain: usize) {
    let program = std::env::var("NIXOPS4_EVAL_PROGRAM")
        .expect("NIXOPS4_EVAL_PROGRAM: the nixops4-eval binary");
    let dir = flake(independent, chain);
    let client = EvalClient::start(EvalOptions {
        program: Some(program.into()),
        nix_command: std::env::var("NIXOPS4_TEST_NIX").ok(),
        ..Default::default()
    })
    .await
    .unwrap();
    let start = Instant::now();
    let loaded = client
        .load_flake(dir.path().to_str().unwrap())
        .await
        .unwrap();
    let load = start.elapsed();
    let start = Instant::now();
    let paths = client.list_resources("default").await.unwrap();
    let list = start.elapsed();
    assert_eq!(paths.len(), independent + chain);
    if chain == 0 {
        let start = Instant::now();
        for path in &paths {
            let evaluation = client.evaluate_resource("default", path).await.unwrap();
            assert!(matches!(evaluation, Evaluation::Ready { .. }));
        }
        let evaluate = start.elapsed();
        println!(
            "{independent:>6} resources  Nix {:<7} {:?}  load {:>7.1} ms  list {:>7.1} ms  evaluate all {:>8.1} ms  ({:.3} ms each)",
            loaded.nix_version,
            loaded.strategy,
            ms(load),
            ms(list),
            ms(evaluate),
            ms(evaluate) / independent as f64
        );
    } else {
        // The rounds the engine's loop makes on a chain: everything at once (only the
        // first link is ready), then each link once the previous one's outputs are there.
        let start = Instant::now();
        let first = client.evaluate_resources("default", &paths).await.unwrap();
        let mut evaluations = paths.len();
        assert_eq!(
            first
                .iter()
                .filter(|item| matches!(item, BatchItem::Ready { .. }))
                .count(),
            1
        );
        for n in 0..chain {
            let link = ResourcePath(vec![format!("c{n}")]);
            let outputs = json!({"path": format!("/out/{link}")});
            client
                .provide_outputs("default", &link, outputs.as_object().unwrap().clone())
                .await
                .unwrap();
            if n + 1 < chain {
                let next = ResourcePath(vec![format!("c{}", n + 1)]);
                let evaluation = client.evaluate_resource("default", &next).await.unwrap();
                assert!(matches!(evaluation, Evaluation::Ready { .. }));
                evaluations += 1;
            }
        }
        let total = start.elapsed();
        println!(
            "{chain:>6}-link chain Nix {:<7} {:?}  {} evaluations  total {:>8.1} ms  ({:.3} ms per unblocking round)",
            loaded.nix_version,
            loaded.strategy,
            evaluations,
            ms(total),
            ms(total) / chain as f64
        );
    }
    client.shutdown().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        measure(1_000, 0).await;
        measure(10_000, 0).await;
        measure(0, 100).await;
        measure(0, 400).await;
    });
}
