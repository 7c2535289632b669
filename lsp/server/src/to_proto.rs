//! Conversions to LSP types, all in one place: byte offsets to UTF-16 positions (through
//! the document's line index), paths to `file:` URIs, and the analysis' and the engine's
//! answers to diagnostics, completion items, symbols, folding ranges, semantic tokens,
//! locations, edits, lenses and NixOps4's own protocol ([`crate::lsp_ext`]).

use std::collections::HashMap;
use std::path::Path;

use lsp_types::{
    CodeAction, CodeActionKind, CodeLens, Command, CompletionItem, CompletionItemKind, Diagnostic,
    DiagnosticSeverity, DocumentSymbol, Documentation, FoldingRange, FoldingRangeKind, Hover,
    HoverContents, InsertTextFormat, Location, MarkupContent, MarkupKind, NumberOrString, Position,
    Range, SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokens,
    SemanticTokensLegend, SymbolKind, TextEdit, Uri, WorkspaceEdit,
};
use nixops4_analysis::completion::{Completion, CompletionKind};
use nixops4_analysis::diagnostics::{self, Severity};
use nixops4_analysis::navigation::HoverInfo;
use nixops4_analysis::outline::{self, TokenKind};
use nixops4_analysis::workspace;
use nixops4_analysis::{TextRange, TextSize};
use nixops4_core::engine::{ApplyReport, RefreshReport};
use nixops4_core::plan;

use crate::document::Document;
use crate::lsp_ext;
use crate::render;

pub fn position(document: &Document, offset: TextSize) -> Position {
    document.position(usize::from(offset))
}

pub fn range(document: &Document, range: TextRange) -> Range {
    Range {
        start: position(document, range.start()),
        end: position(document, range.end()),
    }
}

/// The `file:` URI of an absolute path, its bytes percent-encoded where URIs need it.
pub fn file_uri(path: &Path) -> Option<Uri> {
    use std::os::unix::ffi::OsStrExt;
    if !path.is_absolute() {
        return None;
    }
    let mut uri = String::from("file://");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.parse().ok()
}

pub fn severity(severity: Severity) -> DiagnosticSeverity {
    match severity {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
    }
}

pub fn diagnostic(document: &Document, found: &diagnostics::Diagnostic) -> Diagnostic {
    Diagnostic {
        range: range(document, found.range),
        severity: Some(severity(found.code.severity())),
        code: Some(NumberOrString::String(found.code.as_str().to_owned())),
        source: Some("nixops4".into()),
        message: found.message.clone(),
        ..Diagnostic::default()
    }
}

/// Where Nix reports something (1-based line and column), as an empty range there.
pub fn nix_position(position: &nixops4_core::Position) -> Range {
    let start = Position {
        line: position.line.saturating_sub(1),
        character: position.column.saturating_sub(1),
    };
    Range { start, end: start }
}

/// An error the evaluation of the deployment found.
pub fn evaluation_diagnostic(range: Range, message: String) -> Diagnostic {
    Diagnostic {
        range,
        severity: Some(DiagnosticSeverity::ERROR),
        code: Some(NumberOrString::String("evaluation".into())),
        source: Some("nixops4".into()),
        message,
        ..Diagnostic::default()
    }
}

pub fn completion_kind(kind: CompletionKind) -> CompletionItemKind {
    match kind {
        CompletionKind::Type => CompletionItemKind::CLASS,
        CompletionKind::Input => CompletionItemKind::PROPERTY,
        CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
        CompletionKind::Resource => CompletionItemKind::VARIABLE,
        CompletionKind::Output => CompletionItemKind::FIELD,
        CompletionKind::Option => CompletionItemKind::PROPERTY,
    }
}

