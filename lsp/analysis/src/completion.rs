//! Completion at an offset: resource types in `type = "|"`, input names inside
//! `inputs = { | }` (required first, ones already set left out), the values an input's
//! schema lists, resource names after `resources.` (or `<outer>.resources.`), output names
//! after `resources.<name>.`, and the state resources after `state =`.

use serde_json::Value;

use crate::index::ScopeId;
use crate::{Analysis, Schemas, TextSize, schema_type};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    Type,
    Input,
    Value,
    Resource,
    Output,
    /// A module option (`options.rs`).
    Option,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    /// A short note shown beside the label: the JSON type, "required".
    pub detail: String,
    pub documentation: String,
    /// What to insert, in the LSP snippet syntax (`$1` for the cursor).
    pub snippet: String,
}

/// Completed after a dot where a name is still missing, so that the text around parses
/// as it will once the name is there.
pub(crate) const PLACEHOLDER: &str = "nixops4_completion_placeholder";

impl Analysis {
    /// `others`: the deployment's other files (module files), whose top-level resources
    /// `resources.` names and whose outputs `resources.<name>.` completes where this file
    /// does not declare that name.
    pub fn completions(
        &self,
        offset: TextSize,
        schemas: &Schemas,
        others: &[&Analysis],
    ) -> Vec<Completion> {
        let text = self.text();
        let at = usize::from(offset).min(text.len());
        if !self.parse_errors().is_empty()
            && text.is_char_boundary(at)
            && text[..at].ends_with('.')
            && !text[at..].starts_with(is_word_char)
        {
            // A reference being typed: the error stays inside the set around it (`parse`),
            // so the functions that say what `resources` is there still read.
            if let Some(items) = self.reference_completions(&text[..at], offset, schemas, others) {
                return items;
            }
            // With or without the `;` that a binding still lacks: whichever parses better,
            // the first that parses without error (each is an edit of the whole analysis).
            let mut tried = Vec::new();
            for insert in [&format!("{PLACEHOLDER};"), PLACEHOLDER] {
                let patched = self.edited(crate::TextRange::empty(offset), insert);
                let clean = patched.parse_errors().is_empty();
                tried.push(patched);
                if clean {
                    break;
                }
            }
            let patched = tried
                .into_iter()
                .min_by_key(|patched| patched.parse_errors().len());
            if let Some(patched) = patched {
                return patched.completions_in_parsed_text(offset, schemas, others);
            }
        }
        self.completions_in_parsed_text(offset, schemas, others)
    }

    fn completions_in_parsed_text(
        &self,
        offset: TextSize,
        schemas: &Schemas,
        others: &[&Analysis],
    ) -> Vec<Completion> {
        let text = self.text();
        let mut end = usize::from(offset).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        if let Some(items) = self.reference_completions(before, offset, schemas, others) {
            return items;
        }
        if let Some(items) = self.state_completions(before, offset) {
            return items;
        }
        for decl in self.index.declarations().filter(|d| d.spans(offset)) {
            if let Some((_, range)) = decl.type_name()
                && range.start() < offset
                && offset < range.end()
            {
                return type_completions(schemas);
            }
            if let Some(input) = decl
                .inputs()
                .find(|i| i.value_range.start() < offset && offset < i.value_range.end())
                && let Some((_, description)) = self.description(decl, schemas)
                && let Some(schema) = description
                    .inputs
                    .get("properties")
                    .and_then(|p| p.get(input.name))
            {
                let in_string = input.literal == Some("string");
                return value_completions(schema, in_string);
            }
            if let Some(set) = decl.inputs_set()
                && set.range.start() < offset
                && offset < set.range.end()
                && !set
                    .value_ranges
                    .iter()
                    .any(|r| r.start() <= offset && offset <= r.end())
            {
                let Some((_, description)) = self.description(decl, schemas) else {
                    return Vec::new();
                };
                let typed = word_before(before);
                return input_completions(&description.inputs, |name| {
                    name != typed && decl.has_input(name)
                });
            }
        }
        Vec::new()
    }

