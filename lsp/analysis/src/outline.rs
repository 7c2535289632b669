//! The shape of a document for the editor: its resources as a tree of symbols (nested
//! deployments hold theirs, resources their inputs), the ranges that fold, and the
//! semantic tokens that tell declarations, references, outputs and types apart.

use rnix::SyntaxKind;

use crate::index::ScopeId;
use crate::{Analysis, TextRange, TextSize};

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
                    .body_ranges()
                    .fold(decl.name_range(), |all, body| all.cover(body));
                let mut children: Vec<Symbol> = match decl.nested {
                    Some(nested) => self.scope_symbols(nested),
                    None => decl
                        .inputs()
                        .map(|input| Symbol {
                            name: input.name.to_owned(),
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
                    detail: match (decl.nested, decl.type_name()) {
                        (Some(_), _) => "nested deployment".into(),
                        (None, Some((type_name, _))) => type_name.to_owned(),
                        (None, None) => String::new(),
                    },
                    kind: if decl.nested.is_some() {
                        SymbolKind::NestedDeployment
                    } else {
                        SymbolKind::Resource
                    },
                    range,
                    selection: decl.name_range(),
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

    /// Ranges worth folding: sets, lists, `let` blocks, strings and comments that span
    /// more than one line, in the order they start. Read from the green tree, which costs
    /// no allocation per element as a walk of syntax nodes does, and without recursion, so
    /// that any depth of nesting is walked.
    pub fn folding_ranges(&self) -> Vec<TextRange> {
        use rowan::NodeOrToken;
        let kind = |raw| <rnix::NixLanguage as rowan::Language>::kind_from_raw(raw);
        let text = self.text();
        let mut found = Vec::new();
        let mut keep = |range: TextRange| {
            if text
                .get(usize::from(range.start())..usize::from(range.end()))
                .is_some_and(|t| t.contains(['\n', '\r']))
            {
                found.push(range);
            }
        };
        let mut pending = vec![(self.parsed.green.children(), TextSize::from(0))];
        while let Some((children, offset)) = pending.last_mut() {
            let Some(child) = children.next() else {
                pending.pop();
                continue;
            };
            let range = TextRange::at(*offset, child.text_len());
            *offset = range.end();
            match child {
                NodeOrToken::Node(node) => {
                    if matches!(
                        kind(node.kind()),
                        SyntaxKind::NODE_ATTR_SET
                            | SyntaxKind::NODE_LIST
                            | SyntaxKind::NODE_LET_IN
                            | SyntaxKind::NODE_STRING
                    ) {
                        keep(range);
                    }
                    pending.push((node.children(), range.start()));
                }
                NodeOrToken::Token(token) => {
                    if kind(token.kind()) == SyntaxKind::TOKEN_COMMENT {
                        keep(range);
                    }
                }
            }
        }
        found
    }

    /// Semantic tokens, in order, never overlapping.
    pub fn semantic_tokens(&self) -> Vec<(TextRange, TokenKind)> {
        let index = &self.index;
        let mut tokens: Vec<(TextRange, TokenKind)> = Vec::new();
        for decl in &index.resources {
            tokens.extend(decl.name_ranges().map(|r| (r, TokenKind::Declaration)));
            tokens.extend(decl.type_name().map(|(_, r)| (r, TokenKind::Type)));
            tokens.extend(decl.inputs().map(|i| (i.range, TokenKind::Input)));
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

#[cfg(test)]
mod tests {
    use super::Symbol;
    use crate::fixture::{Fixture, nested_deployment};
    use crate::{Analysis, TextRange};

    fn outline(text: &str) -> String {
        fn show(symbols: &[Symbol], depth: usize, out: &mut Vec<String>) {
            for symbol in symbols {
                assert!(symbol.range.contains_range(symbol.selection), "{symbol:?}");
                out.push(format!(
                    "{}{} ({:?}) {}",
                    "  ".repeat(depth),
                    symbol.name,
                    symbol.kind,
                    symbol.detail
                ));
                show(&symbol.children, depth + 1, out);
            }
        }
        let mut lines = Vec::new();
        show(&Analysis::new(text).symbols(), 0, &mut lines);
        lines.join("\n")
    }

    /// Each token as `line:column `text` kind`.
    fn tokens(fixture: &str) -> String {
        let fixture = Fixture::parse(fixture);
        let tokens = fixture.analysis().semantic_tokens();
        assert!(tokens.windows(2).all(|w| w[0].0.end() <= w[1].0.start()));
        tokens
            .iter()
            .map(|(range, kind)| format!("{} {kind:?}", fixture.range(*range)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The first line of each range that folds (spans more than one line).
    fn folds(text: &str) -> String {
        Analysis::new(text)
            .folding_ranges()
            .into_iter()
            .filter(|range| text[*range].contains('\n'))
            .map(|range: TextRange| {
                let start = usize::from(range.start());
                let line = text[..start].matches('\n').count() + 1;
                let first = text[range].lines().next().unwrap_or_default();
                format!("{line}: {first}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn symbols_of_the_evaluated_nested_deployment() {
        insta::assert_snapshot!(outline(&nested_deployment()), @"
        vault (Provider) /opt/vault-provider
        state (Resource) local.state_file
          name (Input) string
        ca (Resource) vault.ca
          commonName (Input) string
        host (NestedDeployment) nested deployment
          vault (Provider) /opt/other-vault
          key (Resource) vault.key
            ca (Input) 
          cert (Resource) local.file
            name (Input) string
            contents (Input) 
        release (NestedDeployment) nested deployment
          build (Resource) local.exec
            executable (Input) string
          publish (Resource) local.exec
            executable (Input) string
            args (Input) array
        odd.name (Resource) local.memo
          initialize_with (Input) integer
        ");
    }

    #[test]
    fn what_folds() {
        insta::assert_snapshot!(folds(r#"{
  # one line
  resources = {
    a = [
      1
    ];
  };
  b = ''
    text
  '';
  c = let x = 1;
    in x;
  /* a
     comment */
  d = { e = 1; };
}
"#), @"
        1: {
        3: {
        4: [
        8: ''
        11: let x = 1;
        13: /* a
        ");
    }

    /// LSP ends lines at a lone `\r` too: what spans such lines folds.
    #[test]
    fn lines_ended_by_carriage_returns_fold() {
        let text = "{\r  a = [\r    1\r  ];\r  b = [ 1 ];\r}";
        let folded: Vec<&str> = Analysis::new(text)
            .folding_ranges()
            .into_iter()
            .map(|range| &text[range])
            .collect();
        assert_eq!(folded, [text, "[\r    1\r  ]"]);
    }

    #[test]
    fn folds_of_the_evaluated_nested_deployment() {
        insta::assert_snapshot!(folds(&nested_deployment()), @"
        1: {
        3: let lib = import ./nixops4-lib.nix; in
        4: {
        5: {
        7: {
        10: {
        12: {
        17: [
        ");
    }

    #[test]
    fn tokens_tell_declarations_references_outputs_types_and_inputs_apart() {
        insta::assert_snapshot!(tokens(r#"
            { resources, ... }: {
              resources.a = { type = "local.file"; inputs = { name = "a"; contents = "x"; }; };
              resources."b c".inputs.initialize_with = resources.a.path;
            }
        "#), @r#"
        2:13 `a` Declaration
        2:26 `"local.file"` Type
        2:51 `name` Input
        2:63 `contents` Input
        3:13 `"b c"` Declaration
        3:26 `initialize_with` Input
        3:54 `a` Reference
        3:56 `path` Output
        "#);
    }

    #[test]
    fn tokens_of_the_evaluated_nested_deployment_never_overlap() {
        let tokens = Analysis::new(&nested_deployment()).semantic_tokens();
        assert!(tokens.windows(2).all(|w| w[0].0.end() <= w[1].0.start()));
        let mut kinds: Vec<String> = tokens.iter().map(|(_, k)| format!("{k:?}")).collect();
        kinds.sort();
        kinds.dedup();
        insta::assert_snapshot!(kinds.join(" "), @"Declaration Input Output Reference Type");
    }
}
