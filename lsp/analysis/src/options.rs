//! Completion and hover of module options in the files of a module-system deployment:
//! inside `customers.alice = { | }` or after `customers.alice.do|`, the options that may
//! be set there (`domain`, with its description and type); on `domain` in
//! `customers.alice.domain = "…"`, what the option's declaration says of it.
//!
//! The options are plain data the server got from the evaluator ([`ModuleOption`]);
//! nothing is evaluated here. Only where a file sets options can they be named: in the
//! body of a module (a file whose top is a function of `{ … }` or a set that is not a
//! flake), through sets, `let … in`, `lib.mkIf`, `lib.mkMerge [ … ]` and parentheses, with
//! `config.` left out. Inside any other function (`mapAttrs (name: value: { … })`) or a
//! `let` binding the path is unknown, and nothing is offered.

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, SyntaxToken};
use rowan::ast::AstNode;

use crate::completion::{Completion, CompletionKind, PLACEHOLDER};
use crate::navigation::HoverInfo;
use crate::syntax::{static_names, strip_parens};
use crate::{Analysis, TextRange, TextSize};

/// An option of the deployment's modules, as the evaluator lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleOption {
    /// `["customers", "<name>", "domain"]`: `<name>` and `*` stand for any name.
    pub path: Vec<String>,
    pub description: Option<String>,
    /// `string`, `attribute set of (submodule)`.
    pub type_description: Option<String>,
    pub default: Option<String>,
    pub example: Option<String>,
    /// Where it is declared, as the reader should see it: `customer.nix:2:3`.
    pub declarations: Vec<String>,
}

/// Where a name is being written in a module: the path of the set it goes into, and the
/// name under the cursor with the names written before it in the same attribute path.
struct NamePosition {
    /// `["customers", "alice"]` inside `customers.alice = { | }` or at
    /// `customers.alice.do|`.
    set_path: Vec<String>,
    /// The name at the cursor and its range, if one is written there.
    word: Option<(String, TextRange)>,
    /// The names the set at the cursor already sets, not offered again.
    taken: Vec<String>,
}

impl Analysis {
    /// The options that can be set at `offset`, each once, in the order `options` lists
    /// them; empty where this is not a module's option path.
    pub fn option_completions(
        &self,
        offset: TextSize,
        options: &[ModuleOption],
    ) -> Vec<Completion> {
        if options.is_empty() {
            return Vec::new();
        }
        let text = self.text();
        let end = usize::from(offset).min(text.len());
        if text.is_char_boundary(end) && text[..end].ends_with('.') {
            // After a dot the name is still missing: complete as if one were there.
            let patched = self.edited(TextRange::empty(offset), PLACEHOLDER);
            return patched.completions_of_names(offset, options);
        }
        self.completions_of_names(offset, options)
    }

    fn completions_of_names(&self, offset: TextSize, options: &[ModuleOption]) -> Vec<Completion> {
        let Some(at) = self.name_position(offset) else {
            return Vec::new();
        };
        let depth = at.set_path.len();
        let mut names: Vec<&str> = Vec::new();
        for option in options {
            if option.path.len() > depth
                && names_path(&option.path[..depth], &at.set_path)
                && !is_placeholder(&option.path[depth])
                && !at.taken.contains(&option.path[depth])
                && !names.contains(&option.path[depth].as_str())
            {
                names.push(&option.path[depth]);
            }
        }
        names
            .into_iter()
            .map(|name| {
                let mut path = at.set_path.clone();
                path.push(name.to_owned());
                let option = find(options, &path);
                let type_description = option.and_then(|o| o.type_description.clone());
                let written = crate::attribute_name(name);
                let snippet = match type_description.as_deref() {
                    Some("string") => format!("{written} = \"$1\";"),
                    _ => format!("{written} = $1;"),
                };
                Completion {
                    label: name.to_owned(),
                    kind: CompletionKind::Option,
                    detail: type_description.unwrap_or_default(),
                    documentation: option
                        .and_then(|o| o.description.clone())
                        .unwrap_or_default(),
                    snippet,
                }
            })
            .collect()
    }

