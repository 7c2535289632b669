//! The workspace as the server sees it beyond the open documents: the deployment files on
//! disk (modules reference each other's resources), which flake a file belongs to, the
//! schemas of the providers a file declares, and the values its state last recorded.
//!
//! Trust decides what may run or be read: an untrusted workspace never starts a process
//! and reads only files inside the workspace folder. The built-in local provider's schemas
//! come from the library itself, so they need neither.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use nixops4_analysis::declarations::DeclaredProvider;
use nixops4_analysis::{Analysis, Recorded, RecordedResource, Schemas};
use nixops4_core::ResourcePath;
use nixops4_core::provider_client::{ProviderCommand, ProviderProcess};
use nixops4_core::secrets::Secrets;
use nixops4_core::state::ResourceRecord;
use nixops4_provider_protocol::{DescribeRequest, DescribeResponse, Request, Response};

/// Deployment files read from disk, at most: beyond that, modules in unread files are not
/// seen (their references show as unknown).
const MOST_FILES: usize = 5_000;
/// Larger files are not deployment modules anyone writes by hand.
const LARGEST_FILE: u64 = 4 << 20;
const SKIPPED_DIRECTORIES: &[&str] = &[".git", ".nixops4", "node_modules", "target", ".direnv"];
/// How long a declared provider may take to describe itself.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A declared provider, as started to ask for its schemas.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ProviderKey {
    executable: PathBuf,
    args: Vec<String>,
}

/// What the client asks for at initialisation (`initializationOptions`).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Plan after every open and save (trusted workspaces only).
    pub plan_on_save: bool,
    /// How many provider calls a job may run at once.
    pub parallelism: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            plan_on_save: true,
            parallelism: 10,
        }
    }
}

pub struct Project {
    root: Option<PathBuf>,
    trusted: bool,
    settings: Settings,
    /// Files on disk that are not open, analysed.
    disk: DashMap<PathBuf, Arc<Analysis>>,
    /// Files open in the editor, whose text is the editor's: never also read from disk.
    open: DashMap<PathBuf, ()>,
    /// The flake each file is in, as last looked up (`forget_flakes` after files change).
    flakes: DashMap<PathBuf, Option<PathBuf>>,
    local: Arc<Schemas>,
    /// Declared providers' descriptions (`None`: it could not describe itself).
    described: Mutex<HashMap<ProviderKey, Option<DescribeResponse>>>,
    /// The last state read, by state file, with the modification time it was read at.
    states: Mutex<HashMap<PathBuf, (SystemTime, Arc<Recorded>)>>,
}

