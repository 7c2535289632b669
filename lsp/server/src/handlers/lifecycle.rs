//! `initialize` (the session: workspace, trust, settings; the capabilities), `initialized`
//! (the workspace's files read) and `shutdown` (running jobs interrupted and waited for).

use std::future::{Future, Ready, ready};

use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, CodeLensOptions,
    CompletionOptions, ExecuteCommandOptions, FoldingRangeProviderCapability,
    HoverProviderCapability, InitializeParams, InitializeResult, InitializedParams, MessageType,
    OneOf, RenameOptions, SemanticTokensFullOptions, SemanticTokensOptions,
    SemanticTokensServerCapabilities, ServerCapabilities, ServerInfo, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions,
    WorkDoneProgressOptions,
};
use serde_json::Value;

use super::Result;
use crate::lsp_ext::Command;
use crate::project::{Project, Settings};
use crate::snapshot::{Event, Session};
use crate::state::State;
use crate::{from_proto, memory, to_proto};

pub fn initialize(state: &mut State, params: InitializeParams) -> Ready<Result<InitializeResult>> {
    let options = params.initialization_options.as_ref();
    let option = |name: &str| options.and_then(|o| o.get(name));
    let trusted = option("trusted")
        .and_then(Value::as_bool)
        .unwrap_or(state.options().trust_workspace);
    #[allow(deprecated)] // `root_uri`: older clients send only it.
    let root = params
        .workspace_folders
        .as_ref()
        .and_then(|folders| folders.first())
        .map(|folder| folder.uri.clone())
        .or(params.root_uri)
        .and_then(|uri| from_proto::file_path(&uri));
    let defaults = Settings::default();
    let settings = Settings {
        plan_on_save: option("planOnSave")
            .and_then(Value::as_bool)
            .unwrap_or(defaults.plan_on_save),
        parallelism: option("parallelism")
            .and_then(Value::as_u64)
            .map_or(defaults.parallelism, |n| n.max(1) as usize),
    };
    let progress = params
        .capabilities
        .window
        .as_ref()
        .and_then(|w| w.work_done_progress)
        .unwrap_or(false);
    state.start(|client, events| {
        Session::new(
            client,
            Project::new(root, trusted, settings),
            progress,
            events,
        )
    });
    ready(Ok(InitializeResult {
        capabilities: capabilities(),
        server_info: Some(ServerInfo {
            name: "nixops4-lsp".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
    }))
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                // Clients send didSave only when asked; a save is what starts a plan.
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
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
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..CodeActionOptions::default()
        })),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: to_proto::semantic_tokens_legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                ..SemanticTokensOptions::default()
            },
        )),
        code_lens_provider: Some(CodeLensOptions {
            resolve_provider: Some(false),
        }),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: Command::ALL.map(|c| c.name().to_owned()).to_vec(),
            ..ExecuteCommandOptions::default()
        }),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "\"".into()]),
            ..CompletionOptions::default()
        }),
        ..ServerCapabilities::default()
    }
}

/// Reads the workspace's deployment files, then publishes diagnostics again (references
/// to resources declared in files not open now resolve).
pub fn initialized(state: &mut State, _: InitializedParams) {
    let Some(snap) = state.snapshot() else { return };
    if !snap.project().trusted() {
        snap.client().log_message(
            MessageType::INFO,
            "nixops4: workspace not trusted: static features only; no provider or `nix` is run",
        );
    }
    let session = snap.shared_session();
    tokio::spawn(async move {
        let scanning = session.clone();
        let _ = tokio::task::spawn_blocking(move || {
            scanning.project().scan();
            // What this thread parsed of files opened meanwhile was freed here.
            memory::return_freed();
        })
        .await;
        session.send(Event::Republish(None));
    });
}

/// From now on requests are refused; answered once running jobs stopped starting provider
/// calls and recorded what they started.
pub fn shutdown(state: &mut State, _: ()) -> impl Future<Output = Result<()>> + Send + use<> {
    state.shut_down();
    let session = state.snapshot().map(|snap| snap.shared_session());
    async move {
        if let Some(session) = session {
            session.runner().shut_down().await;
        }
        Ok(())
    }
}
