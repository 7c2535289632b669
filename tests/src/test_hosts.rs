//! Test hosts for machine deployments: real OpenSSH servers, each a chroot with its own
//! root and Nix store, its sshd on its own loopback address (`scripts/test-host.sh` over
//! the base of `scripts/setup-test-hosts.sh`). Needs root, as CI is; the base is made on
//! first use (about 1.5 min) and kept.
//!
//! The tests read a host's files directly from its root to check what a deployment did.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::repository_root;

/// Makes sure the base root exists, once per test process.
fn ensure_base() {
    static BASE: OnceLock<()> = OnceLock::new();
    BASE.get_or_init(|| {
        let status = Command::new(repository_root().join("scripts/setup-test-hosts.sh"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run scripts/setup-test-hosts.sh");
        assert!(
            status.success(),
            "scripts/setup-test-hosts.sh failed; test hosts need root (debootstrap, chroot, mount)"
        );
    });
}

/// One running test host; stopped and removed when dropped.
pub struct TestHost {
    pub address: String,
    /// Removed by `test-host.sh stop`, never by a recursive delete of our own, which would
    /// reach through the host's mounts (its /dev is this machine's).
    dir: PathBuf,
}

impl TestHost {
    /// Starts a host whose sshd listens on `address`:22. Use 127.0.3.1 to 127.0.3.20.
    pub fn start(address: &str) -> TestHost {
        ensure_base();
        let dir = tempfile::Builder::new()
            .prefix("machines-host-")
            .tempdir()
            .expect("a directory for the host")
            .keep();
        let status = Command::new(repository_root().join("scripts/test-host.sh"))
            .arg("start")
            .arg(&dir)
            .arg(address)
            .status()
            .expect("run scripts/test-host.sh");
        assert!(status.success(), "starting the test host {address} failed");
        let host = TestHost {
            address: address.to_owned(),
            dir,
        };
        host.wait_until_listening();
        host
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let address = format!("{}:22", self.address);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test host's sshd does not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host's root directory, as this machine sees it.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The host's ed25519 host key, one `authorized_keys`-style line.
    pub fn host_public_key(&self) -> String {
        let key = std::fs::read_to_string(self.root().join("etc/ssh/ssh_host_ed25519_key.pub"))
            .expect("the host's public key");
        key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    /// Lets `public_key` log in as root and as `deployer` (who may `sudo`).
    pub fn authorize(&self, public_key: &str) {
        let line = format!("{}\n", public_key.trim());
        for home in ["root", "home/deployer"] {
            let ssh = self.root().join(home).join(".ssh");
            std::fs::create_dir_all(&ssh).expect("create .ssh");
            std::fs::write(ssh.join("authorized_keys"), &line).expect("write authorized_keys");
        }
        let status = Command::new("chroot")
            .arg(self.root())
            .args(["chown", "-R", "deployer:deployer", "/home/deployer/.ssh"])
            .status()
            .expect("chown");
        assert!(status.success());
    }

    /// A path inside the host, as this machine sees it.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root().join(inside.trim_start_matches('/'))
    }

    /// Where a symbolic link inside the host points, followed inside the host.
    pub fn resolve(&self, inside: &str) -> Option<String> {
        let mut path = inside.to_owned();
        for _ in 0..10 {
            let target = std::fs::read_link(self.path(&path)).ok()?;
            let target = if target.is_absolute() {
                target
            } else {
                Path::new(&path)
                    .parent()
                    .unwrap_or(Path::new("/"))
                    .join(target)
            };
            path = target.display().to_string();
            if path.starts_with("/nix/store/") && path.matches('/').count() == 3 {
                return Some(path);
            }
        }
        None
    }

    /// The system the host's profile points to.
    pub fn profile(&self) -> Option<String> {
        self.resolve("/nix/var/nix/profiles/system")
    }

    /// The host's active system.
    pub fn active(&self) -> Option<String> {
        self.resolve("/run/current-system")
    }

    /// What the fake systems' switch-to-configuration recorded: one line per activation.
    pub fn activations(&self) -> String {
        std::fs::read_to_string(self.path("/var/log/nixops4-activations")).unwrap_or_default()
    }

    /// Whether the host's sshd accepts connections.
    pub fn is_listening(&self) -> bool {
        std::net::TcpStream::connect(format!("{}:22", self.address)).is_ok()
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = Command::new(repository_root().join("scripts/test-host.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
