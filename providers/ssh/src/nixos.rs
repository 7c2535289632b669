//! `ssh.nixos`: a NixOS machine deployed over SSH. Its `system` is a built NixOS system
//! (a derivation the engine builds before calling, usually
//! `config.system.build.toplevel`); an apply copies it to the machine and activates it
//! (`deploy.rs`), after uploading the machine's keys (`keys.rs`). Operations act on the
//! machine as it is: roll back, reboot, list generations, run a command.
//!
//! Deleting the resource forgets the machine; it keeps running its system.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nixops4_provider_sdk::protocol::Properties;
use nixops4_provider_sdk::{
    Context, Extant, OperationOutcome, ProviderError, ResourceType, Result, TypeInfo, no_arguments,
    schema_for,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::deploy::{self, Action};
use crate::keys::{self, Key};
use crate::session::{self, Session, SshInputs, tail};

pub struct Nixos;

/// Inputs of `ssh.nixos`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NixosInputs {
    /// How to log in to the machine.
    pub ssh: SshInputs,
    /// The NixOS system to deploy: the store path of a system's top level, with its
    /// `bin/switch-to-configuration`, such as `"${nixos.config.system.build.toplevel}"`.
    pub system: String,
    /// `switch` (the default), `boot` or `test`, as for `nixos-rebuild`.
    #[serde(default)]
    pub action: Action,
    /// Run commands on the machine through `sudo`. By default, when `ssh.user` is not root.
    #[serde(default)]
    pub sudo: Option<bool>,
    /// Seconds the machine waits, after activating, for a new connection from NixOps4
    /// before it rolls itself back.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout: u64,
    /// Seconds an activation may take.
    #[serde(default = "default_activation_timeout")]
    pub activation_timeout: u64,
    /// Files uploaded to the machine over SSH before activation, never through the Nix
    /// store: `keys.<file name> = { text; destDir; user; group; permissions; }`.
    #[serde(default)]
    pub keys: BTreeMap<String, Key>,
}

fn default_confirm_timeout() -> u64 {
    30
}

fn default_activation_timeout() -> u64 {
    600
}

/// Outputs of `ssh.nixos`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NixosOutputs {
    /// The system the machine's profile points to.
    pub system: String,
    /// The profile's generation (`/nix/var/nix/profiles/system-<n>-link`).
    pub generation: Option<u64>,
    /// The machine's host key that was pinned.
    pub host_public_key: String,
    /// That key's SHA-256 fingerprint.
    pub host_key_fingerprint: String,
    /// The new system changed the init interface and is activated only after a reboot
    /// (`switch-to-configuration` exited with 100); run the `reboot` operation.
    pub reboot_required: bool,
}

/// Arguments of the `reboot` operation.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RebootArguments {
    /// Seconds to wait for the machine to come back.
    #[serde(default = "default_reboot_timeout")]
    timeout: u64,
}

fn default_reboot_timeout() -> u64 {
    300
}

/// Arguments of the `run` operation.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunArguments {
    /// The shell command to run on the machine, as root.
    command: String,
}

