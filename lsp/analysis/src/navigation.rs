//! Hover and what a position names: documentation from the providers' schemas, the
//! values the state last recorded (secrets never shown), and the resource or output under
//! the cursor, for definition, references and rename.

use serde_json::Value;

pub use crate::index::ScopeId;
use crate::index::{DeclId, ResourceDecl};
use crate::{Analysis, Recorded, Schemas, TextRange, TextSize, schema_type};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoverInfo {
    pub range: TextRange,
    pub markdown: String,
}

/// A resource, or one of its outputs, as named at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub scope: ScopeId,
    pub resource: String,
    pub output: Option<String>,
    /// The range of the name under the cursor.
    pub range: TextRange,
}

/// Longest value shown in a hover, in characters.
const SHOWN_VALUE_LIMIT: usize = 200;

fn contains(range: TextRange, offset: TextSize) -> bool {
    range.start() <= offset && offset <= range.end()
}

fn property_doc(name: &str, schema: &Value, note: &str) -> String {
    let types = schema_type(schema).join(" | ");
    let mut text = format!("**{name}**");
    if !types.is_empty() {
        text.push_str(&format!(" `{types}`"));
    }
    if !note.is_empty() {
        text.push_str(&format!(" ({note})"));
    }
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        text.push_str("\n\n");
        text.push_str(description);
    }
    text
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= SHOWN_VALUE_LIMIT {
        return text;
    }
    let cut: String = text.chars().take(SHOWN_VALUE_LIMIT).collect();
    format!("{cut}…")
}

impl Analysis {
    pub fn hover(
        &self,
        offset: TextSize,
        schemas: &Schemas,
        recorded: &Recorded,
    ) -> Option<HoverInfo> {
        for (id, decl) in self.index.resources.iter().enumerate() {
            let description = self.description(decl, schemas);
            if let (Some((_, range)), Some((type_name, description))) =
                (&decl.type_name, description)
                && contains(*range, offset)
            {
                return Some(HoverInfo {
                    range: *range,
                    markdown: format!("**{type_name}**\n\n{}", description.description),
                });
            }
            if let Some(range) = decl.name_ranges.iter().find(|r| contains(**r, offset)) {
                return Some(HoverInfo {
                    range: *range,
                    markdown: self.resource_doc(id, schemas, recorded),
                });
            }
            for input in &decl.inputs {
                if contains(input.range, offset)
                    && let Some((_, description)) = description
                    && let Some(schema) = description
                        .inputs
                        .get("properties")
                        .and_then(|p| p.get(&input.name))
                {
                    let required = description
                        .inputs
                        .get("required")
                        .and_then(Value::as_array)
                        .is_some_and(|r| r.iter().any(|n| n == input.name.as_str()));
                    let mut notes = Vec::new();
                    if required {
                        notes.push("required");
                    }
                    if description.replace_on_change.contains(&input.name) {
                        notes.push("changing it replaces the resource");
                    }
                    return Some(HoverInfo {
                        range: input.range,
                        markdown: property_doc(&input.name, schema, &notes.join(", ")),
                    });
                }
            }
        }
        for reference in &self.index.references {
            let Some(id) = self.index.resolve(reference) else {
                continue;
            };
            if contains(reference.resource_range, offset) {
                return Some(HoverInfo {
                    range: reference.resource_range,
                    markdown: self.resource_doc(id, schemas, recorded),
                });
            }
            let decl = &self.index.resources[id];
            if let Some((output, range)) = &reference.output
                && contains(*range, offset)
                && let Some((_, description)) = self.description(decl, schemas)
                && let Some(schema) = description
                    .outputs
                    .get("properties")
                    .and_then(|p| p.get(output))
            {
                let secret = description.secret_outputs.contains(output);
                let mut markdown = property_doc(output, schema, if secret { "secret" } else { "" });
                if let Some(value) = recorded
                    .get(&self.index.path(id))
                    .and_then(|o| o.get(output))
                {
                    markdown.push_str("\n\n");
                    markdown.push_str(&if secret {
                        "Last recorded value: *(secret, not shown)*".to_owned()
                    } else {
                        format!("Last recorded value: `{}`", shown(value))
                    });
                }
                return Some(HoverInfo {
                    range: *range,
                    markdown,
                });
            }
        }
        None
    }

    /// A resource's type and its last recorded outputs. Values are shown only when the
    /// provider describes the type, since only then is it known which are secret.
    fn resource_doc(&self, id: DeclId, schemas: &Schemas, recorded: &Recorded) -> String {
        let decl = &self.index.resources[id];
        let path = self.index.path(id);
        if decl.nested.is_some() {
            return format!("nested deployment **{}**", path.join("."));
        }
        let type_name = decl
            .type_name
            .as_ref()
            .map_or("(type not known)", |(t, _)| t.as_str());
        let mut text = format!("resource **{}** `{type_name}`", path.join("."));
        let Some(outputs) = recorded.get(&path) else {
            return text;
        };
        match self.description(decl, schemas) {
            Some((_, description)) => {
                text.push_str("\n\nLast recorded outputs:");
                for (name, value) in outputs {
                    if description.secret_outputs.contains(name) {
                        text.push_str(&format!("\n- `{name}`: *(secret, not shown)*"));
                    } else {
                        text.push_str(&format!("\n- `{name}`: `{}`", shown(value)));
                    }
                }
            }
            None => text.push_str(
                "\n\nRecorded in state; values are shown once its provider describes which are secret.",
            ),
        }
        text
    }

    /// The resource or output named at `offset`: in a declaration's name, or in a reference.
    pub fn target(&self, offset: TextSize) -> Option<Target> {
        for decl in &self.index.resources {
            if let Some(range) = decl.name_ranges.iter().find(|r| contains(**r, offset)) {
                return Some(Target {
                    scope: decl.scope,
                    resource: decl.name.clone(),
                    output: None,
                    range: *range,
                });
            }
        }
        self.index.references.iter().find_map(|reference| {
            let target = |output: Option<String>, range| Target {
                scope: reference.scope,
                resource: reference.resource.clone(),
                output,
                range,
            };
            if contains(reference.resource_range, offset) {
                return Some(target(None, reference.resource_range));
            }
            match &reference.output {
                Some((output, range)) if contains(*range, offset) => {
                    Some(target(Some(output.clone()), *range))
                }
                _ => None,
            }
        })
    }

    /// The declaration of a resource in this file.
    pub(crate) fn declaration(&self, scope: ScopeId, name: &str) -> Option<&ResourceDecl> {
        self.index
            .find(scope, name)
            .map(|id| &self.index.resources[id])
    }

    /// Where this file writes a resource's name (declarations and references in `scope`),
    /// or, for an output, where references name that output.
    pub fn occurrences(
        &self,
        scope: ScopeId,
        resource: &str,
        output: Option<&str>,
    ) -> Vec<TextRange> {
        let mut ranges = Vec::new();
        if output.is_none()
            && let Some(decl) = self.declaration(scope, resource)
        {
            ranges.extend(decl.name_ranges.iter().copied());
        }
        for reference in &self.index.references {
            if reference.scope != scope || reference.resource != resource {
                continue;
            }
            match (output, &reference.output) {
                (None, _) => ranges.push(reference.resource_range),
                (Some(wanted), Some((named, range))) if wanted == named => ranges.push(*range),
                _ => {}
            }
        }
        ranges.sort_by_key(|r| r.start());
        ranges
    }
}