    /// `resources.|`, `<outer>.resources.|` and `resources.<name>.|`, read from the text so
    /// that it works while the expression is still incomplete.
    fn reference_completions(
        &self,
        before: &str,
        offset: TextSize,
        schemas: &Schemas,
        others: &[&Analysis],
    ) -> Option<Vec<Completion>> {
        let typed = word_before(before);
        let rest = before[..before.len() - typed.len()].strip_suffix('.')?;
        if let Some(scope) = self.reference_scope(rest, offset) {
            let local = self
                .index
                .resources
                .iter()
                .filter(|decl| decl.scope == scope);
            // At top level, the other files' top-level resources too, once each.
            let mut seen = std::collections::BTreeSet::new();
            let beside = others
                .iter()
                .filter(|_| self.index.is_top_level(scope))
                .flat_map(|other| other.top_level_resources());
            let items = local
                .chain(beside)
                .filter(|decl| seen.insert(decl.name.clone()))
                .map(|decl| Completion {
                    label: decl.name.clone(),
                    kind: CompletionKind::Resource,
                    detail: match (decl.type_name(), decl.nested) {
                        (_, Some(_)) => "nested deployment".into(),
                        (Some((t, _)), None) => t.to_owned(),
                        (None, None) => String::new(),
                    },
                    documentation: String::new(),
                    snippet: crate::attribute_name(&decl.name),
                })
                .collect();
            return Some(items);
        }
        let name = word_before(rest);
        let base = rest[..rest.len() - name.len()].strip_suffix('.')?;
        let scope = self.reference_scope(base, offset)?;
        let (owner, decl) = match self.index.find(scope, name) {
            Some(id) => (self, &self.index.resources[id]),
            None if self.index.is_top_level(scope) => others.iter().find_map(|other| {
                let decl = other.top_level_resources().find(|d| d.name == name)?;
                Some((*other, decl))
            })?,
            None => return None,
        };
        if let Some(nested) = decl.nested {
            let items = owner
                .index
                .resources
                .iter()
                .filter(|inner| inner.scope == nested)
                .map(|inner| Completion {
                    label: inner.name.clone(),
                    kind: CompletionKind::Resource,
                    detail: inner
                        .type_name()
                        .map(|(t, _)| t.to_owned())
                        .unwrap_or_default(),
                    documentation: String::new(),
                    snippet: crate::attribute_name(&inner.name),
                })
                .collect();
            return Some(items);
        }
        let (_, description) = owner.description(decl, schemas)?;
        let properties = description
            .outputs
            .get("properties")
            .and_then(Value::as_object)?;
        let items = properties
            .iter()
            .map(|(output, schema)| {
                let secret = description.secret_outputs.contains(output);
                Completion {
                    label: output.clone(),
                    kind: CompletionKind::Output,
                    detail: format!(
                        "{}{}",
                        schema_type(schema).join(" | "),
                        if secret { " (secret)" } else { "" }
                    ),
                    documentation: describe(schema),
                    snippet: output.clone(),
                }
            })
            .collect();
        Some(items)
    }

    /// The resources declared at top level, which a deployment's other files may name.
    fn top_level_resources(&self) -> impl Iterator<Item = &crate::index::ResourceDecl> {
        self.index
            .resources
            .iter()
            .filter(|decl| self.index.is_top_level(decl.scope))
    }

    /// The scope whose resources `text` (ending in `resources` or `<outer>.resources`)
    /// names, at `offset`.
    fn reference_scope(&self, text: &str, offset: TextSize) -> Option<ScopeId> {
        let rest = text.strip_suffix("resources")?;
        if rest.ends_with(|c: char| is_word_char(c)) {
            return None;
        }
        let Some(outer) = rest.strip_suffix('.') else {
            // `resources` itself: the innermost scope here.
            return Some(self.scope_at(offset));
        };
        let binder = word_before(outer);
        if binder.is_empty() || is_word_char_before(outer, outer.len() - binder.len()) {
            return None;
        }
        self.binding_scope(binder, offset)
    }

