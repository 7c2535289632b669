//! Diagnostics as you type: syntax errors, unknown resource types, unknown inputs,
//! missing required inputs, literals of the wrong JSON type, references to unknown
//! resources or outputs, duplicate resources and dependency cycles. Each has a precise
//! range, a stable code and, where the fix is obvious, the edit that fixes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::PoisonError;

use serde_json::Value;

use crate::index::{DeclId, ResourceDecl, ScopeId};
use crate::{Analysis, Schemas, TextRange, TextSize, did_you_mean, schema_type};

/// How many unknown resource names get a "did you mean" in one file: each compares the name
/// with every resource of its scope.
const SUGGESTED_UNKNOWN_RESOURCES: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub range: TextRange,
    pub code: DiagnosticCode,
    pub message: String,
    pub fix: Option<Fix>,
}

/// What kind of problem a diagnostic reports; its [`DiagnosticCode::as_str`] is stable,
/// for code actions, clients and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiagnosticCode {
    /// The text does not parse.
    Syntax,
    /// A `type` its provider does not know.
    UnknownType,
    /// An input the type's schema does not have.
    UnknownInput,
    /// A required input that is not written.
    MissingInput,
    /// A literal of another JSON type than the schema asks for.
    WrongType,
    /// `resources.<name>` where no such resource is declared.
    UnknownResource,
    /// `resources.<name>.<output>` where the type has no such output.
    UnknownOutput,
    /// A resource declared twice in one scope.
    DuplicateResource,
    /// Resources whose inputs refer to each other in a circle.
    DependencyCycle,
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The deployment cannot be evaluated or applied as written.
    Error,
    /// Likely wrong, though evaluation may still tell otherwise (a schema can be out of
    /// date, a module file may declare what this one misses).
    Warning,
}

impl DiagnosticCode {
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticCode::Syntax => "syntax",
            DiagnosticCode::UnknownType => "unknown-type",
            DiagnosticCode::UnknownInput => "unknown-input",
            DiagnosticCode::MissingInput => "missing-input",
            DiagnosticCode::WrongType => "wrong-type",
            DiagnosticCode::UnknownResource => "unknown-resource",
            DiagnosticCode::UnknownOutput => "unknown-output",
            DiagnosticCode::DuplicateResource => "duplicate-resource",
            DiagnosticCode::DependencyCycle => "dependency-cycle",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            DiagnosticCode::Syntax
            | DiagnosticCode::DuplicateResource
            | DiagnosticCode::DependencyCycle => Severity::Error,
            DiagnosticCode::UnknownType
            | DiagnosticCode::UnknownInput
            | DiagnosticCode::MissingInput
            | DiagnosticCode::WrongType
            | DiagnosticCode::UnknownResource
            | DiagnosticCode::UnknownOutput => Severity::Warning,
        }
    }
}

impl std::fmt::Display for DiagnosticCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quick fix: edits of this file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<(TextRange, String)>,
}

impl Fix {
    fn replace(range: TextRange, text: String) -> Fix {
        Fix {
            title: format!("Change to `{text}`"),
            edits: vec![(range, text)],
        }
    }
}

impl Analysis {
    /// `neighbours`: the resources other files of the same deployment declare at top level
    /// (module files), which references at top level may name.
    pub fn diagnostics(&self, schemas: &Schemas, neighbours: &BTreeSet<String>) -> Vec<Diagnostic> {
        let mut memo = self
            .diagnosed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let memo = match &mut *memo {
            Some(memo) if memo.is_for(schemas, neighbours) => memo,
            other => other.insert(DiagnosticsMemo::new(
                schemas,
                neighbours,
                self.index.declarations().count(),
            )),
        };
        self.complete(memo, schemas, neighbours);
        let mut found = self.syntax_diagnostics();
        found.extend(memo.all().cloned());
        found.sort_by_key(|d| (d.range.start(), d.range.end()));
        found
    }

    /// Computes what `memo` lacks.
    fn complete(
        &self,
        memo: &mut DiagnosticsMemo,
        schemas: &Schemas,
        neighbours: &BTreeSet<String>,
    ) {
        let dirty: Vec<bool> = memo.declarations.iter().map(Option::is_none).collect();
        let outside_dirty = memo.outside.is_none();
        let known_providers: BTreeSet<&str> = schemas.providers().collect();
        for ((decl, part), dirty) in self
            .index
            .declarations()
            .zip(&mut memo.declarations)
            .zip(&dirty)
        {
            if *dirty {
                let mut found = Vec::new();
                self.check_declaration(decl, schemas, &known_providers, &mut found);
                *part = Some(found);
            }
        }
        if outside_dirty {
            memo.outside = Some(Vec::new());
        }
        let wanted = |within: Option<DeclId>| within.map_or(outside_dirty, |decl| dirty[decl]);
        for (within, diagnostic) in self.check_references(schemas, neighbours, wanted) {
            let part = match within {
                Some(decl) => &mut memo.declarations[decl],
                None => &mut memo.outside,
            };
            part.get_or_insert_with(Vec::new).push(diagnostic);
        }
        if memo.cycles.is_none() {
            let mut found = Vec::new();
            self.check_cycles(&mut found);
            memo.cycles = Some(found);
        }
    }

