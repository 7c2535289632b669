//! The cost of state on Garage: an apply of `NIXOPS4_S3_BENCH_COUNT` files (20 by
//! default, so that `cargo test` keeps it working; `bench/state-s3.sh` runs 1,000) with
//! state in a bucket against the same apply with a local state file, as a ratio measured
//! in one run, and the S3 requests per resource that Garage's own request log counts.

use std::time::Instant;

use nixops4_tests::TestEnv;
use nixops4_tests::garage::{BUCKET, Garage, REGION};

fn deployment(state: &str, count: usize) -> String {
    let files: String = (0..count)
        .map(|i| format!("f{i} = {{ type = \"local.file\"; inputs = {{ name = \"out/f{i}.txt\"; contents = \"file {i}\"; }}; state = resources.state; }};\n"))
        .collect();
    format!("resources = {{\n state = {state};\n{files} }};")
}

#[test]
fn apply_on_garage_against_local_state() {
    let count: usize = std::env::var("NIXOPS4_S3_BENCH_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let garage = Garage::start();

    let local = TestEnv::new();
    local.write_deployment(&deployment(
        r#"{ type = "local.state_file"; inputs.name = "state.jsonl"; }"#,
        count,
    ));
    let started = Instant::now();
    local.run(&["apply", "--yes"]).success();
    let local_seconds = started.elapsed().as_secs_f64();

    let remote = TestEnv::new();
    let provider = remote.program_path("nixops4-resources-s3");
    remote.write_deployment(&format!(
        "providers.s3 = {{ executable = \"{}\"; }};\n{}",
        provider.display(),
        deployment(
            &format!(
                r#"{{ type = "s3.object"; inputs = {{ endpoint = "{}"; bucket = "{BUCKET}"; prefix = "bench"; region = "{REGION}"; }}; }}"#,
                garage.endpoint()
            ),
            count
        )
    ));
    let requests_before = garage.s3_requests();
    let started = Instant::now();
    let mut apply = remote.command(&["apply", "--yes"]);
    apply.envs(garage.credentials());
    remote.output(apply.output().unwrap()).success();
    let remote_seconds = started.elapsed().as_secs_f64();
    let requests = garage.s3_requests() - requests_before;

    let per_resource = requests as f64 / count as f64;
    eprintln!(
        "{count} resources: apply with local state {local_seconds:.2} s, with state on Garage {remote_seconds:.2} s, ratio {:.2}; {requests} S3 requests, {per_resource:.2} per resource",
        remote_seconds / local_seconds
    );
    assert!(requests > 0, "Garage logged no request");
    // An intent and a result per resource, compaction's share, the lock: a handful.
    assert!(
        per_resource < 6.0,
        "{per_resource:.2} S3 requests per resource"
    );
}