impl Project {
    pub fn new(root: Option<PathBuf>, trusted: bool, settings: Settings) -> Project {
        let mut local = Schemas::default();
        local.add_provider("local", &nixops4_resources_local::provider().describe());
        Project {
            root: root.map(|r| r.canonicalize().unwrap_or(r)),
            trusted,
            settings,
            disk: DashMap::new(),
            open: DashMap::new(),
            flakes: DashMap::new(),
            local: Arc::new(local),
            described: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the workspace is trusted: then it may run `nix` and providers, and read
    /// files anywhere.
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Whether the server may look at `path` (a directory it walks up): always inside the
    /// workspace as written, anywhere when trusted.
    fn readable(&self, path: &Path) -> bool {
        self.trusted
            || self
                .root
                .as_ref()
                .is_some_and(|root| path.starts_with(root))
    }

    /// Whether the server may open `path`: anywhere when trusted; else only when the file
    /// it really is (links and `..` resolved) lies inside the workspace. Asked before a
    /// file is opened, never after.
    fn may_open(&self, path: &Path) -> bool {
        self.trusted
            || path.canonicalize().is_ok_and(|real| {
                self.root
                    .as_ref()
                    .is_some_and(|root| real.starts_with(root))
            })
    }

    /// A deployment file's text: only a regular file the server may open and small
    /// enough, checked before it is opened (a FIFO would block, a device never end).
    fn read_checked(&self, path: &Path) -> Option<String> {
        if !self.may_open(path) {
            return None;
        }
        let metadata = std::fs::metadata(path).ok()?;
        if !metadata.is_file() || metadata.len() > LARGEST_FILE {
            return None;
        }
        std::fs::read_to_string(path).ok()
    }

    /// Reads and analyses the workspace's `.nix` files.
    pub fn scan(&self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut pending = vec![root];
        let mut seen = 0;
        while let Some(directory) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&directory) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if kind.is_dir() {
                    if !SKIPPED_DIRECTORIES.contains(&name.as_ref()) && !name.starts_with("result")
                    {
                        pending.push(path);
                    }
                } else if kind.is_file() && name.ends_with(".nix") {
                    if seen == MOST_FILES {
                        return;
                    }
                    seen += 1;
                    self.reload(&path);
                }
            }
        }
    }

    /// Reads a file again (it changed on disk or was closed), unless it is open.
    pub fn reload(&self, path: &Path) {
        if self.open.contains_key(path) {
            return;
        }
        match self.read_checked(path) {
            Some(text) => {
                self.disk
                    .insert(path.to_owned(), Arc::new(Analysis::new(&text)));
                // Opened while it was read (the scan that starts with the session reads the
                // file the editor opens first): `opened` may have come before the insert.
                if self.open.contains_key(path) {
                    self.disk.remove(path);
                }
            }
            None => {
                self.disk.remove(path);
            }
        }
    }

    /// A file was opened in the editor: what was read of it from disk is let go.
    pub fn opened(&self, path: &Path) {
        self.open.insert(path.to_owned(), ());
        self.disk.remove(path);
    }

    /// A file was closed in the editor: from now on it is read from disk.
    pub fn closed(&self, path: &Path) {
        self.open.remove(path);
        self.reload(path);
    }

    /// The directory of the flake a file belongs to: the nearest one above it with a
    /// `flake.nix`, not above the workspace unless trusted.
    pub fn flake_dir(&self, file: &Path) -> Option<PathBuf> {
        if let Some(known) = self.flakes.get(file) {
            return known.clone();
        }
        let found = file
            .ancestors()
            .skip(1)
            .take_while(|dir| self.readable(dir))
            .find(|dir| dir.join("flake.nix").is_file())
            .map(Path::to_owned);
        self.flakes.insert(file.to_owned(), found.clone());
        found
    }

    /// Forgets which flake each file is in, after files were opened, saved, closed or
    /// changed on disk (a `flake.nix` may have come or gone).
    pub fn forget_flakes(&self) {
        self.flakes.clear();
    }

    /// The files on disk in the same flake as `file` (all of them outside any flake).
    pub fn disk_files_beside(&self, file: &Path) -> Vec<(PathBuf, Arc<Analysis>)> {
        let flake = self.flake_dir(file);
        self.disk
            .iter()
            .filter(|entry| self.flake_dir(entry.key()) == flake)
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect()
    }

    /// The schemas for a file: the local provider's, and those of the providers it declares
    /// that have described themselves.
    pub fn schemas(&self, analysis: &Analysis, flake_dir: Option<&Path>) -> Arc<Schemas> {
        let declared = self.declared(analysis, flake_dir);
        if declared.is_empty() {
            return self.local.clone();
        }
        let described = self.described.lock().unwrap_or_else(|e| e.into_inner());
        let mut schemas = (*self.local).clone();
        for (name, key) in declared {
            if let Some(Some(description)) = described.get(&key) {
                schemas.add_provider(&name, description);
            }
        }
        Arc::new(schemas)
    }

    /// The providers a file declares with a literal executable, first declaration of a
    /// name first.
    fn declared(
        &self,
        analysis: &Analysis,
        flake_dir: Option<&Path>,
    ) -> Vec<(String, ProviderKey)> {
        let mut declared: Vec<(String, ProviderKey)> = Vec::new();
        for DeclaredProvider {
            name,
            executable,
            args,
        } in analysis.declared_providers()
        {
            let Some(executable) = executable else {
                continue;
            };
            if declared.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let path = Path::new(&executable);
            let executable = match flake_dir {
                Some(dir) if path.is_relative() && executable.contains('/') => dir.join(path),
                _ => path.to_owned(),
            };
            declared.push((name, ProviderKey { executable, args }));
        }
        declared
    }

    /// Asks the declared providers not asked before for their schemas, when the workspace
    /// is trusted. Whether any new schema arrived.
    pub async fn describe_declared(&self, analysis: &Analysis, flake_dir: Option<&Path>) -> bool {
        if !self.trusted {
            return false;
        }
        let mut learned = false;
        for (name, key) in self.declared(analysis, flake_dir) {
            let known = self
                .described
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&key);
            if known || !is_program(&key.executable) {
                continue;
            }
            let mut command = ProviderCommand::new(&key.executable).labelled(&name);
            command.args = key.args.clone();
            if let Some(dir) = flake_dir {
                command = command.in_directory(dir);
            }
            let description = describe(&command).await;
            learned |= description.is_some();
            self.described
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, description);
        }
        learned
    }

    /// What the state of a file's deployment last recorded; empty when there is no state
    /// or it cannot be read.
    pub fn recorded(&self, analysis: &Analysis, flake_dir: Option<&Path>) -> Arc<Recorded> {
        let Some(flake_dir) = flake_dir else {
            return Arc::default();
        };
        let file = state_file(analysis, flake_dir);
        if !self.may_open(&file) {
            return Arc::default();
        }
        let Ok(modified) = std::fs::metadata(&file).and_then(|m| m.modified()) else {
            return Arc::default();
        };
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((read_at, recorded)) = states.get(&file)
            && *read_at == modified
        {
            return recorded.clone();
        }
        let recorded: Recorded = match nixops4_resources_local::read_document(&file) {
            Ok(document) => self.hiding_secrets(nixops4_core::state::records_of(&document)),
            Err(_) => BTreeMap::new(),
        };
        let recorded = Arc::new(recorded);
        states.insert(file, (modified, recorded.clone()));
        recorded
    }
}