    fn syntax_diagnostics(&self) -> Vec<Diagnostic> {
        let end = self.root().text_range().end();
        self.parse_errors()
            .iter()
            .map(|error| {
                let range = match error {
                    rnix::ParseError::Unexpected(range)
                    | rnix::ParseError::UnexpectedExtra(range)
                    | rnix::ParseError::UnexpectedWanted(_, range, _)
                    | rnix::ParseError::UnexpectedDoubleBind(range) => *range,
                    _ => TextRange::empty(end),
                };
                Diagnostic {
                    range,
                    code: DiagnosticCode::Syntax,
                    message: error.to_string(),
                    fix: None,
                }
            })
            .collect()
    }

    fn check_declaration(
        &self,
        decl: &ResourceDecl,
        schemas: &Schemas,
        known_providers: &BTreeSet<&str>,
        found: &mut Vec<Diagnostic>,
    ) {
        for duplicate in decl.whole_ranges().skip(1) {
            found.push(Diagnostic {
                range: duplicate,
                code: DiagnosticCode::DuplicateResource,
                message: format!("resource `{}` is declared more than once", decl.name),
                fix: None,
            });
        }
        let Some((type_name, type_range)) = decl.type_name() else {
            return;
        };
        let Some((_, description)) = self.description(decl, schemas) else {
            // Only a provider whose types are known can say a type does not exist.
            let provider = type_name.split_once('.').map_or(type_name, |(p, _)| p);
            if known_providers.contains(provider) {
                let suggestion = did_you_mean(type_name, schemas.types.keys().map(String::as_str));
                found.push(Diagnostic {
                    range: type_range,
                    code: DiagnosticCode::UnknownType,
                    message: with_suggestion(
                        format!("unknown resource type `{type_name}`"),
                        suggestion,
                    ),
                    fix: suggestion.map(|close| Fix::replace(type_range, format!("\"{close}\""))),
                });
            }
            return;
        };
        let properties = description
            .inputs
            .get("properties")
            .and_then(Value::as_object);
        let closed = description.inputs.get("additionalProperties") == Some(&Value::Bool(false));
        // Inputs that a misspelt one most likely means: fixing the typo adds them.
        let mut meant: Vec<&str> = Vec::new();
        for input in decl.inputs() {
            match properties.and_then(|p| p.get(input.name)) {
                None if closed => {
                    let suggestion = did_you_mean(
                        input.name,
                        properties
                            .into_iter()
                            .flat_map(|p| p.keys().map(String::as_str))
                            .filter(|name| !decl.has_input(name)),
                    );
                    meant.extend(suggestion);
                    found.push(Diagnostic {
                        range: input.range,
                        code: DiagnosticCode::UnknownInput,
                        message: with_suggestion(
                            format!("`{type_name}` has no input `{}`", input.name),
                            suggestion,
                        ),
                        fix: suggestion.map(|close| Fix::replace(input.range, close.to_owned())),
                    });
                }
                Some(schema) => {
                    let expected = schema_type(schema);
                    if let Some(literal) = input.literal
                        && !expected.is_empty()
                        && !expected.contains(&literal)
                        && !(literal == "integer" && expected.contains(&"number"))
                    {
                        found.push(Diagnostic {
                            range: input.value_range,
                            code: DiagnosticCode::WrongType,
                            message: format!(
                                "input `{}` must be {}, not {literal}",
                                input.name,
                                expected.join(" or ")
                            ),
                            fix: None,
                        });
                    }
                }
                None => {}
            }
        }
        if decl.inputs_open {
            return;
        }
        let missing: Vec<&str> = description
            .inputs
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|name| !decl.has_input(name))
            .collect();
        if missing.is_empty() {
            return;
        }
        let range = decl.inputs_set().map_or(type_range, |set| set.range);
        let to_add: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|m| !meant.contains(m))
            .collect();
        found.push(Diagnostic {
            range,
            code: DiagnosticCode::MissingInput,
            message: format!("`{type_name}` needs {}", inputs_listed(&missing)),
            fix: self
                .add_inputs_fix(decl, &to_add, properties)
                .map(|edit| Fix {
                    title: format!("Add {}", inputs_listed(&to_add)),
                    edits: vec![edit],
                }),
        });
    }

    /// Inserts `name = <placeholder>;` for each missing input: before the closing brace of
    /// the inputs set, or as a new `inputs` entry after `type`.
    fn add_inputs_fix(
        &self,
        decl: &ResourceDecl,
        missing: &[&str],
        properties: Option<&serde_json::Map<String, Value>>,
    ) -> Option<(TextRange, String)> {
        if missing.is_empty() {
            return None;
        }
        let entry = |name: &str| {
            let placeholder = match properties
                .and_then(|p| p.get(name))
                .map(schema_type)
                .and_then(|t| t.first().copied())
            {
                Some("string") => "\"\"",
                Some("array") => "[ ]",
                Some("object") => "{ }",
                Some("integer") | Some("number") => "0",
                Some("boolean") => "false",
                _ => "null",
            };
            format!("{} = {placeholder};", crate::attribute_name(name))
        };
        let text = self.text();
        match decl.inputs_set() {
            Some(set) if set.closed => {
                let brace = usize::from(set.range.end()) - 1;
                let line_start = text[..brace].rfind('\n').map_or(0, |i| i + 1);
                let indent = &text[line_start..brace];
                let at = TextSize::from(line_start as u32);
                if indent.chars().all(char::is_whitespace) && line_start > 0 {
                    let lines: String = missing
                        .iter()
                        .map(|m| format!("{indent}  {}\n", entry(m)))
                        .collect();
                    Some((TextRange::empty(at), lines))
                } else {
                    let joined: Vec<String> = missing.iter().map(|m| entry(m)).collect();
                    let separator = if text[..brace].ends_with(' ') {
                        ""
                    } else {
                        " "
                    };
                    Some((
                        TextRange::empty(TextSize::from(brace as u32)),
                        format!("{separator}{} ", joined.join(" ")),
                    ))
                }
            }
            None if decl.inputs().next().is_none() => {
                let at = decl.type_entry_end()?;
                let joined: Vec<String> = missing.iter().map(|m| entry(m)).collect();
                Some((
                    TextRange::empty(at),
                    format!(" inputs = {{ {} }};", joined.join(" ")),
                ))
            }
            _ => None,
        }
    }

    /// The diagnostics of the references written inside the declarations `wanted` says
    /// (`None`: outside every named one), with the declaration each is in.
    fn check_references(
        &self,
        schemas: &Schemas,
        neighbours: &BTreeSet<String>,
        wanted: impl Fn(Option<DeclId>) -> bool,
    ) -> Vec<(Option<DeclId>, Diagnostic)> {
        let mut found = Vec::new();
        // The names each scope offers as suggestions, gathered once; and suggestions for
        // the first few unknown names only, so that a file where every reference is
        // unknown (its declarations half-typed) costs no more than one that has a few.
        let mut names_by_scope: HashMap<ScopeId, Vec<&str>> = HashMap::new();
        let mut suggestions_left = SUGGESTED_UNKNOWN_RESOURCES;
        for reference in self.index.references.iter().filter(|r| wanted(r.within)) {
            let within = reference.within;
            let Some(decl) = self.index.resolve(reference) else {
                let top_level = self.index.is_top_level(reference.scope);
                if top_level && neighbours.contains(&*reference.resource) {
                    continue;
                }
                let local = names_by_scope.entry(reference.scope).or_insert_with(|| {
                    self.index
                        .resources
                        .iter()
                        .filter(|r| r.scope == reference.scope)
                        .map(|r| r.name.as_str())
                        .collect()
                });
                // A file that declares nothing at top level and has no neighbours cannot tell.
                if local.is_empty() && top_level && neighbours.is_empty() {
                    continue;
                }
                let candidates = local
                    .iter()
                    .copied()
                    .chain(neighbours.iter().map(String::as_str).filter(|_| top_level));
                let suggestion = if suggestions_left > 0 {
                    suggestions_left -= 1;
                    did_you_mean(&reference.resource, candidates)
                } else {
                    None
                };
                found.push((
                    within,
                    Diagnostic {
                        range: reference.resource_range,
                        code: DiagnosticCode::UnknownResource,
                        message: with_suggestion(
                            format!("there is no resource `{}`", reference.resource),
                            suggestion,
                        ),
                        fix: suggestion.map(|close| {
                            Fix::replace(reference.resource_range, crate::attribute_name(close))
                        }),
                    },
                ));
                continue;
            };
            let decl = &self.index.resources[decl];
            let Some((output, range)) = &reference.output else {
                continue;
            };
            if decl.nested.is_some() {
                continue;
            }
            let outputs = self
                .description(decl, schemas)
                .and_then(|(_, d)| d.outputs.get("properties"))
                .and_then(Value::as_object);
            if let Some(outputs) = outputs
                && !outputs.contains_key(&**output)
            {
                let suggestion = did_you_mean(output, outputs.keys().map(String::as_str));
                found.push((
                    within,
                    Diagnostic {
                        range: *range,
                        code: DiagnosticCode::UnknownOutput,
                        message: with_suggestion(
                            format!("resource `{}` has no output `{output}`", decl.name),
                            suggestion,
                        ),
                        fix: suggestion.map(|close| Fix::replace(*range, close.to_owned())),
                    },
                ));
            }
        }
        found
    }
}

/// "input `a`" or "inputs `a`, `b`".
fn inputs_listed(names: &[&str]) -> String {
    let noun = if names.len() == 1 { "input" } else { "inputs" };
    let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("{noun} {}", listed.join(", "))
}

fn with_suggestion(message: String, suggestion: Option<&str>) -> String {
    match suggestion {
        Some(close) => format!("{message} (did you mean `{close}`?)"),
        None => message,
    }
}

mod cycles;
mod memo;
#[cfg(test)]
mod tests;

pub(crate) use memo::DiagnosticsMemo;
