//! The LSP handlers: open documents in a map, each with the analysis of its current text;
//! requests answer from a snapshot (a cheap clone), so an edit never waits for them and
//! they never see half an edit. Diagnostics are published after every change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use nixops4_analysis::Schemas;
use nixops4_analysis::completion::CompletionKind;
use nixops4_analysis::diagnostics::Severity;
use nixops4_analysis::outline::{self, TokenKind};
use nixops4_analysis::workspace::{self, File};
use nixops4_core::ResourcePath;
use nixops4_core::engine::{Engine, EngineOptions};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::lsp_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server, UriExt};

use crate::document::Document;
use crate::evaluated;
use crate::project::{Project, Settings};
use crate::runner::Runner;

/// How the server was started.
#[derive(Clone, Copy)]
pub struct Options {
    /// Trust the workspace unless the client says otherwise at initialisation.
    pub trust_workspace: bool,
}

/// Requests and notifications handled at once. An apply holds one for as long as it runs,
/// so there are enough to keep editing meanwhile.
const CONCURRENT_MESSAGES: usize = 16;

pub async fn serve(options: Options) {
    let (service, socket) = LspService::build(|client| Backend {
        client,
        documents: Arc::new(DashMap::new()),
        project: Arc::new(OnceLock::new()),
        options,
        runner: Arc::new(Runner::default()),
        told_untrusted: Arc::default(),
        client_progress: Arc::default(),
        next_token: Arc::default(),
        last_declared: Arc::default(),
    })
    .custom_method("nixops4/documentText", Backend::document_text)
    .custom_method("nixops4/plan", Backend::plan_request)
    .custom_method("window/workDoneProgress/cancel", Backend::cancel_progress)
    .finish();
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .concurrency_level(CONCURRENT_MESSAGES)
        .serve(service)
        .await;
}

/// Cheap to clone, for work spawned off a handler (plans after a save).
#[derive(Clone)]
pub(crate) struct Backend {
    pub(crate) client: Client,
    documents: Arc<DashMap<Uri, Document>>,
    /// Set at initialisation, when the workspace and its trust are known.
    project: Arc<OnceLock<Arc<Project>>>,
    options: Options,
    pub(crate) runner: Arc<Runner>,
    /// Whether the user was told once that an untrusted workspace runs nothing.
    pub(crate) told_untrusted: Arc<AtomicBool>,
    /// Whether the client takes `window/workDoneProgress/create`.
    pub(crate) client_progress: Arc<AtomicBool>,
    pub(crate) next_token: Arc<AtomicU64>,
    /// Where each document last declared each resource, for lenses of deleted ones.
    pub(crate) last_declared: Arc<DashMap<Uri, HashMap<Vec<String>, Range>>>,
}

const TOKEN_TYPES: [SemanticTokenType; 4] = [
    SemanticTokenType::VARIABLE,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::TYPE,
    SemanticTokenType::PARAMETER,
];
const TOKEN_MODIFIERS: [SemanticTokenModifier; 1] = [SemanticTokenModifier::DECLARATION];

/// A document and what the files around it make known.
pub(crate) struct Context {
    pub(crate) document: Document,
    pub(crate) flake_dir: Option<PathBuf>,
    pub(crate) schemas: Arc<Schemas>,
}

/// The answer to `nixops4/documentText`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DocumentText {
    version: i32,
    text: String,
    /// Whether the analysis is of exactly this text.
    analysed: bool,
}

impl Backend {
    /// `window/workDoneProgress/cancel`: stops the job reporting under that token.
    async fn cancel_progress(&self, params: WorkDoneProgressCancelParams) {
        match params.token {
            ProgressToken::String(token) => self.runner.cancel(&token),
            ProgressToken::Number(token) => self.runner.cancel(&token.to_string()),
        }
    }

