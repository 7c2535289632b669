//! What a request works on: a [`Snapshot`] of the open documents, taken when the request
//! was read (so later edits never show up half-way through it), and the [`Session`] of
//! this server, made at initialisation: the client, the project on disk, the runner of
//! plans and jobs, and the few caches those fill behind their own locks.
//!
//! Only the main loop ([`crate::server`]) changes the documents; everything else reads a
//! snapshot of them, and a task that needs the documents as they are later asks the main
//! loop through an [`Event`].

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use lsp_types::{MessageType, Range, Uri};
use nixops4_analysis::options::ModuleOption;
use nixops4_analysis::workspace::{self, File};
use nixops4_analysis::{Analysis, Schemas};
use tokio::sync::mpsc::UnboundedSender;

use crate::client::Client;
use crate::document::Document;
use crate::from_proto;
use crate::lsp_ext::ResourceOperations;
use crate::project::Project;
use crate::runner::{Deployment, Runner};

pub type Documents = HashMap<Uri, Document>;

/// What tasks ask of the main loop, which alone sees the documents as they are now.
pub enum Event {
    /// A deployment's plan was stored: refresh the lenses and diagnostics, tell the client.
    PlanStored(Deployment),
    /// What diagnostics depend on changed (schemas learned, files read): publish those of
    /// this document again, or of all when `None`.
    Republish(Option<Uri>),
}

/// This server's state besides the documents, shared by every request and task.
pub struct Session {
    client: Client,
    project: Project,
    runner: Runner,
    /// Whether the client takes `window/workDoneProgress/create`.
    client_progress: bool,
    /// Whether the user was told once that an untrusted workspace runs nothing.
    told_untrusted: AtomicBool,
    /// Where each document last declared each resource, for lenses of deleted ones.
    last_declared: Mutex<HashMap<Uri, HashMap<Vec<String>, Range>>>,
    /// What the other files of each document's deployment declare at top level, with the
    /// analyses it was read from: a keystroke in one file of a flake reads the others'
    /// names again only when one of them changed, so that its cost does not grow with them.
    neighbours: Mutex<HashMap<Uri, Neighbours>>,
    events: UnboundedSender<Event>,
}

struct Neighbours {
    /// Weak, so that an edited file's analysis is let go; its allocation stays, so that no
    /// other analysis can take its address while this is held.
    read_from: Vec<Weak<Analysis>>,
    names: Arc<BTreeSet<String>>,
}

