//! Deploying a NixOS system to one machine: look at what it runs, copy the closure, and
//! have `activate.sh` set the profile and activate it on the machine, detached from the
//! SSH session; then confirm over new connections that the machine is still reachable.
//! The machine rolls itself back when activation fails or when no confirmation comes.
//!
//! A machine that already runs the system gets nothing: no copy, no activation.

use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nixops4_provider_sdk::protocol::ErrorKind;
use nixops4_provider_sdk::{ProviderError, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::session::{Session, tail};

const ACTIVATE: &str = include_str!("activate.sh");
const PROFILE: &str = "/nix/var/nix/profiles/system";

/// What `switch-to-configuration` is asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Make it the boot default and activate it now.
    #[default]
    Switch,
    /// Make it the boot default only; it becomes active at the next boot.
    Boot,
    /// Activate it now without making it the boot default.
    Test,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Switch => "switch",
            Action::Boot => "boot",
            Action::Test => "test",
        }
    }
}

/// What a machine runs, as read from it.
#[derive(Debug, PartialEq)]
pub struct Current {
    /// Where the system profile points, if anywhere.
    pub profile: Option<String>,
    /// The profile's generation number.
    pub generation: Option<u64>,
    /// The active system (`/run/current-system`).
    pub active: Option<String>,
}

/// The result of a deployment.
pub struct Deployed {
    pub generation: Option<u64>,
    /// `switch-to-configuration` exited with 100: the new system needs a reboot.
    pub reboot_required: bool,
}

/// Reads what the machine runs (one connection).
pub fn current(session: &Session) -> Result<Current> {
    let output = session.run(
        &format!(
            "readlink -f {PROFILE} || echo; readlink {PROFILE} || echo; readlink -f /run/current-system || echo"
        ),
        &[],
        b"",
    )?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines().map(str::trim);
    let mut next = || lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
    let profile = next();
    let generation = next().and_then(|link| generation_of(&link));
    let active = next();
    Ok(Current {
        profile,
        generation,
        active,
    })
}

/// `system-12-link` → 12.
pub fn generation_of(link: &str) -> Option<u64> {
    link.strip_prefix("system-")?
        .strip_suffix("-link")?
        .parse()
        .ok()
}

/// Whether the machine already is where this deployment would bring it.
pub fn is_current(current: &Current, system: &str, action: Action) -> bool {
    let profile = current.profile.as_deref() == Some(system);
    let active = current.active.as_deref() == Some(system);
    match action {
        Action::Switch => profile && active,
        Action::Boot => profile,
        Action::Test => active,
    }
}

/// Copies `system` and activates it with `action`, waiting up to `confirm_timeout` for the
/// machine to answer a new connection after activation.
pub fn deploy(
    session: &Session,
    system: &str,
    action: Action,
    confirm_timeout: Duration,
    activation_timeout: Duration,
) -> Result<Deployed> {
    session.copy_closure(system)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = format!("/run/nixops4/activation-{nanos}");
    let start = r#"set -e
dir=$1; shift
mkdir -p -m 0700 /run/nixops4 "$dir"
cat >"$dir/activate.sh"
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
  systemd-run --unit="nixops4-activate-${dir##*-}" --collect --quiet --no-ask-password \
    --service-type=exec -- /bin/sh "$dir/activate.sh" "$dir" "$@"
else
  setsid /bin/sh "$dir/activate.sh" "$dir" "$@" </dev/null >/dev/null 2>&1 &
fi"#;
    let timeout = confirm_timeout.as_secs().max(1).to_string();
    let output = session.run(
        start,
        &[&dir, action.as_str(), system, &timeout],
        ACTIVATE.as_bytes(),
    )?;
    if !output.status.success() {
        return Err(ProviderError::internal(format!(
            "could not start the activation on {}: {}",
            session.login(),
            tail(&String::from_utf8_lossy(&output.stderr), 5)
        )));
    }
    follow(session, &dir, confirm_timeout, activation_timeout)
}

