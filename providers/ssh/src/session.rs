//! One SSH login to a machine, as the machine resource's `ssh` inputs describe it: the
//! private key in a file only this process can read, a known-hosts file holding only the
//! pinned host key (no trust on first use), and the options that make `ssh` fail instead
//! of asking. Commands run through `sh -c`, with `sudo` in front when the login is not root.
//!
//! Errors name the host and the user, and say which input to look at. They never contain
//! the private key: `ssh`'s own messages do not, and nothing here prints the key.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Output, Stdio};

use nixops4_provider_sdk::protocol::{InputPath, PathSegment};
use nixops4_provider_sdk::{ErrorContext, ProviderError, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ssh_key::{HashAlg, PrivateKey, PublicKey};

/// How to log in to the machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SshInputs {
    /// The machine's address or name.
    pub host: String,
    /// The SSH port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The user to log in as. Other users than `root` run commands, and the machine's Nix,
    /// through `sudo`, which must not ask for a password.
    #[serde(default = "default_user")]
    pub user: String,
    /// The private key in OpenSSH format, such as `resources.<keypair>.privateKey`.
    pub private_key: String,
    /// The machine's SSH host key, as in its `/etc/ssh/ssh_host_ed25519_key.pub`. Required:
    /// NixOS deployments never trust a host key on first use, and refuse a machine that
    /// shows another key.
    pub host_public_key: String,
}

fn default_port() -> u16 {
    22
}

fn default_user() -> String {
    "root".to_owned()
}

/// Files and options for `ssh` and `nix copy`, kept in a private temporary directory that
/// is removed with the session.
pub struct Session {
    inputs: SshInputs,
    host_key: PublicKey,
    sudo: bool,
    dir: tempfile::TempDir,
}

impl Session {
    /// Checks the keys and writes the files `ssh` needs. `sudo` overrides whether commands
    /// run through `sudo` (by default, when the user is not root).
    pub fn new(inputs: &SshInputs, sudo: Option<bool>) -> Result<Session> {
        let host_key = PublicKey::from_openssh(inputs.host_public_key.trim()).map_err(|e| {
            ProviderError::invalid_input(format!(
                "ssh.hostPublicKey of {} is not an OpenSSH public key ({e}); give the line of the host's /etc/ssh/ssh_host_ed25519_key.pub",
                inputs.host
            ))
            .at(input("hostPublicKey"))
        })?;
        // The key is checked without quoting it in the message.
        PrivateKey::from_openssh(inputs.private_key.trim()).map_err(|_| {
            ProviderError::invalid_input(format!(
                "ssh.privateKey for {}@{} is not an unencrypted OpenSSH private key",
                inputs.user, inputs.host
            ))
            .at(input("privateKey"))
        })?;
        let dir = tempfile::Builder::new()
            .prefix("nixops4-ssh-")
            .tempdir()
            .context("creating a private directory for the SSH key")?;
        let key_path = dir.path().join("id");
        let mut key_file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .context("creating the private key file")?;
        key_file
            .write_all(format!("{}\n", inputs.private_key.trim()).as_bytes())
            .context("writing the private key file")?;
        let known = format!(
            "{} {}\n",
            host_pattern(&inputs.host, inputs.port),
            host_key.to_openssh().context("encoding the host key")?
        );
        std::fs::write(dir.path().join("known_hosts"), known)
            .context("writing the known hosts file")?;
        Ok(Session {
            sudo: sudo.unwrap_or(inputs.user != "root"),
            inputs: inputs.clone(),
            host_key,
            dir,
        })
    }