impl Project {
    /// The records with every value that is or contains a secret output of any of them
    /// shown as `(sensitive)`, so that hover shows no secret and nothing made from one.
    fn hiding_secrets(&self, records: BTreeMap<ResourcePath, ResourceRecord>) -> Recorded {
        let secrets = Secrets::default();
        for record in records.values() {
            secrets.learn_outputs(&self.secret_outputs(record), &record.output_properties);
        }
        records
            .into_iter()
            .map(|(path, mut record)| {
                secrets.hide_properties(&mut record.input_properties);
                secrets.hide_properties(&mut record.output_properties);
                let resource = RecordedResource {
                    inputs: record.input_properties,
                    outputs: record.output_properties,
                };
                (path.0, resource)
            })
            .collect()
    }

    /// The outputs of a record that are secret: as it says, else as its provider described
    /// them to this server (nothing is started for it here).
    fn secret_outputs(&self, record: &ResourceRecord) -> Vec<String> {
        let Some(meta) = &record.nixops4 else {
            return Vec::new();
        };
        if let Some(names) = &meta.secret_outputs {
            return names.clone();
        }
        let description = match &meta.provider.executable {
            None => self.local.types.get(&meta.type_name).cloned(),
            Some(executable) => {
                let key = ProviderKey {
                    executable: PathBuf::from(executable),
                    args: meta.provider.args.clone(),
                };
                self.described
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .and_then(|d| {
                        d.as_ref()?
                            .resource_types
                            .get(&record.resource_type)
                            .cloned()
                    })
            }
        };
        description.map(|d| d.secret_outputs).unwrap_or_default()
    }
}

/// The state file of a file's deployment as far as the text tells: the one its
/// `local.state_file` resource names with a literal, else the default of the deployment the
/// file defines (`default` when it names none).
pub fn state_file(analysis: &Analysis, flake_dir: &Path) -> PathBuf {
    match analysis.state_file_name() {
        Some(name) => flake_dir.join(name),
        None => nixops4_core::engine::default_state_file(
            flake_dir,
            analysis.deployment_name().unwrap_or("default"),
        ),
    }
}

/// Whether `executable` names a program that exists: a path to a file, or a name on PATH.
fn is_program(executable: &Path) -> bool {
    if executable.components().count() > 1 {
        return executable.is_file();
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join(executable).is_file())
    })
}

async fn describe(command: &ProviderCommand) -> Option<DescribeResponse> {
    let mut process = ProviderProcess::start(command, DESCRIBE_TIMEOUT)
        .await
        .ok()?;
    let answer = process
        .request(&Request::DescribeRequest(DescribeRequest {}))
        .await;
    let _ = process.close().await;
    match answer {
        Ok(Response::DescribeResponse(description)) => Some(description),
        _ => None,
    }
}