impl Session {
    pub fn new(
        client: Client,
        project: Project,
        client_progress: bool,
        events: UnboundedSender<Event>,
    ) -> Session {
        let plans = events.clone();
        Session {
            client,
            project,
            runner: Runner::new(move |deployment| {
                let _ = plans.send(Event::PlanStored(deployment.clone()));
            }),
            client_progress,
            told_untrusted: AtomicBool::new(false),
            last_declared: Mutex::default(),
            neighbours: Mutex::default(),
            events,
        }
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Asks the main loop to do something with the documents as they are then.
    pub fn send(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

/// The open documents at one moment, and the session. Cheap to clone.
#[derive(Clone)]
pub struct Snapshot {
    documents: Arc<Documents>,
    session: Arc<Session>,
}

/// A document and what the files around it make known.
pub struct Context {
    pub document: Document,
    pub flake_dir: Option<PathBuf>,
    pub schemas: Arc<Schemas>,
}

impl Snapshot {
    pub fn new(documents: Arc<Documents>, session: Arc<Session>) -> Snapshot {
        Snapshot { documents, session }
    }

    /// The session alone, for a task that outlives the request (and should not keep
    /// the documents it saw).
    pub fn shared_session(&self) -> Arc<Session> {
        self.session.clone()
    }

    pub fn client(&self) -> &Client {
        &self.session.client
    }

    pub fn project(&self) -> &Project {
        &self.session.project
    }

    pub fn runner(&self) -> &Runner {
        &self.session.runner
    }

    pub fn client_progress(&self) -> bool {
        self.session.client_progress
    }

    pub fn document(&self, uri: &Uri) -> Option<&Document> {
        self.documents.get(uri)
    }

    pub fn uris(&self) -> impl Iterator<Item = &Uri> {
        self.documents.keys()
    }

    pub fn context(&self, uri: &Uri) -> Option<Context> {
        let document = self.document(uri)?.clone();
        let flake_dir = from_proto::file_path(uri).and_then(|p| self.project().flake_dir(&p));
        let schemas = self
            .project()
            .schemas(document.analysis(), flake_dir.as_deref());
        Some(Context {
            document,
            flake_dir,
            schemas,
        })
    }

    /// The analyses of the other files of the deployment `uri` belongs to (module files), for
    /// the questions whose answer another file may hold.
    pub fn other_analyses(&self, uri: &Uri) -> Vec<Arc<Analysis>> {
        self.deployment_analyses(uri)
            .into_iter()
            .skip(1)
            .map(|(_, analysis)| analysis)
            .collect()
    }

    /// The files of the deployment `uri` belongs to, with what a request needs to give
    /// positions in them: open ones as they are in the editor, the others as on disk. The
    /// first is `uri`'s.
    pub fn deployment_files(&self, uri: &Uri) -> Vec<(String, Document)> {
        self.deployment_analyses(uri)
            .into_iter()
            .map(|(uri, analysis)| {
                let document = self.document(&uri).cloned();
                let document = document.unwrap_or_else(|| Document::from_analysis(analysis, 0));
                (uri.to_string(), document)
            })
            .collect()
    }

    /// The analyses of the files of the deployment `uri` belongs to, by URI: open ones as
    /// they are in the editor, the others as on disk; `uri`'s first. Without the line starts
    /// of the files on disk, which every keystroke's completion and diagnostics would
    /// otherwise count again.
    fn deployment_analyses(&self, uri: &Uri) -> Vec<(Uri, Arc<Analysis>)> {
        let Some(document) = self.document(uri) else {
            return Vec::new();
        };
        let mut files = vec![(uri.clone(), document.analysis().clone())];
        let Some(path) = from_proto::file_path(uri) else {
            return files;
        };
        let project = self.project();
        let flake = project.flake_dir(&path);
        let mut open_paths = Vec::new();
        for (other_uri, other) in self.documents.iter() {
            let Some(other_path) = from_proto::file_path(other_uri) else {
                continue;
            };
            if other_path != path && project.flake_dir(&other_path) == flake {
                files.push((other_uri.clone(), other.analysis().clone()));
            }
            open_paths.push(other_path);
        }
        for (disk_path, analysis) in project.disk_files_beside(&path) {
            if open_paths.contains(&disk_path) {
                continue;
            }
            if let Some(uri) = crate::to_proto::file_uri(&disk_path) {
                files.push((uri, analysis));
            }
        }
        files
    }

    /// The deployment a document belongs to: its flake, and the deployment it defines
    /// (`default` when it defines none, as module files do).
    pub fn deployment_of(&self, uri: &Uri) -> Option<Deployment> {
        let document = self.document(uri)?;
        let path = from_proto::file_path(uri)?;
        Some(Deployment {
            parallelism: self.project().settings().parallelism,
            flake_dir: self.project().flake_dir(&path)?,
            name: document
                .analysis()
                .deployment_name()
                .unwrap_or("default")
                .to_owned(),
        })
    }

    /// The custom operations of each resource the document declares, from its type's schema,
    /// for clients that offer them in a list.
    pub fn resource_operations(&self, uri: &Uri) -> Vec<ResourceOperations> {
        let Some(context) = self.context(uri) else {
            return Vec::new();
        };
        let analysis = context.document.analysis();
        analysis
            .declared_resources()
            .into_iter()
            .filter_map(|resource| {
                let operations: Vec<String> = analysis
                    .operations(&resource, &context.schemas)
                    .keys()
                    .cloned()
                    .collect();
                (!operations.is_empty()).then_some(ResourceOperations {
                    resource: resource.path,
                    operations,
                })
            })
            .collect()
    }

    /// The module options of the deployment `uri` belongs to, as of its latest plan; none
    /// in an untrusted workspace, where nothing is evaluated.
    pub fn module_options(&self, uri: &Uri) -> Arc<Vec<ModuleOption>> {
        if !self.project().trusted() {
            return Arc::default();
        }
        self.deployment_of(uri)
            .map(|deployment| self.runner().options(&deployment))
            .unwrap_or_default()
    }

    /// The deployment's scripts as of its latest plan (none when they could not be listed).
    pub fn scripts(&self, deployment: &Deployment) -> Arc<Vec<nixops4_core::DeclaredScript>> {
        match self.runner().scripts(deployment) {
            Some(Ok(scripts)) => scripts,
            _ => Arc::default(),
        }
    }

    /// Whether evaluation may run; if not, says why (once).
    pub fn may_evaluate(&self) -> bool {
        if self.project().trusted() {
            return true;
        }
        if !self.session.told_untrusted.swap(true, Ordering::SeqCst) {
            self.client().show_message(
                MessageType::WARNING,
                "NixOps4: this workspace is not trusted, so plans, apply and operations are off: they would run `nix` and the providers it declares. Trust the workspace to use them.",
            );
        }
        false
    }

    /// The resources the other files of `uri`'s deployment declare at top level (which its
    /// references may name), read again only when one of those files changed.
    pub fn neighbours(&self, uri: &Uri) -> Arc<BTreeSet<String>> {
        let files = self.deployment_analyses(uri);
        let others = files.get(1..).unwrap_or_default();
        let mut all = self
            .session
            .neighbours
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(known) = all.get(uri)
            && known.read_from.len() == others.len()
            && known
                .read_from
                .iter()
                .zip(others)
                .all(|(was, (_, now))| std::ptr::eq(was.as_ptr(), Arc::as_ptr(now)))
        {
            return known.names.clone();
        }
        let views: Vec<File> = files
            .iter()
            .map(|(id, analysis)| File {
                id: id.as_str(),
                analysis,
            })
            .collect();
        let names = Arc::new(workspace::neighbours(&views, uri.as_str()));
        let read_from = others
            .iter()
            .map(|(_, analysis)| Arc::downgrade(analysis))
            .collect();
        all.insert(
            uri.clone(),
            Neighbours {
                read_from,
                names: names.clone(),
            },
        );
        names
    }

    /// Forgets what was kept for a document that was closed.
    pub fn forget(&self, uri: &Uri) {
        self.session
            .neighbours
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uri);
    }

    /// Where `uri` last declared each resource, updated by `update` (the lenses keep a
    /// deleted resource's lens where it was).
    pub fn with_last_declared<T>(
        &self,
        uri: &Uri,
        update: impl FnOnce(&mut HashMap<Vec<String>, Range>) -> T,
    ) -> T {
        let mut all = self
            .session
            .last_declared
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        update(all.entry(uri.clone()).or_default())
    }
}
