//! Provider round-trip cost: `local.file` creates and updates per second through one
//! provider process, driven by the engine's client, against the same atomic writes done
//! in-process (the physical limit: temp file, write, fsync, rename, fsync of the directory).
//!
//! Run with `bench/provider-roundtrip.sh` (it builds the release provider first).
//! Prints one line per measurement; compare the ratios, not the absolute numbers, on a
//! shared machine.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use nixops4_core::provider_client::{ProviderCommand, ProviderProcess};
use nixops4_provider_protocol::*;
use serde_json::json;

fn inputs(n: usize, round: usize) -> Properties {
    json!({"name": format!("f{n}"), "contents": format!("contents {n} round {round}\n")})
        .as_object()
        .unwrap()
        .clone()
}

fn direct_write(dir: &Path, n: usize, round: usize) {
    let path = dir.join(format!("f{n}"));
    let temporary = dir.join(format!(".f{n}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .unwrap();
    file.write_all(format!("contents {n} round {round}\n").as_bytes())
        .unwrap();
    file.sync_all().unwrap();
    fs::rename(&temporary, &path).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
}

fn report(what: &str, count: usize, elapsed: Duration) -> f64 {
    let per_second = count as f64 / elapsed.as_secs_f64();
    println!(
        "{what:<40} {count:>6} requests  {:>8.1} ms  {per_second:>9.0} /s",
        elapsed.as_secs_f64() * 1e3
    );
    per_second
}

fn main() {
    let count: usize = std::env::var("BENCH_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let provider_binary = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("nixops4-resources-local");
    assert!(
        provider_binary.exists(),
        "build the provider first: cargo build --release -p nixops4-resources-local"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    for n in 0..count {
        direct_write(dir.path(), n, 0);
    }
    let direct_create = report("direct atomic write (create)", count, start.elapsed());
    let start = Instant::now();
    for n in 0..count {
        direct_write(dir.path(), n, 1);
    }
    let direct_update = report("direct atomic write (update)", count, start.elapsed());

    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let command = ProviderCommand::new(&provider_binary).in_directory(dir.path());
        let start = Instant::now();
        let mut provider = ProviderProcess::start(&command, Duration::from_secs(60))
            .await
            .unwrap();
        let started = start.elapsed();
        println!(
            "{:<40} {:>8.1} ms",
            "provider start + handshake",
            started.as_secs_f64() * 1e3
        );

        let mut outputs = Vec::with_capacity(count);
        let start = Instant::now();
        for n in 0..count {
            let response = provider
                .request(&Request::CreateResourceRequest(CreateResourceRequest {
                    resource_type: "file".into(),
                    input_properties: inputs(n, 0),
                    is_stateful: true,
                }))
                .await
                .unwrap();
            let Response::CreateResourceResponse(created) = response else {
                unreachable!()
            };
            outputs.push(created.output_properties);
        }
        let create = report("provider local.file create", count, start.elapsed());

        let start = Instant::now();
        for (n, previous) in outputs.into_iter().enumerate() {
            provider
                .request(&Request::UpdateResourceRequest(UpdateResourceRequest {
                    resource: ExtantResource {
                        resource_type: "file".into(),
                        input_properties: inputs(n, 0),
                        output_properties: Some(previous),
                    },
                    input_properties: inputs(n, 1),
                }))
                .await
                .unwrap();
        }
        let update = report("provider local.file update", count, start.elapsed());
        provider.close().await.unwrap();
        println!(
            "ratio direct/provider: create {:.2}, update {:.2}",
            direct_create / create,
            direct_update / update
        );
    });
}
