//! The incremental part of indexing: what each resource declaration's `{ ... }` said in
//! the previous version, kept by the identity of its green node, so that declarations
//! whose syntax did not change are not read again after an edit.
//!
//! Only declarations that hold no function and no nested declaration are kept: what they
//! say depends on their own text alone, so the same green node means the same facts. The
//! facts keep ranges relative to the declaration's start and are moved to where it is now.

use std::sync::Arc;

use rnix::ast;
use rnix::{SyntaxKind, TextRange, TextSize};
use rowan::ast::AstNode;
use rustc_hash::FxHashMap;

use super::lower::{Builder, ReferenceParts, read_alone, reference_parts};
use super::model::{DeclId, InputEntry, InputsSet, Said};
use crate::syntax::mentions;

/// What the previous version's declarations said, by the identity of their green node.
pub(crate) type BodyCache = FxHashMap<usize, (rowan::GreenNode, Arc<BodyFacts>)>;

pub(super) fn green_key(green: &rowan::GreenNode) -> usize {
    let data: &rowan::GreenNodeData = green;
    data as *const rowan::GreenNodeData as usize
}

/// What a resource's `{ ... }` says, with ranges from its start: type, inputs and the
/// references inside. Only for declarations that hold no function and no nested
/// declaration, so that it depends on their text alone.
#[derive(Debug)]
pub(crate) struct BodyFacts {
    decl: Said,
    references: Vec<ReferenceParts>,
}

impl BodyFacts {
    /// What `set` says: as `previous` kept it when its syntax is unchanged, else read now.
    /// Kept in `next` for the version after. `None` when it cannot be kept.
    pub(super) fn of(
        set: &ast::AttrSet,
        previous: &BodyCache,
        next: &mut BodyCache,
    ) -> Option<Arc<BodyFacts>> {
        let green = set.syntax().green().to_owned();
        let key = green_key(&green);
        // The cache holds the node, so its address names it alone.
        let facts = match previous.get(&key) {
            Some((_, facts)) => facts.clone(),
            None => Arc::new(BodyFacts::read(set)?),
        };
        next.insert(key, (green, facts.clone()));
        Some(facts)
    }

    pub(super) fn read(set: &ast::AttrSet) -> Option<BodyFacts> {
        let mut references = Vec::new();
        for node in set.syntax().descendants() {
            match node.kind() {
                SyntaxKind::NODE_LAMBDA => return None,
                SyntaxKind::NODE_ATTRPATH_VALUE => {
                    let declares = ast::AttrpathValue::cast(node)
                        .and_then(|e| e.attrpath())
                        .is_some_and(|p| {
                            mentions(&p, &["resources", "providers", "nixops4Deployments"])
                        });
                    if declares {
                        return None;
                    }
                }
                SyntaxKind::NODE_SELECT => {
                    references.extend(ast::Select::cast(node).as_ref().and_then(reference_parts));
                }
                _ => {}
            }
        }
        let mut decl = read_alone(set);
        let start = set.syntax().text_range().start();
        let from_start = |range: TextRange| range - start;
        decl.type_name = decl.type_name.map(|(t, r)| (t, from_start(r)));
        decl.type_entry_end = decl.type_entry_end.map(|end| end - start);
        for input in &mut decl.inputs {
            input.range = from_start(input.range);
            input.value_range = from_start(input.value_range);
        }
        if let Some(inputs) = &mut decl.inputs_set {
            inputs.range = from_start(inputs.range);
            for range in &mut inputs.value_ranges {
                *range = from_start(*range);
            }
        }
        for reference in &mut references {
            reference.resource_range = from_start(reference.resource_range);
            if let Some((_, range)) = &mut reference.output {
                *range = from_start(*range);
            }
        }
        Some(BodyFacts { decl, references })
    }
}

impl BodyFacts {
    /// What the body says of its resource, with ranges where the body starts at `start`.
    pub(super) fn decl_at(&self, start: TextSize) -> Said {
        let at = |range: TextRange| range + start;
        let body = &self.decl;
        Said {
            type_name: body.type_name.as_ref().map(|(t, r)| (t.clone(), at(*r))),
            type_entry_end: body.type_entry_end.map(|end| end + start),
            inputs: body
                .inputs
                .iter()
                .map(|input| InputEntry {
                    range: at(input.range),
                    value_range: at(input.value_range),
                    ..input.clone()
                })
                .collect(),
            inputs_set: body.inputs_set.as_ref().map(|inputs| InputsSet {
                range: at(inputs.range),
                value_ranges: inputs.value_ranges.iter().map(|r| at(*r)).collect(),
                closed: inputs.closed,
            }),
            inputs_open: body.inputs_open,
            ..Said::default()
        }
    }

    /// The references inside the body, with ranges where it starts at `start`.
    pub(super) fn references_at(&self, start: TextSize) -> impl Iterator<Item = ReferenceParts> {
        self.references.iter().map(move |parts| ReferenceParts {
            resource_range: parts.resource_range + start,
            output: parts.output.as_ref().map(|(o, r)| (o.clone(), *r + start)),
            ..parts.clone()
        })
    }
}

/// Puts what a body says (`BodyFacts::decl_at`) on the declaration it belongs to: the
/// type when it writes one, the inputs not already written elsewhere.
pub(super) fn add_body_facts(decl: &mut Said, body: Said) {
    if body.type_entry_end.is_some() {
        decl.type_name = body.type_name;
        decl.type_entry_end = body.type_entry_end;
    }
    for input in body.inputs {
        if !decl.inputs.iter().any(|i| i.name == input.name) {
            decl.inputs.push(input);
        }
    }
    if body.inputs_set.is_some() {
        decl.inputs_set = body.inputs_set;
    }
    decl.inputs_open |= body.inputs_open;
}

impl Builder<'_> {
    /// Puts what a declaration's `{ ... }` says (read now or earlier) on resource `id`.
    pub(super) fn apply_facts(&mut self, id: DeclId, set: &ast::AttrSet, facts: &BodyFacts) {
        let start = set.syntax().text_range().start();
        add_body_facts(&mut self.index.resources[id], facts.decl_at(start));
        for parts in facts.references_at(start) {
            self.add_reference(parts, set.syntax(), Some(id));
        }
        self.read_bodies.insert(set.syntax().text_range());
    }
}