/// Reads the activation's status over a new connection each time until it is done or
/// rolled back. When it waits for confirmation, a connection opened only after that was
/// read deletes the canary: it proves the machine accepts new connections after activation.
fn follow(
    session: &Session,
    dir: &str,
    confirm_timeout: Duration,
    activation_timeout: Duration,
) -> Result<Deployed> {
    let poll = r#"d=$1
s=$(cat "$d/status" 2>/dev/null || echo starting)
echo "$s"
case $s in
  done*|rolled-back*) tail -n 20 "$d/log"; rm -rf "$d" ;;
esac"#;
    let confirm = r#"rm "$1/canary""#;
    let started = Instant::now();
    let mut last_contact = Instant::now();
    let mut confirmed = false;
    loop {
        let answer = session.run(poll, &[dir], b"").and_then(|output| {
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            if !confirmed && text.starts_with("confirm") {
                session.run_over_new_connection(confirm, &[dir])?;
                confirmed = true;
            }
            Ok(text)
        });
        match answer {
            Ok(text) => {
                last_contact = Instant::now();
                let (status, log) = text.split_once('\n').unwrap_or((&text, ""));
                let words: Vec<&str> = status.split_whitespace().collect();
                match words.as_slice() {
                    ["done", code, rest @ ..] => {
                        return Ok(Deployed {
                            generation: rest.first().and_then(|g| g.parse().ok()),
                            reboot_required: *code == "100",
                        });
                    }
                    ["rolled-back", reason, code] => {
                        return Err(rolled_back(session, reason, code, log, confirm_timeout));
                    }
                    _ if started.elapsed() > activation_timeout + confirm_timeout => {
                        return Err(ProviderError::transient(format!(
                            "the activation on {} did not finish within {}s; it is still running there (status: {})",
                            session.address(),
                            (activation_timeout + confirm_timeout).as_secs(),
                            status.trim()
                        )));
                    }
                    _ => {}
                }
            }
            Err(error) if error.kind == ErrorKind::Transient => {
                if last_contact.elapsed() > confirm_timeout + Duration::from_secs(2) {
                    return Err(ProviderError::transient(format!(
                        "{} did not answer a new connection for {}s after its activation began, so it rolls itself back to the system it ran before ({})",
                        session.address(),
                        last_contact.elapsed().as_secs(),
                        error.message
                    )));
                }
            }
            Err(error) => return Err(error),
        }
        sleep(Duration::from_millis(250));
    }
}

fn rolled_back(
    session: &Session,
    reason: &str,
    code: &str,
    log: &str,
    confirm_timeout: Duration,
) -> ProviderError {
    let why = match (reason, code) {
        ("unreachable", _) => format!(
            "it was not reachable over a new connection within {}s after activation",
            confirm_timeout.as_secs()
        ),
        ("profile", _) => "setting the system profile failed".to_owned(),
        (_, "4") => "switch-to-configuration exited with 4: some units failed".to_owned(),
        (_, code) => format!("switch-to-configuration failed with exit status {code}"),
    };
    let mut message = format!(
        "the deployment to {} was rolled back: {why}; the machine runs the system it ran before",
        session.address()
    );
    let log = tail(log, 10);
    if !log.is_empty() {
        message.push_str(":\n");
        message.push_str(&log);
    }
    ProviderError::transient(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_numbers_come_from_profile_links() {
        assert_eq!(generation_of("system-12-link"), Some(12));
        assert_eq!(generation_of("system-x-link"), None);
        assert_eq!(generation_of("/nix/store/abc"), None);
    }

    #[test]
    fn a_machine_is_current_when_its_profile_and_active_system_match() {
        let current = Current {
            profile: Some("/nix/store/a".into()),
            generation: Some(1),
            active: Some("/nix/store/b".into()),
        };
        assert!(!is_current(&current, "/nix/store/a", Action::Switch));
        assert!(is_current(&current, "/nix/store/a", Action::Boot));
        assert!(is_current(&current, "/nix/store/b", Action::Test));
    }
}
