#!/usr/bin/env bash
# The weight of an S3 client (docs/architecture/004): a clean release build of a program
# that lists a prefix and puts an object, once with ureq + sha2 + the S3 provider's own
# SigV4 module, once with aws-sdk-s3 + aws-config + tokio. Prints, for each, the crates
# in its dependency tree, the CPU seconds (user, sys) and wall seconds of the build, and
# the stripped binary's size. Each has its own target directory; expect minutes.
# Usage: bench/s3-client-weight.sh [WORKDIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
rm -rf lean awssdk
cargo new -q --vcs none lean
cargo new -q --vcs none awssdk
cat >> lean/Cargo.toml <<'TOML'
ureq = { version = "3.5", default-features = false, features = ["rustls"] }
sha2 = "0.11"
humantime = "2"
TOML
cat > lean/src/main.rs <<RUST
#[path = "$repo/providers/s3/src/sigv4.rs"]
#[allow(dead_code)]
mod sigv4;
fn main() {
    let creds = sigv4::Credentials { access_key_id: "a".into(), secret_access_key: "b".into(), session_token: None };
    for (method, path, body) in [("GET", "/b", &b""[..]), ("PUT", "/b/k", &b"x"[..])] {
        let headers = sigv4::sign(&sigv4::Unsigned { method, host: "127.0.0.1:1", path, query: &[], extra_headers: &[], payload: body }, &creds, "us-east-1", std::time::SystemTime::now());
        let mut request = ureq::http::Request::builder().method(method).uri(format!("http://127.0.0.1:1{path}"));
        for (n, v) in &headers { request = request.header(n, v); }
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        println!("{:?}", agent.run(request.body(body.to_vec()).unwrap()).map(|r| r.status()));
    }
}
RUST
cat >> awssdk/Cargo.toml <<'TOML'
aws-config = { version = "1", features = ["behavior-version-latest"] }
aws-sdk-s3 = "1"
tokio = { version = "1", features = ["rt", "macros"] }
TOML
cat > awssdk/src/main.rs <<'RUST'
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_s3::Client::new(&config);
    let listed = client.list_objects_v2().bucket("b").prefix("p/").send().await;
    println!("{:?}", listed.map(|l| l.key_count()));
    let _ = client.put_object().bucket("b").key("k").body(b"x".to_vec().into()).send().await;
}
RUST
for name in lean awssdk; do
  (
    cd "$name"
    cargo fetch -q
    crates=$(cargo tree -e normal --prefix none | sort -u | wc -l)
    start=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o ../$name.cpu cargo build --release -q
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    cp "target/release/$name" "../$name.bin"
    strip "../$name.bin"
    read -r user sys < ../$name.cpu
    printf '%-7s %4d crates, build %6.1f s CPU user + %5.1f s sys, %6.1f s wall, stripped binary %9d bytes\n' \
      "$name" "$crates" "$user" "$sys" "$wall" "$(stat -c %s "../$name.bin")"
  )
done