    /// What the declaration of the option named at `offset` says: its description, type,
    /// default, example and where it is declared.
    pub fn option_hover(&self, offset: TextSize, options: &[ModuleOption]) -> Option<HoverInfo> {
        if options.is_empty() {
            return None;
        }
        let at = self.name_position(offset)?;
        let (name, range) = at.word?;
        let mut path = at.set_path;
        path.push(name);
        let option = find(options, &path)?;
        Some(HoverInfo {
            range,
            markdown: option_doc(option),
        })
    }

    fn name_position(&self, offset: TextSize) -> Option<NamePosition> {
        let root = self.root();
        if !is_module(&root) {
            return None;
        }
        let offset = offset.min(root.text_range().end());
        let at = root.token_at_offset(offset);
        let token = match at.clone().left_biased() {
            Some(token) if token.kind() == SyntaxKind::TOKEN_IDENT => token,
            _ => at.right_biased()?,
        };
        if token.kind() == SyntaxKind::TOKEN_IDENT {
            return name_at(&token);
        }
        // Between the names of a set: `{ a = 1; | }`.
        let set = token.parent()?;
        let inside = set.kind() == SyntaxKind::NODE_ATTR_SET
            && token.kind() != SyntaxKind::TOKEN_L_BRACE
            && set.text_range().end() > offset;
        inside.then_some(())?;
        Some(NamePosition {
            set_path: set_path(&set)?,
            word: None,
            taken: names_set_in(&set),
        })
    }
}

/// The position of a name being written: a part of an attribute path, or what the parser
/// took for a function's parameter in a set not finished yet (`alice = { do| };`).
fn name_at(token: &SyntaxToken) -> Option<NamePosition> {
    let ident = token.parent()?;
    let holder = ident.parent()?;
    let word = Some((token.text().to_owned(), token.text_range()));
    match holder.kind() {
        SyntaxKind::NODE_ATTRPATH => {
            let attrpath = ast::Attrpath::cast(holder.clone())?;
            let binding = holder.parent()?;
            if binding.kind() != SyntaxKind::NODE_ATTRPATH_VALUE {
                return None;
            }
            let mut path = set_path(&binding.parent()?)?;
            for (name, range) in static_names(&attrpath) {
                if range.contains_range(token.text_range()) {
                    return Some(NamePosition {
                        set_path: path,
                        word,
                        taken: Vec::new(),
                    });
                }
                path.push(name?);
            }
            None
        }
        SyntaxKind::NODE_PAT_ENTRY => {
            let lambda = holder.parent()?.parent()?;
            (lambda.kind() == SyntaxKind::NODE_LAMBDA && !is_top(&lambda)).then_some(())?;
            Some(NamePosition {
                set_path: value_path(&lambda)?,
                word,
                taken: Vec::new(),
            })
        }
        _ => None,
    }
}

/// The first names of a set's bindings: `domain` of `{ domain = …; }`.
fn names_set_in(set: &SyntaxNode) -> Vec<String> {
    ast::AttrSet::cast(set.clone())
        .into_iter()
        .flat_map(|set| set.attrpath_values())
        .filter_map(|binding| {
            let path = binding.attrpath()?;
            static_names(&path).into_iter().next()?.0
        })
        .collect()
}

/// The option path of a set's names; `None` where it is not known statically.
fn set_path(set: &SyntaxNode) -> Option<Vec<String>> {
    (set.kind() == SyntaxKind::NODE_ATTR_SET).then_some(())?;
    value_path(set)
}

