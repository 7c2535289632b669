//! The shape of a document for the editor: its resources as a tree of symbols (nested
//! deployments hold theirs, resources their inputs), the ranges that fold, and the
//! semantic tokens that tell declarations, references, outputs and types apart.

use rnix::SyntaxKind;

use crate::index::ScopeId;
use crate::{Analysis, TextRange};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolKind {
    Resource,
    NestedDeployment,
    Input,
    Provider,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub detail: String,
    pub kind: SymbolKind,
    /// The whole declaration (contains `selection`).
    pub range: TextRange,
    /// The name.
    pub selection: TextRange,
    pub children: Vec<Symbol>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TokenKind {
    /// A resource's name where it is declared.
    Declaration,
    /// A resource's name in `resources.<name>`.
    Reference,
    Output,
    /// The `type` string.
    Type,
    Input,
}

impl Analysis {
    /// The resources of the top-level scopes, in the order they are written, then the
    /// providers.
    pub fn symbols(&self) -> Vec<Symbol> {
        let index = &self.index;
        let mut symbols: Vec<Symbol> = index
            .scope_ids()
            .filter(|(scope, _)| index.is_top_level(*scope))
            .flat_map(|(scope, _)| self.scope_symbols(scope))
            .collect();
        symbols.sort_by_key(|s| s.range.start());
        symbols
    }

    fn scope_symbols(&self, scope: ScopeId) -> Vec<Symbol> {
        let index = &self.index;
        let mut symbols: Vec<Symbol> = index
            .resources
            .iter()
            .filter(|decl| decl.scope == scope)
            .map(|decl| {
                let range = decl
                    .body_ranges
                    .iter()
                    .fold(decl.name_range, |all, body| all.cover(*body));
                let mut children: Vec<Symbol> = match decl.nested {
                    Some(nested) => self.scope_symbols(nested),
                    None => decl
                        .inputs
                        .iter()
                        .map(|input| Symbol {
                            name: input.name.clone(),
                            detail: input.literal.unwrap_or_default().to_owned(),
                            kind: SymbolKind::Input,
                            range: input.range.cover(input.value_range),
                            selection: input.range,
                            children: Vec::new(),
                        })
                        .collect(),
                };
                children.extend(
                    decl.nested
                        .into_iter()
                        .flat_map(|nested| self.provider_symbols(nested)),
                );
                children.sort_by_key(|s| s.range.start());
                Symbol {
                    name: decl.name.clone(),
                    detail: match (decl.nested, &decl.type_name) {
                        (Some(_), _) => "nested deployment".into(),
                        (None, Some((type_name, _))) => type_name.clone(),
                        (None, None) => String::new(),
                    },
                    kind: if decl.nested.is_some() {
                        SymbolKind::NestedDeployment
                    } else {
                        SymbolKind::Resource
                    },
                    range,
                    selection: decl.name_range,
                    children,
                }
            })
            .collect();
        if self.index.is_top_level(scope) {
            symbols.extend(self.provider_symbols(scope));
        }
        symbols.sort_by_key(|s| s.range.start());
        symbols
    }

    fn provider_symbols(&self, scope: ScopeId) -> impl Iterator<Item = Symbol> + '_ {
        self.index
            .providers
            .iter()
            .filter(move |provider| provider.scope == scope)
            .map(|provider| Symbol {
                name: provider.name.clone(),
                detail: provider.executable.clone().unwrap_or_default(),
                kind: SymbolKind::Provider,
                range: provider.name_range,
                selection: provider.name_range,
                children: Vec::new(),
            })
    }

    /// Ranges worth folding: sets, lists, `let` blocks, strings and comments. The server
    /// keeps those spanning more than one line.
    pub fn folding_ranges(&self) -> Vec<TextRange> {
        self.root()
            .descendants_with_tokens()
            .filter(|element| {
                matches!(
                    element.kind(),
                    SyntaxKind::NODE_ATTR_SET
                        | SyntaxKind::NODE_LIST
                        | SyntaxKind::NODE_LET_IN
                        | SyntaxKind::NODE_STRING
                        | SyntaxKind::TOKEN_COMMENT
                )
            })
            .map(|element| element.text_range())
            .collect()
    }

    /// Semantic tokens, in order, never overlapping.
    pub fn semantic_tokens(&self) -> Vec<(TextRange, TokenKind)> {
        let index = &self.index;
        let mut tokens: Vec<(TextRange, TokenKind)> = Vec::new();
        for decl in &index.resources {
            tokens.extend(
                decl.name_ranges
                    .iter()
                    .map(|r| (*r, TokenKind::Declaration)),
            );
            tokens.extend(decl.type_name.iter().map(|(_, r)| (*r, TokenKind::Type)));
            tokens.extend(decl.inputs.iter().map(|i| (i.range, TokenKind::Input)));
        }
        for reference in &index.references {
            tokens.push((reference.resource_range, TokenKind::Reference));
            if let Some((_, range)) = &reference.output {
                tokens.push((*range, TokenKind::Output));
            }
        }
        tokens.sort_by_key(|(range, kind)| (range.start(), *kind));
        let mut kept: Vec<(TextRange, TokenKind)> = Vec::with_capacity(tokens.len());
        for (range, kind) in tokens {
            if range.is_empty()
                || kept
                    .last()
                    .is_some_and(|(last, _)| last.end() > range.start())
            {
                continue;
            }
            kept.push((range, kind));
        }
        kept
    }
}