/// A completion, `rank`th in the analysis' order (required inputs first), which the
/// client keeps through `sortText`.
pub fn completion_item(rank: usize, completion: Completion) -> CompletionItem {
    CompletionItem {
        label: completion.label,
        kind: Some(completion_kind(completion.kind)),
        detail: (!completion.detail.is_empty()).then_some(completion.detail),
        documentation: (!completion.documentation.is_empty())
            .then(|| Documentation::MarkupContent(markdown(completion.documentation))),
        sort_text: Some(format!("{rank:04}")),
        insert_text: Some(completion.snippet),
        insert_text_format: Some(InsertTextFormat::SNIPPET),
        ..CompletionItem::default()
    }
}

fn markdown(value: String) -> MarkupContent {
    MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }
}

pub fn hover(document: &Document, info: HoverInfo) -> Hover {
    Hover {
        contents: HoverContents::Markup(markdown(info.markdown)),
        range: Some(range(document, info.range)),
    }
}

pub fn symbol_kind(kind: outline::SymbolKind) -> SymbolKind {
    match kind {
        outline::SymbolKind::Resource => SymbolKind::OBJECT,
        outline::SymbolKind::NestedDeployment => SymbolKind::NAMESPACE,
        outline::SymbolKind::Input => SymbolKind::PROPERTY,
        outline::SymbolKind::Provider => SymbolKind::MODULE,
    }
}

pub fn symbol(document: &Document, symbol: outline::Symbol) -> DocumentSymbol {
    #[allow(deprecated)] // `deprecated` is a required field of the struct.
    DocumentSymbol {
        name: if symbol.name.is_empty() {
            "\"\"".into()
        } else {
            symbol.name
        },
        detail: (!symbol.detail.is_empty()).then_some(symbol.detail),
        kind: symbol_kind(symbol.kind),
        tags: None,
        deprecated: None,
        range: range(document, symbol.range),
        selection_range: range(document, symbol.selection),
        children: Some(
            symbol
                .children
                .into_iter()
                .map(|child| self::symbol(document, child))
                .collect(),
        ),
    }
}

/// A range that folds, if it spans lines; comments fold as comments.
pub fn folding_range(document: &Document, folded: TextRange) -> Option<FoldingRange> {
    let lines = range(document, folded);
    let starts = &document.analysis().text()[usize::from(folded.start())..];
    let comment = starts.starts_with('#') || starts.starts_with("/*");
    (lines.start.line < lines.end.line).then(|| FoldingRange {
        start_line: lines.start.line,
        end_line: lines.end.line,
        kind: comment.then_some(FoldingRangeKind::Comment),
        ..FoldingRange::default()
    })
}

/// Declares the semantic token types we send, in legend order: a token's type is its
/// index in the legend by construction.
macro_rules! token_types {
    ($($variant:ident => $lsp:ident),* $(,)?) => {
        #[derive(Clone, Copy)]
        enum TokenType { $($variant),* }
        const TOKEN_TYPES: &[SemanticTokenType] = &[$(SemanticTokenType::$lsp),*];
    };
}

token_types! {
    Variable => VARIABLE,
    Property => PROPERTY,
    Type => TYPE,
    Parameter => PARAMETER,
}

/// The one modifier we send, bit 0.
const DECLARATION: u32 = 1;
const TOKEN_MODIFIERS: &[SemanticTokenModifier] = &[SemanticTokenModifier::DECLARATION];

/// How each kind of token is shown: the one place that decides it.
fn token_type(kind: TokenKind) -> (TokenType, u32) {
    match kind {
        TokenKind::Declaration => (TokenType::Variable, DECLARATION),
        TokenKind::Reference => (TokenType::Variable, 0),
        TokenKind::Output => (TokenType::Property, 0),
        TokenKind::Type => (TokenType::Type, 0),
        TokenKind::Input => (TokenType::Parameter, 0),
    }
}

pub fn semantic_tokens_legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TOKEN_TYPES.to_vec(),
        token_modifiers: TOKEN_MODIFIERS.to_vec(),
    }
}