    /// `host:port` for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.inputs.host, self.inputs.port)
    }

    /// `user@host:port` for messages.
    pub fn login(&self) -> String {
        format!("{}@{}", self.inputs.user, self.address())
    }

    pub fn host_public_key(&self) -> String {
        self.inputs.host_public_key.trim().to_owned()
    }

    pub fn host_key_fingerprint(&self) -> String {
        self.host_key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The options of a connection. Commands share one connection (an SSH control master,
    /// closed with the session) unless they ask for a new one, which proves that the
    /// machine accepts connections now.
    fn ssh_options(&self, connection: Connection) -> Vec<String> {
        let dir = self.dir.path().display();
        let mut options = vec![
            "-i".to_owned(),
            format!("{dir}/id"),
            "-p".to_owned(),
            self.inputs.port.to_string(),
        ];
        for option in [
            "IdentitiesOnly=yes".to_owned(),
            format!("UserKnownHostsFile={dir}/known_hosts"),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!("HostKeyAlgorithms={}", self.host_key.algorithm().as_str()),
            "BatchMode=yes".to_owned(),
            "PasswordAuthentication=no".to_owned(),
            "KbdInteractiveAuthentication=no".to_owned(),
            "ConnectTimeout=10".to_owned(),
            // A connection the network dropped ends within 15 s instead of hanging.
            "ServerAliveInterval=5".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
            "LogLevel=ERROR".to_owned(),
        ] {
            options.push("-o".to_owned());
            options.push(option);
        }
        let control = match connection {
            Connection::New => vec!["ControlPath=none".to_owned()],
            Connection::Shared => vec![
                "ControlMaster=auto".to_owned(),
                format!("ControlPath={dir}/master"),
                "ControlPersist=60".to_owned(),
            ],
        };
        for option in control {
            options.push("-o".to_owned());
            options.push(option);
        }
        options
    }

    /// Runs `script` with `sh -c` on the machine (as root through `sudo` when needed),
    /// with `args` as its `$1`… and `stdin` as its input. A failure to connect or log in is
    /// an error; the script's own exit status is the caller's to read.
    pub fn run(&self, script: &str, args: &[&str], stdin: &[u8]) -> Result<Output> {
        self.run_over(Connection::Shared, script, args, stdin)
    }

    /// [`Session::run`] over a connection opened for this command alone.
    pub fn run_over_new_connection(&self, script: &str, args: &[&str]) -> Result<Output> {
        self.run_over(Connection::New, script, args, b"")
    }

    fn run_over(
        &self,
        connection: Connection,
        script: &str,
        args: &[&str],
        stdin: &[u8],
    ) -> Result<Output> {
        let mut remote = String::new();
        if self.sudo {
            remote.push_str("sudo -n ");
        }
        remote.push_str("sh -c ");
        remote.push_str(&shell_quote(script));
        remote.push_str(" nixops4");
        for arg in args {
            remote.push(' ');
            remote.push_str(&shell_quote(arg));
        }
        let mut child = Command::new("ssh")
            .args(self.ssh_options(connection))
            .arg(format!("{}@{}", self.inputs.user, self.inputs.host))
            .arg("--")
            .arg(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting ssh")?;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A command that does not read its input ends the pipe early; that is not an error.
        let _ = pipe.write_all(stdin);
        drop(pipe);
        let output = child.wait_with_output().context("running ssh")?;
        if output.status.code() == Some(255) {
            return Err(self.connection_error(&String::from_utf8_lossy(&output.stderr)));
        }
        if self.sudo && output.status.code() == Some(1) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("sudo: a password is required")
                || stderr.contains("is not in the sudoers")
            {
                return Err(ProviderError::invalid_input(format!(
                    "{} cannot run commands as root with `sudo -n`: {}; allow it without a password, or log in as root",
                    self.login(),
                    last_line(&stderr)
                ))
                .at(input("user")));
            }
        }
        Ok(output)
    }

    /// Copies a store path and its closure into the machine's Nix store. Nix skips what is
    /// there already.
    pub fn copy_closure(&self, path: &str) -> Result<()> {
        let mut store = format!("ssh-ng://{}@{}", self.inputs.user, self.inputs.host);
        if self.sudo {
            store.push_str("?remote-program=sudo%20-n%20nix-daemon");
        }
        let output = Command::new("nix")
            .args(["--extra-experimental-features", "nix-command"])
            .args(["copy", "--no-check-sigs", "--to", &store, path])
            .env("NIX_SSHOPTS", self.ssh_options(Connection::New).join(" "))
            .stdin(Stdio::null())
            .output()
            .context("running nix copy")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(ProviderError::transient(format!(
                "copying {path} to {} failed: {}",
                self.login(),
                tail(&stderr, 5)
            )));
        }
        Ok(())
    }

    /// Says why `ssh` could not run a command, from its own words; for a host key that is
    /// not the pinned one, asks the host for its keys to show both fingerprints.
    fn connection_error(&self, stderr: &str) -> ProviderError {
        let pinned = self.host_key_fingerprint();
        if stderr.contains("Host key verification failed")
            || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("no matching host key type")
        {
            let offered = self.offered_host_keys();
            let offered = if offered.is_empty() {
                "a key it would not show to ssh-keyscan".to_owned()
            } else {
                offered.join(", ")
            };
            return ProviderError::invalid_input(format!(
                "refusing {}: its host key is not the pinned one; the host shows {offered}, but ssh.hostPublicKey pins {pinned} ({}). Nothing was changed on it. If the host was reinstalled, update ssh.hostPublicKey",
                self.address(),
                self.host_key.algorithm().as_str()
            ))
            .at(input("hostPublicKey"));
        }
        if stderr.contains("Permission denied") {
            return ProviderError::invalid_input(format!(
                "cannot log in to {} as {}: the host refused ssh.privateKey ({})",
                self.address(),
                self.inputs.user,
                last_line(stderr)
            ))
            .at(input("privateKey"));
        }
        ProviderError::transient(format!(
            "cannot reach {} as {}: {}",
            self.address(),
            self.inputs.user,
            last_line(stderr)
        ))
    }

    /// The host keys the host shows, as `SHA256:… (algorithm)`, preferring those of the
    /// pinned key's algorithm.
    fn offered_host_keys(&self) -> Vec<String> {
        let Ok(output) = Command::new("ssh-keyscan")
            .args(["-T", "5", "-p", &self.inputs.port.to_string()])
            .arg(&self.inputs.host)
            .stderr(Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        let keys: Vec<PublicKey> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once(' ').map(|(_, key)| key))
            .filter_map(|key| PublicKey::from_openssh(key).ok())
            .collect();
        let same: Vec<&PublicKey> = keys
            .iter()
            .filter(|key| key.algorithm() == self.host_key.algorithm())
            .collect();
        let shown = if same.is_empty() {
            keys.iter().collect()
        } else {
            same
        };
        shown
            .into_iter()
            .map(|key| {
                format!(
                    "{} ({})",
                    key.fingerprint(HashAlg::Sha256),
                    key.algorithm().as_str()
                )
            })
            .collect()
    }
}

impl Drop for Session {
    /// Closes the shared connection, if one was opened.
    fn drop(&mut self) {
        if self.dir.path().join("master").exists() {
            let _ = Command::new("ssh")
                .args(self.ssh_options(Connection::Shared))
                .args(["-O", "exit"])
                .arg(format!("{}@{}", self.inputs.user, self.inputs.host))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[derive(Clone, Copy)]
enum Connection {
    Shared,
    New,
}

/// Where errors about the private key point.
pub fn private_key_input() -> InputPath {
    input("privateKey")
}

fn input(name: &str) -> InputPath {
    InputPath::key("ssh").join(PathSegment::Key(name.to_owned()))
}

/// How known-hosts files name a host on a port.
fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `text` as one word for a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_owned()
}

/// The last `n` non-empty lines of `text`, joined.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn other_ports_are_bracketed_in_known_hosts() {
        assert_eq!(host_pattern("a", 22), "a");
        assert_eq!(host_pattern("a", 2222), "[a]:2222");
    }
}