    /// `nixops4/documentText`: the server's copy of a document, for clients and tests that
    /// check that no edit was lost or misapplied.
    async fn document_text(&self, params: TextDocumentIdentifier) -> Result<Option<DocumentText>> {
        Ok(self.documents.get(&params.uri).map(|document| {
            let text = document.text();
            DocumentText {
                version: document.version,
                analysed: document.analysis.text() == text,
                text,
            }
        }))
    }

    pub(crate) fn project(&self) -> &Arc<Project> {
        self.project
            .get_or_init(|| Arc::new(Project::new(None, false, Settings::default())))
    }

    /// An open document as it is now.
    pub(crate) fn snapshot(&self, uri: &Uri) -> Option<Document> {
        self.documents.get(uri).map(|d| d.clone())
    }

    pub(crate) fn context(&self, uri: &Uri) -> Option<Context> {
        let document = self.snapshot(uri)?;
        let path = uri.to_file_path().map(|p| p.into_owned());
        let flake_dir = path.as_deref().and_then(|p| self.project().flake_dir(p));
        let schemas = self
            .project()
            .schemas(&document.analysis, flake_dir.as_deref());
        Some(Context {
            document,
            flake_dir,
            schemas,
        })
    }

    /// The files of the deployment `uri` belongs to: open ones as they are in the editor,
    /// the others as on disk. The first is `uri`'s.
    fn deployment_files(&self, uri: &Uri) -> Vec<(String, Document)> {
        let Some(document) = self.snapshot(uri) else {
            return Vec::new();
        };
        let mut files = vec![(uri.to_string(), document)];
        let Some(path) = uri.to_file_path().map(|p| p.into_owned()) else {
            return files;
        };
        let project = self.project();
        let flake = project.flake_dir(&path);
        let mut open_paths = Vec::new();
        for entry in self.documents.iter() {
            let Some(other) = entry.key().to_file_path().map(|p| p.into_owned()) else {
                continue;
            };
            if other != path && project.flake_dir(&other) == flake {
                files.push((entry.key().to_string(), entry.value().clone()));
            }
            open_paths.push(other);
        }
        for (disk_path, analysis) in project.disk_files_beside(&path) {
            if open_paths.contains(&disk_path) {
                continue;
            }
            if let Some(uri) = Uri::from_file_path(&disk_path) {
                files.push((uri.to_string(), Document::from_analysis(analysis)));
            }
        }
        files
    }

    async fn publish(&self, uri: Uri) {
        let Some(diagnostics) = self.diagnostics(&uri) else {
            return;
        };
        let (diagnostics, version) = diagnostics;
        self.client
            .publish_diagnostics(uri, diagnostics, Some(version))
            .await;
    }

    fn diagnostics(&self, uri: &Uri) -> Option<(Vec<Diagnostic>, i32)> {
        let context = self.context(uri)?;
        let document = &context.document;
        let found = self.analysis_diagnostics(uri, &context);
        let mut converted: Vec<Diagnostic> =
            found.iter().map(|d| lsp_diagnostic(document, d)).collect();
        converted.extend(self.evaluation_diagnostics(uri, document));
        Some((converted, document.version))
    }

    fn analysis_diagnostics(
        &self,
        uri: &Uri,
        context: &Context,
    ) -> Vec<nixops4_analysis::diagnostics::Diagnostic> {
        let files = self.deployment_files(uri);
        let views: Vec<File> = files
            .iter()
            .map(|(id, d)| File {
                id,
                analysis: &d.analysis,
            })
            .collect();
        let neighbours = workspace::neighbours(&views, &uri.to_string());
        context
            .document
            .analysis
            .diagnostics(&context.schemas, &neighbours)
    }

    /// Republishes every open document's diagnostics (after the files on disk or the
    /// known schemas changed).
    pub(crate) async fn publish_all(&self) {
        let uris: Vec<Uri> = self.documents.iter().map(|e| e.key().clone()).collect();
        for uri in uris {
            self.publish(uri).await;
        }
    }