/// Tokens on one line each, relative to the one before, as LSP encodes them.
pub fn semantic_tokens(document: &Document, tokens: Vec<(TextRange, TokenKind)>) -> SemanticTokens {
    let mut data = Vec::new();
    let (mut line, mut character) = (0, 0);
    for (token, kind) in tokens {
        let lsp = range(document, token);
        if lsp.start.line != lsp.end.line {
            continue;
        }
        let (token_type, modifiers) = token_type(kind);
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
            token_type: token_type as u32,
            token_modifiers_bitset: modifiers,
        });
        (line, character) = (lsp.start.line, lsp.start.character);
    }
    SemanticTokens {
        result_id: None,
        data,
    }
}

/// Locations in the deployment's files (`files` as [`crate::snapshot::Snapshot::deployment_files`]).
pub fn locations(files: &[(String, Document)], found: Vec<workspace::Location>) -> Vec<Location> {
    found
        .into_iter()
        .filter_map(|location| {
            let (id, document) = files.iter().find(|(id, _)| *id == location.file)?;
            Some(Location {
                uri: id.parse().ok()?,
                range: range(document, location.range),
            })
        })
        .collect()
}

/// Edits of the deployment's files, grouped by document.
pub fn workspace_edit(
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
            range: range(document, location.range),
            new_text,
        });
    }
    WorkspaceEdit {
        changes: Some(changes),
        ..WorkspaceEdit::default()
    }
}

/// A diagnostic's quick fix, as a code action.
pub fn quick_fix(
    uri: &Uri,
    document: &Document,
    found: &diagnostics::Diagnostic,
) -> Option<CodeAction> {
    let fix = found.fix.clone()?;
    Some(CodeAction {
        title: fix.title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![diagnostic(document, found)]),
        edit: Some(document_edit(uri, document, fix.edits)),
        is_preferred: Some(true),
        ..CodeAction::default()
    })
}

/// Edits of one document.
fn document_edit(uri: &Uri, document: &Document, edits: Vec<(TextRange, String)>) -> WorkspaceEdit {
    let edits = edits
        .into_iter()
        .map(|(replaced, new_text)| TextEdit {
            range: range(document, replaced),
            new_text,
        })
        .collect();
    WorkspaceEdit {
        changes: Some(HashMap::from([(uri.clone(), edits)])),
        ..WorkspaceEdit::default()
    }
}

/// A command with its one argument (see [`lsp_ext::CommandArguments`]).
pub fn command(title: String, command: lsp_ext::Command, argument: serde_json::Value) -> Command {
    Command {
        title,
        command: command.name().to_owned(),
        arguments: Some(vec![argument]),
    }
}

/// A lens; without a command it only shows its title.
pub fn lens(
    range: Range,
    title: String,
    command: Option<(lsp_ext::Command, serde_json::Value)>,
) -> CodeLens {
    CodeLens {
        range,
        command: Some(match command {
            Some((name, argument)) => self::command(title, name, argument),
            // A lens without an action still needs a command; an empty one does nothing.
            None => Command {
                title,
                command: String::new(),
                arguments: None,
            },
        }),
        data: None,
    }
}

pub fn action(action: plan::Action) -> lsp_ext::Action {
    match action {
        plan::Action::Create => lsp_ext::Action::Create,
        plan::Action::Update => lsp_ext::Action::Update,
        plan::Action::Replace => lsp_ext::Action::Replace,
        plan::Action::Recreate => lsp_ext::Action::Recreate,
        plan::Action::Delete => lsp_ext::Action::Delete,
        plan::Action::Forget => lsp_ext::Action::Forget,
        plan::Action::NoChange => lsp_ext::Action::NoChange,
    }
}

pub fn summary(plan: &plan::Plan) -> lsp_ext::Summary {
    let s = plan.summary();
    lsp_ext::Summary {
        create: s.create + s.recreate,
        update: s.update,
        replace: s.replace,
        delete: s.delete + s.forget,
        unchanged: s.unchanged,
    }
}

