//! The LSP handlers: open documents in a map, analysis on a snapshot of the text,
//! diagnostics published after every change.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use dashmap::DashMap;
use nixops4_analysis::completion::CompletionKind;
use nixops4_analysis::{Analysis, Schemas, TextSize};
use nixops4_provider_protocol::Response;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::lsp_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use crate::document::Document;

pub async fn serve() {
    let schemas = local_schemas();
    let (service, socket) = LspService::new(|client| Backend {
        client,
        documents: DashMap::new(),
        schemas,
    });
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .serve(service)
        .await;
}

struct Backend {
    client: Client,
    documents: DashMap<Uri, Document>,
    schemas: Schemas,
}

/// The built-in local provider's types, from its `describe` (our own program, beside this
/// one, so asking it is safe in any workspace).
fn local_schemas() -> Schemas {
    let mut schemas = Schemas::default();
    let program = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("nixops4-resources-local")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "nixops4-resources-local".into());
    let Ok(mut child) = Command::new(&program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return schemas;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{{\"describeRequest\":{{}}}}");
    }
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let _ = child.wait();
    if let Ok(Response::DescribeResponse(description)) = serde_json::from_str(&line) {
        schemas.add_provider("local", &description);
    }
    schemas
}

impl Backend {
    async fn publish(&self, uri: Uri) {
        let Some((text, version)) = self.documents.get(&uri).map(|d| (d.text(), d.version)) else {
            return;
        };
        let diagnostics = self.diagnostics(&text, version);
        self.client
            .publish_diagnostics(uri, diagnostics, Some(version))
            .await;
    }

    /// Computed apart from `publish`: the syntax tree cannot live across an `.await`.
    fn diagnostics(&self, text: &str, version: i32) -> Vec<Diagnostic> {
        let analysis = Analysis::new(text);
        let document = Document::new(text, version);
        analysis
            .diagnostics(&self.schemas)
            .into_iter()
            .map(|d| Diagnostic {
                range: document.range(usize::from(d.range.start()), usize::from(d.range.end())),
                severity: Some(if d.code == "syntax" {
                    DiagnosticSeverity::ERROR
                } else {
                    DiagnosticSeverity::WARNING
                }),
                code: Some(NumberOrString::String(d.code.to_owned())),
                source: Some("nixops4".into()),
                message: d.message,
                ..Diagnostic::default()
            })
            .collect()
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                definition_provider: Some(OneOf::Left(true)),
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

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let document = params.text_document;
        self.documents.insert(
            document.uri.clone(),
            Document::new(&document.text, document.version),
        );
        self.publish(document.uri).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        // Applied before the first `.await`: edits keep their order.
        if let Some(mut document) = self.documents.get_mut(&uri) {
            for change in &params.content_changes {
                document.apply(change);
            }
            document.version = params.text_document.version;
        }
        self.publish(uri).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        self.documents.remove(&params.text_document.uri);
        self.client
            .publish_diagnostics(params.text_document.uri, Vec::new(), None)
            .await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let position = params.text_document_position_params;
        let Some(text) = self
            .documents
            .get(&position.text_document.uri)
            .map(|d| d.text())
        else {
            return Ok(None);
        };
        let document = Document::new(&text, 0);
        let offset = document.offset(position.position);
        let Some(info) = Analysis::new(&text).hover(TextSize::from(offset as u32), &self.schemas)
        else {
            return Ok(None);
        };
        Ok(Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: info.markdown,
            }),
            range: Some(document.range(
                usize::from(info.range.start()),
                usize::from(info.range.end()),
            )),
        }))
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let position = params.text_document_position_params;
        let uri = position.text_document.uri;
        let Some(text) = self.documents.get(&uri).map(|d| d.text()) else {
            return Ok(None);
        };
        let document = Document::new(&text, 0);
        let offset = document.offset(position.position);
        let Some(range) = Analysis::new(&text).definition(TextSize::from(offset as u32)) else {
            return Ok(None);
        };
        let range = document.range(usize::from(range.start()), usize::from(range.end()));
        Ok(Some(GotoDefinitionResponse::Scalar(Location {
            uri,
            range,
        })))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let position = params.text_document_position;
        let Some((text, offset)) = self
            .documents
            .get(&position.text_document.uri)
            .map(|d| (d.text(), d.offset(position.position)))
        else {
            return Ok(None);
        };
        let analysis = Analysis::new(&text);
        let items = analysis
            .completions(TextSize::from(offset as u32), &self.schemas)
            .into_iter()
            .map(|c| CompletionItem {
                label: c.label,
                kind: Some(match c.kind {
                    CompletionKind::Type => CompletionItemKind::CLASS,
                    CompletionKind::Input => CompletionItemKind::PROPERTY,
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
                insert_text: Some(c.snippet),
                insert_text_format: Some(InsertTextFormat::SNIPPET),
                ..CompletionItem::default()
            })
            .collect();
        Ok(Some(CompletionResponse::Array(items)))
    }
}