    /// Asks the providers a document declares for their schemas (trusted workspaces
    /// only), then republishes its diagnostics if any arrived.
    async fn describe_providers(&self, uri: &Uri) {
        let Some(context) = self.context(uri) else {
            return;
        };
        if self
            .project()
            .describe_declared(&context.document.analysis, context.flake_dir.as_deref())
            .await
        {
            self.publish(uri.clone()).await;
        }
    }

    /// After a rename of a resource the state records: offer to move its record too, so
    /// that the next apply does not destroy and recreate it.
    fn offer_state_move(&self, context: &Context, old_path: Vec<String>, new_path: Vec<String>) {
        let Some(flake_dir) = context.flake_dir.clone() else {
            return;
        };
        let recorded = self
            .project()
            .recorded(&context.document.analysis, Some(&flake_dir));
        if !recorded.contains_key(&old_path) {
            return;
        }
        let deployment = context
            .document
            .analysis
            .deployment_name()
            .unwrap_or("default")
            .to_owned();
        let (from, to) = (ResourcePath(old_path), ResourcePath(new_path));
        let client = self.client.clone();
        let trusted = self.project().trusted;
        tokio::spawn(async move {
            if !trusted {
                let message = format!(
                    "{from} is recorded in the state of deployment `{deployment}`. After the rename, run `nixops4 state mv '{from}' '{to}'` so that apply keeps it instead of recreating it (or trust this workspace to do it from here)."
                );
                client.show_message(MessageType::INFO, message).await;
                return;
            }
            let move_it = MessageActionItem {
                title: "Move state record".into(),
                properties: HashMap::new(),
            };
            let question = format!(
                "{from} is recorded in the state of deployment `{deployment}`. Move its record to {to}, so that apply keeps the resource instead of destroying and recreating it?"
            );
            let answer = client
                .show_message_request(
                    MessageType::INFO,
                    question,
                    Some(vec![
                        move_it.clone(),
                        MessageActionItem {
                            title: "Not now".into(),
                            properties: HashMap::new(),
                        },
                    ]),
                )
                .await;
            if !matches!(answer, Ok(Some(ref chosen)) if chosen.title == move_it.title) {
                return;
            }
            let outcome = async {
                let engine = Engine::start(EngineOptions::new(flake_dir, &deployment)).await?;
                let moved = engine.state_move(&from, &to).await;
                engine.shutdown().await;
                moved
            }
            .await;
            match outcome {
                Ok(()) => {
                    client
                        .show_message(
                            MessageType::INFO,
                            format!("Moved {from} to {to} in the state."),
                        )
                        .await
                }
                Err(error) => {
                    client
                        .show_message(
                            MessageType::ERROR,
                            format!("Could not move {from}: {error}"),
                        )
                        .await
                }
            }
        });
    }
}

fn lsp_diagnostic(
    document: &Document,
    d: &nixops4_analysis::diagnostics::Diagnostic,
) -> Diagnostic {
    Diagnostic {
        range: document.range(d.range),
        severity: Some(match d.code.severity() {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_owned())),
        source: Some("nixops4".into()),
        message: d.message.clone(),
        ..Diagnostic::default()
    }
}

/// A file's edits grouped by document, with their positions in that document.
#[allow(clippy::mutable_key_type)] // `Uri` caches its parse; its hash and equality never change.
fn workspace_edit(
    files: &[(String, Document)],
    edits: Vec<(workspace::Location, String)>,
) -> WorkspaceEdit {
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for (location, new_text) in edits {
        let Some((id, document)) = files.iter().find(|(id, _)| *id == location.file) else {
            continue;
        };
        let Ok(uri) = id.parse::<Uri>() else { continue };
        changes.entry(uri).or_default().push(TextEdit {
            range: document.range(location.range),
            new_text,
        });
    }
    WorkspaceEdit {
        changes: Some(changes),
        ..WorkspaceEdit::default()
    }
}