impl ResourceType for Nixos {
    type Inputs = NixosInputs;
    type Outputs = NixosOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new(
            "A NixOS machine reached over SSH: its system is copied and activated, and rolled back when activation fails or the machine becomes unreachable.",
        )
        .operation(
            "rollback",
            "Go back to the machine's previous generation and activate it.",
            no_arguments(),
        )
        .operation(
            "reboot",
            "Reboot the machine and wait until it is back with a new boot id.",
            schema_for::<RebootArguments>(),
        )
        .operation(
            "generations",
            "List the machine's system generations.",
            no_arguments(),
        )
        .operation(
            "run",
            "Run a shell command on the machine as root, and show what it printed.",
            schema_for::<RunArguments>(),
        )
    }

    fn create(&self, inputs: NixosInputs, _: &Context) -> Result<NixosOutputs> {
        apply(&inputs, None)
    }

    fn update(
        &self,
        previous: Extant<NixosInputs, NixosOutputs>,
        inputs: NixosInputs,
        _: &Context,
    ) -> Result<NixosOutputs> {
        apply(&inputs, Some(&previous.inputs))
    }

    /// What the machine's profile holds now, which a rollback or a hand-made change may
    /// have moved.
    fn read(&self, resource: Extant<NixosInputs, NixosOutputs>) -> Result<Option<NixosOutputs>> {
        let inputs = &resource.inputs;
        let session = Session::new(&inputs.ssh, inputs.sudo)?;
        let reboot_required = resource.outputs.is_some_and(|o| o.reboot_required);
        let mut outputs = outputs(&session, inputs.action)?;
        outputs.reboot_required = reboot_required;
        Ok(Some(outputs))
    }

    fn destroy(&self, _: Extant<NixosInputs, NixosOutputs>) -> Result<()> {
        Ok(())
    }

    fn operation(
        &self,
        name: &str,
        resource: Extant<NixosInputs, NixosOutputs>,
        arguments: Properties,
        _: &Context,
    ) -> Result<OperationOutcome<NixosOutputs>> {
        let inputs = &resource.inputs;
        let session = Session::new(&inputs.ssh, inputs.sudo)?;
        let arguments = Value::Object(arguments);
        match name {
            "rollback" => {
                let output = session.run(
                    r#"set -e
p=/nix/var/nix/profiles/system
nix-env -p "$p" --rollback
"$(readlink -f "$p")/bin/switch-to-configuration" switch"#,
                    &[],
                    b"",
                )?;
                if !output.status.success() {
                    return Err(ProviderError::transient(format!(
                        "rolling back {} failed: {}",
                        session.address(),
                        tail(&String::from_utf8_lossy(&output.stderr), 5)
                    )));
                }
                let outputs = outputs(&session, inputs.action)?;
                Ok(OperationOutcome {
                    result: json!({ "system": outputs.system, "generation": outputs.generation }),
                    outputs: Some(outputs),
                })
            }
            "reboot" => {
                let arguments: RebootArguments = parse(arguments)?;
                reboot(&session, Duration::from_secs(arguments.timeout))?;
                let outputs = outputs(&session, inputs.action)?;
                Ok(OperationOutcome {
                    result: json!({ "rebooted": true, "system": outputs.system }),
                    outputs: Some(outputs),
                })
            }
            "generations" => Ok(OperationOutcome {
                result: generations(&session)?,
                outputs: None,
            }),
            _run => {
                let arguments: RunArguments = parse(arguments)?;
                let output = session.run(&arguments.command, &[], b"")?;
                Ok(OperationOutcome {
                    result: json!({
                        "exitCode": output.status.code(),
                        "stdout": String::from_utf8_lossy(&output.stdout),
                        "stderr": String::from_utf8_lossy(&output.stderr),
                    }),
                    outputs: None,
                })
            }
        }
    }
}

/// Brings the machine to `inputs`: keys first, then the system unless it runs it already.
fn apply(inputs: &NixosInputs, previous: Option<&NixosInputs>) -> Result<NixosOutputs> {
    keys::check(&inputs.keys)?;
    let (session, current) = log_in(inputs, previous)?;
    let no_keys = BTreeMap::new();
    keys::upload(
        &session,
        &inputs.keys,
        previous.map_or(&no_keys, |p| &p.keys),
    )?;
    if deploy::is_current(&current, &inputs.system, inputs.action) {
        tracing::info!(
            "{} runs {} already: nothing to copy or activate",
            session.address(),
            inputs.system
        );
        return Ok(NixosOutputs {
            system: inputs.system.clone(),
            generation: current.generation,
            host_public_key: session.host_public_key(),
            host_key_fingerprint: session.host_key_fingerprint(),
            reboot_required: false,
        });
    }
    let deployed = deploy::deploy(
        &session,
        &inputs.system,
        inputs.action,
        Duration::from_secs(inputs.confirm_timeout),
        Duration::from_secs(inputs.activation_timeout),
    )?;
    if deployed.reboot_required {
        tracing::warn!(
            "{} needs a reboot to activate {}: run the `reboot` operation",
            session.address(),
            inputs.system
        );
    }
    Ok(NixosOutputs {
        system: inputs.system.clone(),
        generation: deployed.generation,
        host_public_key: session.host_public_key(),
        host_key_fingerprint: session.host_key_fingerprint(),
        reboot_required: deployed.reboot_required,
    })
}

