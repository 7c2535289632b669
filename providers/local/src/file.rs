//! `local.file`: a file on this machine with the given contents and permissions.
//!
//! Writes are atomic: the contents go to a temporary file beside the target, which is
//! synced and renamed over it, so a reader (or a crash) sees the old file or the new one,
//! never a mix. Concurrent writers of one path each rename a whole file; the last wins.
//! A writer killed before its rename leaves its temporary file behind: the first write
//! into that directory by a later provider process removes the temporary files whose
//! writer no longer runs.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nixops4_provider_sdk::protocol::{InputPath, Properties};
use nixops4_provider_sdk::{
    Context, ErrorContext, Extant, OperationOutcome, ProviderError, ResourceType, Result, TypeInfo,
    no_arguments,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::paths::{absolute, path_string, sync_parent};
use crate::timestamp;

pub struct LocalFile;

/// Inputs of `local.file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInputs {
    /// Path of the file. A relative path is relative to the directory NixOps4 runs in.
    /// Missing parent directories are created. Changing it replaces the resource: the new
    /// file is written and the old one deleted.
    pub name: String,
    /// The file's contents.
    pub contents: String,
    /// Permissions as an octal string, such as "0600" or "755". Without it the file gets
    /// the default permissions (0666 less the umask).
    #[serde(default)]
    #[schemars(pattern(r"^0?[0-7]{3}$"))]
    pub mode: Option<String>,
}

/// Outputs of `local.file`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOutputs {
    /// Absolute path of the file.
    pub path: String,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

impl ResourceType for LocalFile {
    type Inputs = FileInputs;
    type Outputs = FileOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new("A file on the machine that runs NixOps4, written atomically.")
            .replace_on_change("name")
            .operation(
                "backup",
                "Copy the file to a timestamped sibling (`<name>.backup-<UTC time>`) and return its path.",
                no_arguments(),
            )
    }

    fn create(&self, inputs: FileInputs, _: &Context) -> Result<FileOutputs> {
        write_file(&inputs)
    }

    fn read(&self, resource: Extant<FileInputs, FileOutputs>) -> Result<Option<FileOutputs>> {
        let path = recorded_path(&resource)?;
        match fs::read(&path) {
            Ok(contents) => Ok(Some(FileOutputs {
                path: path_string(&path)?,
                sha256: sha256_hex(&contents),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ProviderError::internal(format!(
                "reading {}: {e}",
                path.display()
            ))),
        }
    }

    fn update(
        &self,
        previous: Extant<FileInputs, FileOutputs>,
        inputs: FileInputs,
        _: &Context,
    ) -> Result<FileOutputs> {
        let outputs = write_file(&inputs)?;
        // A client that does not replace on a change of `name` still gets a clean move.
        let old = recorded_path(&previous)?;
        if path_string(&old)? != outputs.path {
            remove_file(&old)?;
        }
        Ok(outputs)
    }

    fn destroy(&self, resource: Extant<FileInputs, FileOutputs>) -> Result<()> {
        remove_file(&recorded_path(&resource)?)
    }

    fn operation(
        &self,
        _name: &str,
        resource: Extant<FileInputs, FileOutputs>,
        _arguments: Properties,
        _: &Context,
    ) -> Result<OperationOutcome<FileOutputs>> {
        // `backup` is the only operation; the SDK checked the name.
        let source = recorded_path(&resource)?;
        if !source.exists() {
            return Err(ProviderError::not_found(format!(
                "cannot back up {}: the file does not exist",
                source.display()
            )));
        }
        let stamp = timestamp::compact_utc();
        let mut target = sibling(&source, &format!(".backup-{stamp}"));
        let mut n = 1;
        while target.exists() {
            n += 1;
            target = sibling(&source, &format!(".backup-{stamp}-{n}"));
        }
        fs::copy(&source, &target).context(format!(
            "copying {} to {}",
            source.display(),
            target.display()
        ))?;
        tracing::info!("backed up {} to {}", source.display(), target.display());
        Ok(OperationOutcome {
            result: serde_json::json!({ "path": path_string(&target)? }),
            outputs: None,
        })
    }
}

fn write_file(inputs: &FileInputs) -> Result<FileOutputs> {
    let path = absolute(&inputs.name)?;
    let mode = inputs
        .mode
        .as_deref()
        .map(|mode| {
            u32::from_str_radix(mode, 8).map_err(|e| {
                ProviderError::invalid_input(format!("mode {mode:?} is not octal: {e}"))
                    .at(InputPath::key("mode"))
            })
        })
        .transpose()?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).context(format!("creating directory {}", parent.display()))?;
        remove_stale_temporaries(parent);
    }
    let temporary = temporary_sibling(&path);
    let written = write_synced(&temporary, inputs.contents.as_bytes(), mode).and_then(|()| {
        fs::rename(&temporary, &path).context(format!(
            "renaming {} to {}",
            temporary.display(),
            path.display()
        ))
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(e);
    }
    sync_parent(&path)?;
    Ok(FileOutputs {
        path: path_string(&path)?,
        sha256: sha256_hex(inputs.contents.as_bytes()),
    })
}

fn write_synced(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
    let doing = || format!("writing {}", path.display());
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(path)
        .context(doing())?;
    if let Some(mode) = mode {
        file.set_permissions(fs::Permissions::from_mode(mode))
            .context(doing())?;
    }
    file.write_all(contents).context(doing())?;
    file.sync_all().context(doing())
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ProviderError::internal(format!(
            "deleting {}: {e}",
            path.display()
        ))),
    }
}

/// A name beside `path` that no other writer, in this process or another, will pick.
fn temporary_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.nixops4-{}-{n}.tmp", std::process::id()))
}

/// Removes the temporary files of writers that were killed before their rename, once per
/// directory and process: a directory of many files is read once, not once per write.
/// A temporary file whose writer still runs (or whose process id was reused) stays.
fn remove_stale_temporaries(directory: &Path) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let first_visit = SWEPT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(directory.to_owned());
    if !first_visit {
        return;
    }
    let Ok(entries) = fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let writer = name.to_str().and_then(temporary_writer);
        if writer.is_some_and(|pid| !process_runs(pid)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The process id in a name [`temporary_sibling`] makes: `.<name>.nixops4-<pid>-<n>.tmp`.
fn temporary_writer(file_name: &str) -> Option<u32> {
    let stem = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, writer) = stem.rsplit_once(".nixops4-")?;
    let (pid, n) = writer.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn process_runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let answer = unsafe { libc::kill(pid, 0) };
    answer == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Where an existing file is: the absolute path recorded at creation when known, so that
/// running NixOps4 from another directory cannot redirect a delete to another file.
fn recorded_path(resource: &Extant<FileInputs, FileOutputs>) -> Result<PathBuf> {
    match &resource.outputs {
        Some(outputs) => Ok(PathBuf::from(&outputs.path)),
        None => absolute(&resource.inputs.name),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_digest() {
        assert_eq!(
            sha256_hex(b"Hello\n"),
            "66a045b452102c59d840ec097d59d9467e13a3f34f6494e539ffd32c1bb35f18"
        );
    }

    #[test]
    fn temporary_names_differ_and_stay_beside_the_target() {
        let a = temporary_sibling(Path::new("/x/y/file.txt"));
        let b = temporary_sibling(Path::new("/x/y/file.txt"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/x/y")));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert_eq!(temporary_writer(name), Some(std::process::id()));
        assert_eq!(temporary_writer(".file.txt.tmp"), None);
        assert_eq!(temporary_writer(".file.txt.nixops4-12-x.tmp"), None);
    }
}