fn locations(files: &[(String, Document)], found: Vec<workspace::Location>) -> Vec<Location> {
    found
        .into_iter()
        .filter_map(|location| {
            let (id, document) = files.iter().find(|(id, _)| *id == location.file)?;
            Some(Location {
                uri: id.parse().ok()?,
                range: document.range(location.range),
            })
        })
        .collect()
}

fn views(files: &[(String, Document)]) -> Vec<File<'_>> {
    files
        .iter()
        .map(|(id, d)| File {
            id,
            analysis: &d.analysis,
        })
        .collect()
}

fn symbol(document: &Document, symbol: outline::Symbol) -> DocumentSymbol {
    #[allow(deprecated)] // `deprecated` is a required field of the struct.
    DocumentSymbol {
        name: if symbol.name.is_empty() {
            "\"\"".into()
        } else {
            symbol.name
        },
        detail: (!symbol.detail.is_empty()).then_some(symbol.detail),
        kind: match symbol.kind {
            outline::SymbolKind::Resource => SymbolKind::OBJECT,
            outline::SymbolKind::NestedDeployment => SymbolKind::NAMESPACE,
            outline::SymbolKind::Input => SymbolKind::PROPERTY,
            outline::SymbolKind::Provider => SymbolKind::MODULE,
        },
        tags: None,
        deprecated: None,
        range: document.range(symbol.range),
        selection_range: document.range(symbol.selection),
        children: Some(
            symbol
                .children
                .into_iter()
                .map(|child| self::symbol(document, child))
                .collect(),
        ),
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let trusted = params
            .initialization_options
            .as_ref()
            .and_then(|o| o.get("trusted"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(self.options.trust_workspace);
        #[allow(deprecated)] // `root_uri`: older clients send only it.
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|folders| folders.first())
            .map(|folder| folder.uri.clone())
            .or(params.root_uri)
            .and_then(|uri| uri.to_file_path().map(|p| p.into_owned()));
        let options = params.initialization_options.as_ref();
        let setting = |name: &str| options.and_then(|o| o.get(name));
        let defaults = Settings::default();
        let settings = Settings {
            plan_on_save: setting("planOnSave")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(defaults.plan_on_save),
            parallelism: setting("parallelism")
                .and_then(serde_json::Value::as_u64)
                .map_or(defaults.parallelism, |n| n.max(1) as usize),
        };
        let _ = self
            .project
            .set(Arc::new(Project::new(root, trusted, settings)));
        let progress = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        self.client_progress.store(progress, Ordering::SeqCst);
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        ..TextDocumentSyncOptions::default()
                    },
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                })),
                document_symbol_provider: Some(OneOf::Left(true)),
                folding_range_provider: Some(FoldingRangeProviderCapability::Simple(true)),
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                        ..CodeActionOptions::default()
                    },
                )),
                semantic_tokens_provider: Some(
                    SemanticTokensServerCapabilities::SemanticTokensOptions(
                        SemanticTokensOptions {
                            legend: SemanticTokensLegend {
                                token_types: TOKEN_TYPES.to_vec(),
                                token_modifiers: TOKEN_MODIFIERS.to_vec(),
                            },
                            full: Some(SemanticTokensFullOptions::Bool(true)),
                            ..SemanticTokensOptions::default()
                        },
                    ),
                ),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: evaluated::COMMANDS.map(str::to_owned).to_vec(),
                    ..ExecuteCommandOptions::default()
                }),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into(), "\"".into()]),
                    ..CompletionOptions::default()
                }),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "nixops4-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let project = self.project().clone();
        if !project.trusted {
            self.client
                .log_message(
                    MessageType::INFO,
                    "nixops4: workspace not trusted: static features only; no provider or `nix` is run",
                )
                .await;
        }
        let _ = tokio::task::spawn_blocking(move || project.scan()).await;
        self.publish_all().await;
    }

    async fn shutdown(&self) -> Result<()> {
        self.runner.shut_down().await;
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let document = params.text_document;
        self.documents.insert(
            document.uri.clone(),
            Document::new(&document.text, document.version),
        );
        self.publish(document.uri.clone()).await;
        self.describe_providers(&document.uri).await;
        self.plan_later(&document.uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        // Applied before the first `.await`: edits keep their order.
        if let Some(mut document) = self.documents.get_mut(&uri) {
            document.change(&params.content_changes, params.text_document.version);
        }
        self.publish(uri).await;
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.describe_providers(&params.text_document.uri).await;
        self.plan_later(&params.text_document.uri);
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        Ok(Some(self.lenses(&params.text_document.uri).await))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        self.execute(params).await
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        self.documents.remove(&uri);
        if let Some(path) = uri.to_file_path() {
            self.project().reload(&path);
        }
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let position = params.text_document_position_params;
        let Some(context) = self.context(&position.text_document.uri) else {
            return Ok(None);
        };
        let document = &context.document;
        let recorded = self
            .project()
            .recorded(&document.analysis, context.flake_dir.as_deref());
        let offset = document.text_size(position.position);
        let Some(info) = document.analysis.hover(offset, &context.schemas, &recorded) else {
            return Ok(None);
        };
        Ok(Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: info.markdown,
            }),
            range: Some(document.range(info.range)),
        }))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let position = params.text_document_position;
        let Some(context) = self.context(&position.text_document.uri) else {
            return Ok(None);
        };
        let document = &context.document;
        let items = document
            .analysis
            .completions(document.text_size(position.position), &context.schemas)
            .into_iter()
            .enumerate()
            .map(|(rank, c)| CompletionItem {
                label: c.label,
                kind: Some(match c.kind {
                    CompletionKind::Type => CompletionItemKind::CLASS,
                    CompletionKind::Input => CompletionItemKind::PROPERTY,
                    CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
                    CompletionKind::Resource => CompletionItemKind::VARIABLE,
                    CompletionKind::Output => CompletionItemKind::FIELD,
                }),
                detail: (!c.detail.is_empty()).then_some(c.detail),
                documentation: (!c.documentation.is_empty()).then_some(
                    Documentation::MarkupContent(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: c.documentation,
                    }),
                ),
                // Keeps the analysis' order (required inputs first).
                sort_text: Some(format!("{rank:04}")),
                insert_text: Some(c.snippet),
                insert_text_format: Some(InsertTextFormat::SNIPPET),
                ..CompletionItem::default()
            })
            .collect();
        Ok(Some(CompletionResponse::Array(items)))
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let position = params.text_document_position_params;
        let uri = position.text_document.uri;
        let files = self.deployment_files(&uri);
        let Some((_, document)) = files.first() else {
            return Ok(None);
        };
        let offset = document.text_size(position.position);
        let found = workspace::definition(&views(&files), uri.as_str(), offset);
        Ok(match locations(&files, found).as_slice() {
            [] => None,
            [one] => Some(GotoDefinitionResponse::Scalar(one.clone())),
            many => Some(GotoDefinitionResponse::Array(many.to_vec())),
        })
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let position = params.text_document_position;
        let uri = position.text_document.uri;
        let files = self.deployment_files(&uri);
        let Some((_, document)) = files.first() else {
            return Ok(None);
        };
        let offset = document.text_size(position.position);
        let found = workspace::references(
            &views(&files),
            uri.as_str(),
            offset,
            params.context.include_declaration,
        );
        Ok(Some(locations(&files, found)))
    }

    async fn prepare_rename(
        &self,
        params: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        let Some(context) = self.context(&params.text_document.uri) else {
            return Ok(None);
        };
        let document = &context.document;
        let offset = document.text_size(params.position);
        match workspace::prepare_rename(&document.analysis, offset) {
            Ok((range, name)) => Ok(Some(PrepareRenameResponse::RangeWithPlaceholder {
                range: document.range(range),
                placeholder: name,
            })),
            Err(reason) => Err(Error::invalid_params(reason)),
        }
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let position = params.text_document_position;
        let uri = position.text_document.uri;
        let files = self.deployment_files(&uri);
        let Some(context) = self.context(&uri) else {
            return Ok(None);
        };
        let offset = context.document.text_size(position.position);
        let rename = workspace::rename(&views(&files), uri.as_str(), offset, &params.new_name)
            .map_err(Error::invalid_params)?;
        self.offer_state_move(&context, rename.old_path, rename.new_path);
        Ok(Some(workspace_edit(&files, rename.edits)))
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        let Some(document) = self.snapshot(&params.text_document.uri) else {
            return Ok(None);
        };
        let symbols = document
            .analysis
            .symbols()
            .into_iter()
            .map(|s| symbol(&document, s))
            .collect();
        Ok(Some(DocumentSymbolResponse::Nested(symbols)))
    }

    async fn folding_range(&self, params: FoldingRangeParams) -> Result<Option<Vec<FoldingRange>>> {
        let Some(document) = self.snapshot(&params.text_document.uri) else {
            return Ok(None);
        };
        let text = document.analysis.text();
        let ranges = document
            .analysis
            .folding_ranges()
            .into_iter()
            .filter_map(|range| {
                let lsp = document.range(range);
                let starts = &text[usize::from(range.start())..];
                let comment = starts.starts_with('#') || starts.starts_with("/*");
                (lsp.start.line < lsp.end.line).then(|| FoldingRange {
                    start_line: lsp.start.line,
                    end_line: lsp.end.line,
                    kind: comment.then_some(FoldingRangeKind::Comment),
                    ..FoldingRange::default()
                })
            })
            .collect();
        Ok(Some(ranges))
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        let Some(document) = self.snapshot(&params.text_document.uri) else {
            return Ok(None);
        };
        let mut data = Vec::new();
        let (mut line, mut character) = (0, 0);
        for (range, kind) in document.analysis.semantic_tokens() {
            let lsp = document.range(range);
            if lsp.start.line != lsp.end.line {
                continue;
            }
            let (token_type, modifiers) = match kind {
                TokenKind::Declaration => (0, 1),
                TokenKind::Reference => (0, 0),
                TokenKind::Output => (1, 0),
                TokenKind::Type => (2, 0),
                TokenKind::Input => (3, 0),
            };
            let delta_line = lsp.start.line - line;
            let delta_start = if delta_line == 0 {
                lsp.start.character - character
            } else {
                lsp.start.character
            };
            data.push(SemanticToken {
                delta_line,
                delta_start,
                length: lsp.end.character - lsp.start.character,
                token_type,
                token_modifiers_bitset: modifiers,
            });
            (line, character) = (lsp.start.line, lsp.start.character);
        }
        Ok(Some(SemanticTokensResult::Tokens(SemanticTokens {
            result_id: None,
            data,
        })))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        let Some(context) = self.context(&uri) else {
            return Ok(None);
        };
        let document = &context.document;
        let wanted = document.text_range(params.range);
        let actions = self
            .analysis_diagnostics(&uri, &context)
            .into_iter()
            .filter(|d| d.range.intersect(wanted).is_some())
            .filter_map(|d| {
                let fix = d.fix.clone()?;
                let edits = fix
                    .edits
                    .into_iter()
                    .map(|(range, new_text)| TextEdit {
                        range: document.range(range),
                        new_text,
                    })
                    .collect();
                Some(CodeActionOrCommand::CodeAction(CodeAction {
                    title: fix.title,
                    kind: Some(CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![lsp_diagnostic(document, &d)]),
                    edit: Some(WorkspaceEdit {
                        changes: Some(HashMap::from([(uri.clone(), edits)])),
                        ..WorkspaceEdit::default()
                    }),
                    is_preferred: Some(true),
                    ..CodeAction::default()
                }))
            })
            .collect::<Vec<_>>();
        let mut actions = actions;
        actions.extend(self.resource_actions(&uri, document, wanted.start(), &context.schemas));
        Ok(Some(actions))
    }
}
