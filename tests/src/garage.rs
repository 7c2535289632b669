//! A real Garage server for tests of state in object storage: started on 127.0.0.1 with
//! its own configuration in a temporary directory, one node, `consistent` mode, with a
//! layout, a key and a bucket made through Garage's own command line.
//!
//! Garage is the binary `NIXOPS4_GARAGE` names, else `garage` on `PATH`, else
//! `~/.cargo/bin/garage` (where `scripts/setup-garage.sh` installs it). It can be stopped
//! and started again on the same data, to test a store that goes away mid-apply.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Ports handed out in this process: three per server, from 39000 (39090 and up are the
/// benchmark's).
static NEXT_PORT: AtomicU16 = AtomicU16::new(39000);

pub const BUCKET: &str = "nixops4-state";
pub const REGION: &str = "garage";
const KEY_ID: &str = "GK0123456789abcdef01234567";
const SECRET: &str = "5c8f2b7e4d6a1f3e9b0c7a2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f";

pub struct Garage {
    dir: tempfile::TempDir,
    s3_port: u16,
    child: Option<Child>,
}

impl Garage {
    /// Starts a server with a bucket `BUCKET` that the key of [`Garage::credentials`] may
    /// read and write.
    pub fn start() -> Garage {
        Garage::start_on(free_ports())
    }

    /// Starts a server on `base`, `base + 1` (RPC) and `base + 2` (admin).
    pub fn start_on(base: u16) -> Garage {
        let dir = tempfile::Builder::new()
            .prefix("state-s3-garage-")
            .tempdir()
            .expect("a temporary directory");
        let config = format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
# Stored as sent, so a test can look for plain bytes in what Garage keeps on disk.
compression_level = "none"
replication_factor = 1
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
            dir = dir.path().display(),
            rpc = base + 1,
            s3 = base,
            admin = base + 2,
            secret = &SECRET[..64],
        );
        std::fs::write(dir.path().join("garage.toml"), config).expect("write Garage's config");
        let mut garage = Garage {
            dir,
            s3_port: base,
            child: None,
        };
        garage.resume();
        let node = garage.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().expect("a node id").to_owned();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        garage.cli(&[
            "key",
            "import",
            "--yes",
            "-n",
            "nixops4-test",
            KEY_ID,
            SECRET,
        ]);
        garage.cli(&["bucket", "create", BUCKET]);
        garage.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "nixops4-test",
        ]);
        garage
    }

    /// `http://127.0.0.1:<port>`, the S3 endpoint.
    /// Whether any file Garage keeps (data blocks, and the metadata database where it
    /// keeps small objects) holds `needle`.
    pub fn keeps_bytes(&self, needle: &str) -> bool {
        fn walk(dir: &std::path::Path, needle: &[u8]) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return false;
            };
            entries.flatten().any(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, needle)
                } else {
                    std::fs::read(&path)
                        .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                }
            })
        }
        walk(self.dir.path(), needle.as_bytes())
    }

    /// The S3 endpoint's port on 127.0.0.1.
    pub fn s3_port(&self) -> u16 {
        self.s3_port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The environment that gives a provider the test key.
    pub fn credentials(&self) -> [(&'static str, &'static str); 2] {
        [
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]
    }

    /// Kills the server (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data and waits until it answers.
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("garage.log"))
            .expect("open Garage's log");
        let child = Command::new(program())
            .arg("-c")
            .arg(self.config())
            .arg("server")
            // Warnings, and one line per API request (counted by `s3_requests`).
            .env("RUST_LOG", "warn,garage_api_common=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a second handle on the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program().display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Garage did not listen within 30 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many S3 API requests with the test key the server received so far, as its
    /// own request log counts them (a Garage built without its `metrics` feature has no
    /// metrics endpoint).
    pub fn s3_requests(&self) -> usize {
        let marker = format!("(key {KEY_ID})");
        self.log()
            .lines()
            .filter(|line| line.contains(&marker))
            .count()
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    fn cli(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = Command::new(program())
                .arg("-c")
                .arg(self.config())
                .args(args)
                .output()
                .expect("run garage");
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            // Right after start, the node may not answer its RPC yet.
            assert!(
                Instant::now() < deadline,
                "garage {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Garage program.
pub fn program() -> PathBuf {
    if let Some(path) = std::env::var_os("NIXOPS4_GARAGE") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("garage"))
            .find(|candidate| candidate.is_file())
    });
    let in_cargo = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cargo/bin/garage"))
        .filter(|p| p.is_file());
    let found = on_path.or(in_cargo);
    found.unwrap_or_else(|| {
        panic!("Garage is not installed: run scripts/setup-garage.sh (or set NIXOPS4_GARAGE)")
    })
}

/// A base port whose three ports are free.
fn free_ports() -> u16 {
    loop {
        let base = NEXT_PORT.fetch_add(3, Ordering::SeqCst);
        assert!(base + 2 < 39090, "out of test ports");
        if (base..base + 3).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return base;
        }
    }
}
