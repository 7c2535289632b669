//! What a version's diagnostics were, per declaration, so that after an edit inside one
//! declaration only that declaration is checked again: the others' diagnostics are moved
//! by the edit's length. Kept for the schemas and neighbours they were computed with.
//!
//! A declaration's part holds its own checks and those of the references written inside
//! it; references outside every named declaration have a part of their own, and so do
//! dependency cycles, which are found again only when the edited declaration names other
//! resources than before (or holds one of the cycle's references).

use std::collections::BTreeSet;

use super::{Diagnostic, Fix};
use crate::Schemas;
use crate::index::EditedDeclaration;

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

    /// The memo for the version after `edited`: the edited declaration to check again,
    /// the rest moved. `None` when its type changed, which references elsewhere depend on.
    pub(crate) fn after(mut self, edited: &EditedDeclaration) -> Option<DiagnosticsMemo> {
        if edited.type_changed {
            return None;
        }
        let cycles_hold = !edited.targets_changed
            && self
                .cycles
                .iter()
                .flatten()
                .all(|d| !edited.inside(d.range));
        if !cycles_hold {
            self.cycles = None;
        }
        *self.declarations.get_mut(edited.decl)? = None;
        let parts = self
            .declarations
            .iter_mut()
            .chain([&mut self.outside, &mut self.cycles]);
        for diagnostic in parts.flatten().flatten() {
            diagnostic.range = edited.moved(diagnostic.range);
            if let Some(Fix { edits, .. }) = &mut diagnostic.fix {
                for (range, _) in edits {
                    *range = edited.moved(*range);
                }
            }
        }
        Some(self)
    }
}