fn source_position(position: &nixops4_core::Position) -> lsp_ext::SourcePosition {
    lsp_ext::SourcePosition {
        file: position.file.clone(),
        line: position.line,
        column: position.column,
    }
}

pub fn plan(plan: &plan::Plan) -> lsp_ext::Plan {
    lsp_ext::Plan {
        deployment: plan.deployment.clone(),
        resources: plan.resources.iter().map(planned_resource).collect(),
        problems: plan.problems.iter().map(problem).collect(),
        fingerprint: plan.fingerprint.clone(),
        builds: plan
            .builds
            .iter()
            .map(|build| lsp_ext::PlannedBuild {
                derivation: build.derivation.clone(),
                name: build.name.clone(),
                resources: build.resources.iter().map(|p| p.0.clone()).collect(),
            })
            .collect(),
    }
}

/// A planned resource, with its label.
fn planned_resource(planned: &plan::PlannedResource) -> lsp_ext::PlannedResource {
    let change = |change: &plan::Change| lsp_ext::Change {
        input: change.input.clone(),
        before: change.before.clone(),
        after: change.after.clone(),
        forces_replacement: change.forces_replacement,
    };
    lsp_ext::PlannedResource {
        resource: planned.resource.0.clone(),
        type_name: planned.type_name.clone(),
        action: action(planned.action),
        changes: planned.changes.iter().map(change).collect(),
        inputs_known: planned.inputs_known,
        waiting_for: planned.waiting_for.iter().map(|p| p.0.clone()).collect(),
        position: planned.position.as_ref().map(source_position),
        label: render::label(planned),
    }
}

fn problem(problem: &plan::Problem) -> lsp_ext::Problem {
    lsp_ext::Problem {
        resource: problem.resource.0.clone(),
        message: problem.message.clone(),
        position: problem.position.as_ref().map(source_position),
    }
}

pub fn plan_result(
    deployment: &crate::runner::Deployment,
    made: &plan::Plan,
    operations: Vec<lsp_ext::ResourceOperations>,
    scripts: &[nixops4_core::DeclaredScript],
) -> lsp_ext::PlanResult {
    lsp_ext::PlanResult {
        deployment: deployment.name.clone(),
        flake: deployment.flake_dir.display().to_string(),
        summary: summary(made),
        summary_text: render::summary(made),
        plan: plan(made),
        operations,
        scripts: scripts.iter().map(|s| s.script.0.clone()).collect(),
    }
}

pub fn job_report(report: &ApplyReport) -> lsp_ext::JobReport {
    let dotted = |map: &std::collections::BTreeMap<nixops4_core::ResourcePath, String>| {
        map.iter()
            .map(|(path, value)| (path.to_string(), value.clone()))
            .collect()
    };
    lsp_ext::JobReport {
        applied: report
            .applied
            .iter()
            .map(|(path, done)| (path.to_string(), action(*done)))
            .collect(),
        unchanged: report.unchanged,
        failed: dotted(&report.failed),
        skipped: dotted(&report.skipped),
        interrupted: report.interrupted,
    }
}

pub fn refresh_result(report: &RefreshReport) -> lsp_ext::RefreshResult {
    let paths = |paths: &[nixops4_core::ResourcePath]| paths.iter().map(|p| p.0.clone()).collect();
    lsp_ext::RefreshResult {
        changed: paths(&report.changed),
        gone: paths(&report.gone),
        unchanged: report.unchanged,
        unreadable: paths(&report.unreadable),
        failed: report
            .failed
            .iter()
            .map(|(path, error)| (path.0.clone(), error.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_file_uris_and_back() {
        let path = Path::new("/work/a b/é#1.nix");
        let uri = file_uri(path).unwrap();
        assert_eq!(uri.as_str(), "file:///work/a%20b/%C3%A9%231.nix");
        assert_eq!(crate::from_proto::file_path(&uri).as_deref(), Some(path));
    }
}