/// Logs in and reads what the machine runs. When the machine refuses a new private key
/// (a rotated key pair, whose public key the system being deployed authorises), the
/// previous key, which deployed what the machine runs now, is tried once.
fn log_in(
    inputs: &NixosInputs,
    previous: Option<&NixosInputs>,
) -> Result<(Session, deploy::Current)> {
    let session = Session::new(&inputs.ssh, inputs.sudo)?;
    let refused = match deploy::current(&session) {
        Ok(current) => return Ok((session, current)),
        Err(error) if error.input_path == Some(session::private_key_input()) => error,
        Err(error) => return Err(error),
    };
    let Some(previous) = previous.filter(|p| {
        p.ssh.private_key != inputs.ssh.private_key
            && p.ssh.host == inputs.ssh.host
            && p.ssh.user == inputs.ssh.user
    }) else {
        return Err(refused);
    };
    let mut with_previous_key = inputs.ssh.clone();
    with_previous_key.private_key = previous.ssh.private_key.clone();
    let session = Session::new(&with_previous_key, inputs.sudo)?;
    let current = deploy::current(&session).map_err(|_| refused)?;
    tracing::warn!(
        "{} refused the new ssh.privateKey; deploying with the previous one",
        session.login()
    );
    Ok((session, current))
}

/// The outputs as the machine is now, after an operation that activated what it has.
fn outputs(session: &Session, action: Action) -> Result<NixosOutputs> {
    let current = deploy::current(session)?;
    let system = match action {
        Action::Test => current.active,
        Action::Switch | Action::Boot => current.profile,
    };
    Ok(NixosOutputs {
        system: system.unwrap_or_default(),
        generation: current.generation,
        host_public_key: session.host_public_key(),
        host_key_fingerprint: session.host_key_fingerprint(),
        reboot_required: false,
    })
}

/// The boot id, over a new connection: one opened before a reboot would not answer.
fn boot_id(session: &Session) -> Result<String> {
    let output = session.run_over_new_connection("cat /proc/sys/kernel/random/boot_id", &[])?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Reboots and waits for a new boot id (colmena's check), polling every two seconds.
fn reboot(session: &Session, timeout: Duration) -> Result<()> {
    let before = boot_id(session)?;
    // Detached and delayed, so the command returns before the connection drops.
    session.run(
        "if [ -d /run/systemd/system ]; then r='systemctl reboot'; else r=reboot; fi
setsid sh -c \"sleep 1; $r\" </dev/null >/dev/null 2>&1 &",
        &[],
        b"",
    )?;
    let started = Instant::now();
    while started.elapsed() < timeout {
        std::thread::sleep(Duration::from_secs(2));
        if let Ok(now) = boot_id(session)
            && !now.is_empty()
            && now != before
        {
            return Ok(());
        }
    }
    Err(ProviderError::transient(format!(
        "{} did not come back with a new boot id within {}s",
        session.address(),
        timeout.as_secs()
    )))
}

/// `[{ generation, system, current }]`, oldest first.
fn generations(session: &Session) -> Result<Value> {
    let output = session.run(
        r#"p=/nix/var/nix/profiles/system
echo "current $(readlink "$p")"
for l in "$p"-*-link; do [ -e "$l" ] && echo "${l##*/} $(readlink -f "$l")"; done; true"#,
        &[],
        b"",
    )?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let current = lines
        .next()
        .and_then(|l| l.strip_prefix("current "))
        .and_then(deploy::generation_of);
    let mut list: Vec<(u64, String)> = lines
        .filter_map(|line| {
            let (link, system) = line.split_once(' ')?;
            Some((deploy::generation_of(link)?, system.to_owned()))
        })
        .collect();
    list.sort();
    Ok(Value::Array(
        list.into_iter()
            .map(|(generation, system)| {
                json!({ "generation": generation, "system": system, "current": Some(generation) == current })
            })
            .collect(),
    ))
}

fn parse<T: serde::de::DeserializeOwned>(arguments: Value) -> Result<T> {
    serde_json::from_value(arguments)
        .map_err(|e| ProviderError::invalid_input(format!("operation arguments: {e}")))
}
