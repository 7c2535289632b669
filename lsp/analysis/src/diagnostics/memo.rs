//! What a version's diagnostics were, per declaration, so that after an edit inside one
//! declaration, or of some entries of a resources set, only the declarations it touched
//! (and those whose references now mean another resource) are checked again: the others'
//! diagnostics are moved by the edit's length. Kept for the schemas and neighbours they
//! were computed with.
//!
//! A declaration's part holds its own checks and those of the references written inside
//! it; references outside every named declaration have a part of their own, and so do
//! dependency cycles, which are found again only when what references name changed (or
//! the edit touched one of a cycle's references).

use std::collections::BTreeSet;

use super::{Diagnostic, Fix};
use crate::Schemas;
use crate::index::Reindexed;

#[derive(Clone, Debug)]
pub(crate) struct DiagnosticsMemo {
    schemas: Schemas,
    neighbours: BTreeSet<String>,
    /// By declaration, named ones first, then typed ones; `None` to check again.
    pub(super) declarations: Vec<Option<Vec<Diagnostic>>>,
    /// Of the references outside every named declaration.
    pub(super) outside: Option<Vec<Diagnostic>>,
    pub(super) cycles: Option<Vec<Diagnostic>>,
}

impl DiagnosticsMemo {
    /// Nothing computed yet, for `count` declarations.
    pub(super) fn new(
        schemas: &Schemas,
        neighbours: &BTreeSet<String>,
        count: usize,
    ) -> DiagnosticsMemo {
        DiagnosticsMemo {
            schemas: schemas.clone(),
            neighbours: neighbours.clone(),
            declarations: vec![None; count],
            outside: None,
            cycles: None,
        }
    }

    pub(super) fn is_for(&self, schemas: &Schemas, neighbours: &BTreeSet<String>) -> bool {
        self.schemas == *schemas && self.neighbours == *neighbours
    }

    /// Everything computed, in no particular order.
    pub(super) fn all(&self) -> impl Iterator<Item = &Diagnostic> {
        self.declarations
            .iter()
            .chain([&self.outside, &self.cycles])
            .flatten()
            .flatten()
    }

    /// The memo for the version after an edit: what it replaced or changed the meaning
    /// of to check again, the rest moved. `None` when anything may have changed.
    pub(crate) fn after(mut self, edit: &Reindexed) -> Option<DiagnosticsMemo> {
        if edit.recheck_all || edit.at + edit.removed > self.declarations.len() {
            return None;
        }
        let cycles_hold =
            !edit.recheck_cycles && self.cycles.iter().flatten().all(|d| !edit.inside(d.range));
        if !cycles_hold {
            self.cycles = None;
        }
        self.declarations.splice(
            edit.at..edit.at + edit.removed,
            std::iter::repeat_n(None, edit.added),
        );
        let parts = self
            .declarations
            .iter_mut()
            .chain([&mut self.outside, &mut self.cycles]);
        for diagnostic in parts.flatten().flatten() {
            diagnostic.range = edit.moved(diagnostic.range);
            if let Some(Fix { edits, .. }) = &mut diagnostic.fix {
                for (range, _) in edits {
                    *range = edit.moved(*range);
                }
            }
        }
        for &decl in &edit.recheck {
            *self.declarations.get_mut(decl)? = None;
        }
        if edit.recheck_outside {
            self.outside = None;
        }
        Some(self)
    }
}
