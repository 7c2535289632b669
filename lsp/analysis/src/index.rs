//! What a deployment file declares, read from its syntax tree alone: the resources (with
//! their `type` literal and inputs) and every reference `resources.<name>[.<output>]`.
//!
//! Resources are found wherever an attribute path reaches `resources`: the set form
//! `resources = { a = { type = ...; inputs = { ... }; }; }` and the dotted forms
//! `resources.a = { ... }`, `resources.a.type = ...`, `resources.a.inputs.name = ...`,
//! mixed freely. Broken files give what can be read; nothing here evaluates.

use rnix::ast::{self, HasEntry};
use rnix::{SyntaxKind, SyntaxNode, TextRange};
use rowan::ast::AstNode;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Index {
    pub resources: Vec<ResourceDecl>,
    pub references: Vec<Reference>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceDecl {
    pub name: String,
    /// Where the name is written (the first place, for dotted forms).
    pub name_range: TextRange,
    /// The `type` string literal and the range of the string, quotes included.
    pub type_name: Option<(String, TextRange)>,
    /// Inputs written literally, in order.
    pub inputs: Vec<InputEntry>,
    /// The `inputs = { ... }` set, when written as one, with the ranges of its entries'
    /// values (completion offers input names elsewhere in it).
    pub inputs_set: Option<InputsSet>,
    /// Whether inputs come from somewhere this index cannot see (`inputs = f x;`,
    /// `inherit`), so that missing ones cannot be told.
    pub inputs_open: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputEntry {
    pub name: String,
    pub range: TextRange,
    /// The JSON type of a literal value (`string`, `integer`, `boolean`, `array`,
    /// `object`, `null`), when the value is a literal.
    pub literal: Option<&'static str>,
    pub value_range: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputsSet {
    pub range: TextRange,
    pub value_ranges: Vec<TextRange>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub resource: String,
    pub resource_range: TextRange,
    pub output: Option<(String, TextRange)>,
}

impl Index {
    pub fn build(root: &SyntaxNode) -> Index {
        let mut index = Index::default();
        for node in root.descendants() {
            if let Some(entry) = ast::AttrpathValue::cast(node.clone()) {
                index.read_entry(&entry);
            } else if let Some(select) = ast::Select::cast(node) {
                index.read_reference(&select);
            }
        }
        index
    }

    pub fn resource(&self, name: &str) -> Option<&ResourceDecl> {
        self.resources.iter().find(|r| r.name == name)
    }

    fn decl(&mut self, name: &str, range: TextRange) -> &mut ResourceDecl {
        if let Some(position) = self.resources.iter().position(|r| r.name == name) {
            return &mut self.resources[position];
        }
        self.resources.push(ResourceDecl {
            name: name.to_owned(),
            name_range: range,
            ..ResourceDecl::default()
        });
        self.resources.last_mut().expect("just pushed")
    }

    /// An entry whose path contains `resources`: what follows it names a resource.
    fn read_entry(&mut self, entry: &ast::AttrpathValue) {
        let Some(path) = entry.attrpath().map(|p| static_names(&p)) else {
            return;
        };
        let Some(at) = path
            .iter()
            .position(|(name, _)| name.as_deref() == Some("resources"))
        else {
            return;
        };
        // Only the outermost mention counts: `inputs.resources` is not a resource set.
        if path[..at]
            .iter()
            .any(|(name, _)| matches!(name.as_deref(), Some("inputs")))
        {
            return;
        }
        let rest = &path[at + 1..];
        let Some(value) = entry.value() else { return };
        match rest.first() {
            None => {
                if let ast::Expr::AttrSet(set) = value {
                    for inner in set.attrpath_values() {
                        let Some(inner_path) = inner.attrpath().map(|p| static_names(&p)) else {
                            continue;
                        };
                        let Some((Some(name), range)) = inner_path.first().cloned() else {
                            continue;
                        };
                        if let Some(inner_value) = inner.value() {
                            self.read_facts(&name, range, &inner_path[1..], inner_value);
                        }
                    }
                }
            }
            Some((Some(name), range)) => {
                let (name, range) = (name.clone(), *range);
                self.read_facts(&name, range, &rest[1..], value);
            }
            Some((None, _)) => {}
        }
    }

    /// What `value` at `path` (relative to resource `name`) says about the resource.
    fn read_facts(
        &mut self,
        name: &str,
        range: TextRange,
        path: &[(Option<String>, TextRange)],
        value: ast::Expr,
    ) {
        let segments: Vec<Option<&str>> = path.iter().map(|(n, _)| n.as_deref()).collect();
        match segments.as_slice() {
            // `lib.nested (...)` and other computed declarations are not indexed.
            [] => {
                if let ast::Expr::AttrSet(set) = value {
                    self.decl(name, range);
                    for entry in set.attrpath_values() {
                        let Some(entry_path) = entry.attrpath().map(|p| static_names(&p)) else {
                            continue;
                        };
                        if let Some(entry_value) = entry.value() {
                            self.read_facts(name, range, &entry_path, entry_value);
                        }
                    }
                    if set.inherits().next().is_some() {
                        self.decl(name, range).inputs_open = true;
                    }
                }
            }
            [Some("type")] => {
                let literal = match &value {
                    ast::Expr::Str(string) => Some((
                        plain_string(string).unwrap_or_default(),
                        string.syntax().text_range(),
                    )),
                    _ => None,
                };
                self.decl(name, range).type_name = literal;
            }
            [Some("inputs")] => match value {
                ast::Expr::AttrSet(set) => {
                    let mut value_ranges = Vec::new();
                    for entry in set.attrpath_values() {
                        let Some(entry_path) = entry.attrpath().map(|p| static_names(&p)) else {
                            continue;
                        };
                        if let (Some((Some(input), input_range)), Some(input_value)) =
                            (entry_path.first().cloned(), entry.value())
                        {
                            value_ranges.push(input_value.syntax().text_range());
                            let literal = if entry_path.len() == 1 {
                                literal_type(&input_value)
                            } else {
                                Some("object")
                            };
                            self.add_input(
                                name,
                                range,
                                input,
                                input_range,
                                literal,
                                input_value.syntax().text_range(),
                            );
                        }
                    }
                    let decl = self.decl(name, range);
                    decl.inputs_open |= set.inherits().next().is_some();
                    decl.inputs_set = Some(InputsSet {
                        range: set.syntax().text_range(),
                        value_ranges,
                    });
                }
                // `inputs = { na` while typing parses as a function's argument pattern.
                ast::Expr::Lambda(lambda)
                    if matches!(lambda.param(), Some(ast::Param::Pattern(_))) =>
                {
                    let pattern = lambda.param().map(|p| p.syntax().text_range());
                    self.decl(name, range).inputs_set = pattern.map(|range| InputsSet {
                        range,
                        value_ranges: Vec::new(),
                    });
                }
                _ => self.decl(name, range).inputs_open = true,
            },
            [Some("inputs"), Some(input), rest @ ..] => {
                let literal = if rest.is_empty() {
                    literal_type(&value)
                } else {
                    Some("object")
                };
                let input_range = path[1].1;
                self.add_input(
                    name,
                    range,
                    (*input).to_owned(),
                    input_range,
                    literal,
                    value.syntax().text_range(),
                );
            }
            _ => {
                self.decl(name, range);
            }
        }
    }

    fn add_input(
        &mut self,
        name: &str,
        range: TextRange,
        input: String,
        input_range: TextRange,
        literal: Option<&'static str>,
        value_range: TextRange,
    ) {
        let decl = self.decl(name, range);
        if !decl.inputs.iter().any(|i| i.name == input) {
            decl.inputs.push(InputEntry {
                name: input,
                range: input_range,
                literal,
                value_range,
            });
        }
    }

    /// `resources.<name>[.<output>]`.
    fn read_reference(&mut self, select: &ast::Select) {
        let Some(ast::Expr::Ident(base)) = select.expr() else {
            return;
        };
        if base.syntax().text() != "resources" {
            return;
        }
        let Some(path) = select.attrpath().map(|p| static_names(&p)) else {
            return;
        };
        let Some((Some(resource), resource_range)) = path.first().cloned() else {
            return;
        };
        let output = match path.get(1) {
            Some((Some(output), range)) => Some((output.clone(), *range)),
            _ => None,
        };
        self.references.push(Reference {
            resource,
            resource_range,
            output,
        });
    }
}

/// The names of an attribute path, `None` for a dynamic part (`${x}`).
fn static_names(path: &ast::Attrpath) -> Vec<(Option<String>, TextRange)> {
    path.attrs()
        .map(|attr| {
            let range = attr.syntax().text_range();
            let name = match attr {
                ast::Attr::Ident(ident) => Some(ident.syntax().text().to_string()),
                ast::Attr::Str(string) => plain_string(&string),
                ast::Attr::Dynamic(_) => None,
            };
            (name, range)
        })
        .collect()
}

/// The text of a string without interpolations.
fn plain_string(string: &ast::Str) -> Option<String> {
    let mut text = String::new();
    for part in string.normalized_parts() {
        match part {
            ast::InterpolPart::Literal(literal) => text.push_str(&literal),
            ast::InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(text)
}

fn literal_type(value: &ast::Expr) -> Option<&'static str> {
    match value {
        ast::Expr::Str(_) => Some("string"),
        ast::Expr::List(_) => Some("array"),
        ast::Expr::AttrSet(_) => Some("object"),
        ast::Expr::Literal(literal) => match literal.syntax().first_token().map(|t| t.kind()) {
            Some(SyntaxKind::TOKEN_INTEGER) => Some("integer"),
            Some(SyntaxKind::TOKEN_FLOAT) => Some("number"),
            _ => None,
        },
        ast::Expr::Ident(ident) => match ident.syntax().text().to_string().as_str() {
            "true" | "false" => Some("boolean"),
            "null" => Some("null"),
            _ => None,
        },
        _ => None,
    }
}