/// The option path that a value stands at in its module, `config.` left out.
fn value_path(node: &SyntaxNode) -> Option<Vec<String>> {
    let mut reversed: Vec<String> = Vec::new();
    let mut child = node.clone();
    for ancestor in node.ancestors().skip(1) {
        match ancestor.kind() {
            SyntaxKind::NODE_ATTRPATH_VALUE => {
                let binding = ast::AttrpathValue::cast(ancestor.clone())?;
                let attrpath = binding.attrpath()?;
                let in_value = binding
                    .value()
                    .is_some_and(|value| value.syntax() == &child);
                let in_set = ancestor.parent()?.kind() == SyntaxKind::NODE_ATTR_SET && in_value;
                in_set.then_some(())?;
                for (name, _) in static_names(&attrpath).into_iter().rev() {
                    reversed.push(name?);
                }
            }
            SyntaxKind::NODE_LAMBDA => {
                let lambda = ast::Lambda::cast(ancestor.clone())?;
                let in_body = lambda.body().is_some_and(|body| body.syntax() == &child);
                (in_body && is_top(&ancestor)).then_some(())?;
            }
            SyntaxKind::NODE_LET_IN => {
                let body = ast::LetIn::cast(ancestor.clone())?.body();
                body.is_some_and(|body| body.syntax() == &child)
                    .then_some(())?;
            }
            SyntaxKind::NODE_ATTR_SET
            | SyntaxKind::NODE_APPLY
            | SyntaxKind::NODE_LIST
            | SyntaxKind::NODE_PAREN
            | SyntaxKind::NODE_ERROR
            | SyntaxKind::NODE_ROOT => {}
            _ => return None,
        }
        child = ancestor;
    }
    reversed.reverse();
    match reversed.first().map(String::as_str) {
        Some("config") => Some(reversed.split_off(1)),
        Some("options" | "imports" | "_module") => None,
        _ => Some(reversed),
    }
}

/// Whether a node is the file's top expression (parentheses aside).
fn is_top(node: &SyntaxNode) -> bool {
    node.ancestors()
        .skip(1)
        .all(|a| matches!(a.kind(), SyntaxKind::NODE_PAREN | SyntaxKind::NODE_ROOT))
}

/// Whether a file reads as a module: a function of `{ … }`, or a set that is not a flake
/// (which has `outputs`).
fn is_module(root: &SyntaxNode) -> bool {
    let Some(expr) = root.children().find_map(ast::Expr::cast) else {
        return false;
    };
    match strip_parens(expr) {
        ast::Expr::Lambda(lambda) => matches!(lambda.param(), Some(ast::Param::Pattern(_))),
        ast::Expr::AttrSet(set) => !set.attrpath_values().any(|binding| {
            binding
                .attrpath()
                .and_then(|path| static_names(&path).into_iter().next())
                .is_some_and(|(name, _)| name.as_deref() == Some("outputs"))
        }),
        _ => false,
    }
}

fn is_placeholder(segment: &str) -> bool {
    matches!(segment, "<name>" | "*")
}

/// Whether an option's path (with placeholders) names `path`.
fn names_path(pattern: &[String], path: &[String]) -> bool {
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(path)
            .all(|(p, name)| is_placeholder(p) || p == name)
}

fn find<'o>(options: &'o [ModuleOption], path: &[String]) -> Option<&'o ModuleOption> {
    options.iter().find(|option| names_path(&option.path, path))
}

fn option_doc(option: &ModuleOption) -> String {
    let mut text = format!("option **{}**", option.path.join("."));
    if let Some(type_description) = &option.type_description {
        text.push_str(&format!(" `{type_description}`"));
    }
    if let Some(description) = &option.description {
        text.push_str(&format!("\n\n{}", description.trim_end()));
    }
    for (what, value) in [("Default", &option.default), ("Example", &option.example)] {
        match value {
            Some(value) if value.contains('\n') => {
                text.push_str(&format!("\n\n{what}:\n```nix\n{}\n```", value.trim_end()))
            }
            Some(value) => text.push_str(&format!("\n\n{what}: `{value}`")),
            None => {}
        }
    }
    if !option.declarations.is_empty() {
        text.push_str(&format!(
            "\n\nDeclared in {}",
            option
                .declarations
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests;
