//! Completion at an offset: resource types in `type = "|"`, input names inside
//! `inputs = { | }` (required first, ones already set left out), resource names after
//! `resources.`, and output names after `resources.<name>.`.

use serde_json::Value;

use crate::{Analysis, Schemas, TextSize, schema_type};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    Type,
    Input,
    Resource,
    Output,
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

impl Analysis {
    pub fn completions(&self, offset: TextSize, schemas: &Schemas) -> Vec<Completion> {
        let text = self.text();
        let mut end = usize::from(offset).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        if let Some(items) = self.reference_completions(before, schemas) {
            return items;
        }
        for decl in &self.index.resources {
            if let Some((_, range)) = &decl.type_name
                && range.start() < offset
                && offset < range.end()
            {
                return type_completions(schemas);
            }
            if let Some(set) = &decl.inputs_set
                && set.range.start() < offset
                && offset < set.range.end()
                && !set
                    .value_ranges
                    .iter()
                    .any(|r| r.start() <= offset && offset <= r.end())
            {
                let Some(description) = decl
                    .type_name
                    .as_ref()
                    .and_then(|(t, _)| schemas.types.get(t))
                else {
                    return Vec::new();
                };
                let typed = word_before(before);
                return input_completions(&description.inputs, |name| {
                    name != typed && decl.inputs.iter().any(|i| i.name == name)
                });
            }
        }
        Vec::new()
    }

    /// `resources.|` and `resources.<name>.|`, read from the text so that it works while
    /// the expression is still incomplete.
    fn reference_completions(&self, before: &str, schemas: &Schemas) -> Option<Vec<Completion>> {
        let typed = word_before(before);
        let rest = before[..before.len() - typed.len()].strip_suffix('.')?;
        if rest.ends_with("resources") && !is_word_char_before(rest, rest.len() - "resources".len())
        {
            let items = self
                .index
                .resources
                .iter()
                .map(|decl| Completion {
                    label: decl.name.clone(),
                    kind: CompletionKind::Resource,
                    detail: decl
                        .type_name
                        .as_ref()
                        .map(|(t, _)| t.clone())
                        .unwrap_or_default(),
                    documentation: String::new(),
                    snippet: decl.name.clone(),
                })
                .collect();
            return Some(items);
        }
        let name = word_before(rest);
        let base = rest[..rest.len() - name.len()].strip_suffix('.')?;
        if !base.ends_with("resources") || is_word_char_before(base, base.len() - "resources".len())
        {
            return None;
        }
        let decl = self.index.resource(name)?;
        let description = decl
            .type_name
            .as_ref()
            .and_then(|(t, _)| schemas.types.get(t))?;
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
                    documentation: schema
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    snippet: output.clone(),
                }
            })
            .collect();
        Some(items)
    }
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
                documentation: schema
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                snippet: format!("{name} = {value};"),
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