    /// `state = |` offers the state resources (`local.state_file`) of the scope.
    fn state_completions(&self, before: &str, offset: TextSize) -> Option<Vec<Completion>> {
        let value = before.trim_end_matches([' ', '\t']);
        let key = value.strip_suffix('=')?.trim_end();
        if !key.ends_with("state") || is_word_char_before(key, key.len() - "state".len()) {
            return None;
        }
        let scope = self.scope_at(offset);
        let items = self
            .index
            .resources
            .iter()
            .filter(|decl| {
                decl.scope == scope
                    && decl
                        .type_name()
                        .is_some_and(|(t, _)| t == "local.state_file")
            })
            .map(|decl| {
                let reference = format!("resources.{}", crate::attribute_name(&decl.name));
                Completion {
                    label: reference.clone(),
                    kind: CompletionKind::Resource,
                    detail: "local.state_file".into(),
                    documentation: "Keep this deployment's state in the file this resource names."
                        .into(),
                    snippet: format!("{reference};"),
                }
            })
            .collect();
        Some(items)
    }
}

/// The values a property's schema lists (`enum`, or `oneOf`/`anyOf` of `const`s), and
/// `true`/`false` for booleans; strings bare when the cursor is already inside quotes.
fn value_completions(schema: &Value, in_string: bool) -> Vec<Completion> {
    let mut values: Vec<Value> = schema
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for key in ["oneOf", "anyOf"] {
        for alternative in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(constant) = alternative.get("const") {
                values.push(constant.clone());
            }
        }
    }
    if values.is_empty() && !in_string && schema_type(schema).contains(&"boolean") {
        values = vec![Value::Bool(true), Value::Bool(false)];
    }
    values
        .into_iter()
        .filter_map(|value| {
            let snippet = match (&value, in_string) {
                (Value::String(text), true) => text.clone(),
                (Value::String(_), false) => value.to_string(),
                (_, true) => return None,
                (other, false) => other.to_string(),
            };
            Some(Completion {
                label: snippet.clone(),
                kind: CompletionKind::Value,
                detail: String::new(),
                documentation: describe(schema),
                snippet,
            })
        })
        .collect()
}

fn describe(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn type_completions(schemas: &Schemas) -> Vec<Completion> {
    schemas
        .types
        .iter()
        .map(|(name, description)| Completion {
            label: name.clone(),
            kind: CompletionKind::Type,
            detail: String::new(),
            documentation: description.description.clone(),
            snippet: name.clone(),
        })
        .collect()
}

/// The inputs of a schema, required ones first, leaving out those `skip` says.
fn input_completions(inputs: &Value, skip: impl Fn(&str) -> bool) -> Vec<Completion> {
    let Some(properties) = inputs.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let required: Vec<&str> = inputs
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut items: Vec<(bool, Completion)> = properties
        .iter()
        .filter(|(name, _)| !skip(name))
        .map(|(name, schema)| {
            let is_required = required.contains(&name.as_str());
            let types = schema_type(schema);
            let value = match types.first().copied() {
                Some("string") => "\"$1\"",
                Some("array") => "[ $1 ]",
                Some("object") => "{ $1 }",
                _ => "$1",
            };
            let mut detail = types.join(" | ");
            if is_required {
                detail = if detail.is_empty() {
                    "required".into()
                } else {
                    format!("{detail}, required")
                };
            }
            let item = Completion {
                label: name.clone(),
                kind: CompletionKind::Input,
                detail,
                documentation: describe(schema),
                snippet: format!("{} = {value};", crate::attribute_name(name)),
            };
            (!is_required, item)
        })
        .collect();
    items.sort_by(|a, b| (a.0, &a.1.label).cmp(&(b.0, &b.1.label)));
    items.into_iter().map(|(_, item)| item).collect()
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\'')
}

/// The identifier characters just before the end of `text`.
fn word_before(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word_char(*c))
        .last()
        .map_or(text.len(), |(i, _)| i);
    &text[start..]
}

fn is_word_char_before(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_some_and(|c| is_word_char(c) || c == '.')
}

#[cfg(test)]
mod tests;
