//! The index after an edit inside one resource declaration's `{ ... }`, in time
//! proportional to that declaration rather than to the file: what the declaration says is
//! read again, and every other range is moved by the edit's length.
//!
//! Only for a declaration that `cache` could keep (no function and no nested declaration
//! inside, so that what it says depends on its own text alone), that is its resource's one
//! body, in a tree that is the old one outside it. Anything else is indexed again whole.
//! `lsp/analysis/tests/edits.rs` holds the result equal to indexing the new tree whole.

use std::collections::BTreeSet;
use std::sync::Arc;

use rnix::ast;
use rnix::{SyntaxNode, TextRange, TextSize};
use rowan::ast::AstNode;
use rustc_hash::FxHashMap;

use super::cache::{BodyCache, BodyFacts, add_body_facts, green_key};
use super::lower::binding_scope;
use super::model::{DeclId, Index, Reference, ResourceDecl, Said, ScopeId};

/// What an edit changes in the index: one declaration's body, read again.
pub(crate) struct BodyEdit {
    decl: DeclId,
    old_body: TextRange,
    /// The old body's key in the cache.
    old_key: usize,
    new_body: TextRange,
    new_green: rowan::GreenNode,
    facts: Arc<BodyFacts>,
    references: Vec<Reference>,
}

impl BodyEdit {
    /// The edit of `index` (of `old_root`) that `edited` (a range of the old text, whose
    /// length changed by `delta`) made, when it lies inside one declaration's body and
    /// `new_root` is `old_root` outside that body.
    pub(crate) fn of(
        index: &Index,
        old_root: &SyntaxNode,
        new_root: &SyntaxNode,
        edited: TextRange,
        delta: i64,
    ) -> Option<BodyEdit> {
        let (old_set, decl) = sets_around(old_root, edited)
            .find_map(|set| Some((set.clone(), body_of(index, set.syntax().text_range())?)))?;
        let old_body = old_set.syntax().text_range();
        let decl = only_declaration_of(index, decl, old_body)?;
        // What it said must be all its declaration says.
        let old_facts = BodyFacts::read(&old_set)?;
        let mut said = ResourceDecl::default();
        add_body_facts(&mut said, old_facts.decl_at(old_body.start()));
        if !same_facts(&index.resources[decl], &said) {
            return None;
        }
        let new_len = u32::try_from(i64::from(u32::from(old_body.len())) + delta).ok()?;
        let new_body = TextRange::at(old_body.start(), TextSize::from(new_len));
        let new_set = new_root
            .covering_element(new_body)
            .into_node()
            .and_then(|node| {
                node.ancestors()
                    .take_while(|n| n.text_range() == new_body)
                    .find_map(ast::AttrSet::cast)
            })?;
        if !same_outside(old_set.syntax(), new_set.syntax()) {
            return None;
        }
        let facts = Arc::new(BodyFacts::read(&new_set)?);
        let shift = Shift {
            body: old_body,
            delta,
        };
        let lambda_scopes = lambda_scopes(index, &shift);
        let references = facts
            .references_at(new_body.start())
            .filter_map(|parts| {
                let scope = binding_scope(&lambda_scopes, &parts.base, new_set.syntax())?;
                Some(Reference {
                    scope,
                    within: Some(decl),
                    resource: parts.resource,
                    resource_range: parts.resource_range,
                    output: parts.output,
                })
            })
            .collect();
        Some(BodyEdit {
            decl,
            old_body,
            old_key: green_key(&old_set.syntax().green().to_owned()),
            new_body,
            new_green: new_set.syntax().green().to_owned(),
            facts,
            references,
        })
    }

    /// Applies the edit to the index it was made of, and to the cache built with it;
    /// returns what changed, for what was computed from the old index.
    pub(crate) fn apply(self, index: &mut Index, cache: &mut BodyCache) -> Reindexed {
        let delta =
            i64::from(u32::from(self.new_body.len())) - i64::from(u32::from(self.old_body.len()));
        let body = self.old_body;
        let inside =
            |r: &Reference| r.within == Some(self.decl) && body.contains_range(r.resource_range);
        // What the declaration depends on, as a set: another reference to a resource it
        // already names (`resources.x.` typed where `resources.x.path` is used) changes no
        // cycle, and a cycle through this declaration is found again anyway, since its
        // diagnostics are inside the edit.
        let targets =
            |references: &mut dyn Iterator<Item = &Reference>| -> BTreeSet<(ScopeId, Arc<str>)> {
                references.map(|r| (r.scope, r.resource.clone())).collect()
            };
        let old_targets = targets(&mut index.references.iter().filter(|r| inside(r)));
        let at = index.remove_references(inside, body.start());
        let shift = Shift { body, delta };
        shift.index(index);
        let targets_changed = old_targets != targets(&mut self.references.iter());
        index.references.splice(at..at, self.references);
        let decl = &mut index.resources[self.decl];
        let mut fresh = Said::default();
        add_body_facts(&mut fresh, self.facts.decl_at(self.new_body.start()));
        let type_changed =
            decl.type_name().map(|(t, _)| t) != fresh.type_name.as_ref().map(|(t, _)| t.as_str());
        decl.unseal();
        decl.type_name = fresh.type_name;
        decl.type_entry_end = fresh.type_entry_end;
        decl.inputs = fresh.inputs;
        decl.inputs_set = fresh.inputs_set;
        decl.inputs_open = fresh.inputs_open;
        decl.seal();
        cache.remove(&self.old_key);
        cache.insert(green_key(&self.new_green), (self.new_green, self.facts));
        Reindexed {
            shift,
            at: self.decl,
            removed: 1,
            added: 1,
            recheck: Vec::new(),
            recheck_outside: false,
            recheck_cycles: targets_changed,
            recheck_all: type_changed,
        }
    }
}

/// What an edit changed in the index, for what was computed from the old one: the
/// declarations `at..at + removed` (old numbering) became `added` new ones (an edited
/// declaration is one removed and one added), and every range outside the edited region
/// moved.
pub(crate) struct Reindexed {
    pub(super) shift: Shift,
    pub(crate) at: DeclId,
    pub(crate) removed: usize,
    pub(crate) added: usize,
    /// Other declarations (new numbering) whose references' meaning changed.
    pub(crate) recheck: Vec<DeclId>,
    /// Whether references outside every declaration changed meaning.
    pub(crate) recheck_outside: bool,
    /// Whether what references name changed, so that cycles may have.
    pub(crate) recheck_cycles: bool,
    /// Whether anything may have changed (a type another now, that references elsewhere
    /// depend on).
    pub(crate) recheck_all: bool,
}

impl Reindexed {
    /// Where a range outside the old region is now.
    pub(crate) fn moved(&self, range: TextRange) -> TextRange {
        let mut range = range;
        self.shift.range(&mut range);
        range
    }

    /// Whether a range of the old text meets the old region.
    pub(crate) fn inside(&self, range: TextRange) -> bool {
        self.shift.body.start() < range.end() && range.start() < self.shift.body.end()
    }
}

/// The sets whose inside (between their first and last token) holds `range`, innermost
/// first.
fn sets_around(root: &SyntaxNode, range: TextRange) -> impl Iterator<Item = ast::AttrSet> {
    let covering = match root.covering_element(range) {
        rowan::NodeOrToken::Node(node) => Some(node),
        rowan::NodeOrToken::Token(token) => token.parent(),
    };
    covering
        .into_iter()
        .flat_map(|node| node.ancestors())
        .filter(move |node| {
            let inside = node.text_range();
            inside.start() < range.start() && range.end() < inside.end()
        })
        .filter_map(ast::AttrSet::cast)
}

/// The named declaration one of whose bodies is `body`.
fn body_of(index: &Index, body: TextRange) -> Option<DeclId> {
    index
        .resources
        .iter()
        .position(|decl| decl.spans(body.start()) && decl.body_ranges().any(|r| r == body))
}

/// `decl`, when it is the one named declaration with a body at `body`, that its only
/// one, its name written outside it, and no nameless declaration is there too.
fn only_declaration_of(index: &Index, decl: DeclId, body: TextRange) -> Option<DeclId> {
    let others = index.resources[decl + 1..]
        .iter()
        .any(|other| other.spans(body.start()) && other.body_ranges().any(|r| r == body));
    let own = &index.resources[decl];
    let outside = |range: TextRange| range.end() <= body.start() || range.start() >= body.end();
    let alone = !others
        && own.body_ranges().count() == 1
        && own.nested.is_none()
        && outside(own.name_range())
        && own.name_ranges().chain(own.whole_ranges()).all(outside)
        && !index
            .typed
            .iter()
            .any(|t| t.body_ranges().any(|r| r.intersect(body).is_some()));
    alone.then_some(decl)
}

/// Whether a declaration says what its body alone says.
fn same_facts(decl: &ResourceDecl, said: &ResourceDecl) -> bool {
    decl.type_name() == said.type_name()
        && decl.type_entry_end() == said.type_entry_end()
        && decl.inputs().eq(said.inputs())
        && decl.inputs_set() == said.inputs_set()
        && decl.inputs_open == said.inputs_open
}

/// Whether two trees are the same but for `old` and `new`, which stand in the same place:
/// each of their ancestors has the same other children.
/// A child of a green node, as its children iterator gives it.
pub(super) type GreenRef<'a> =
    rowan::NodeOrToken<&'a rowan::GreenNodeData, &'a rowan::GreenTokenData>;

/// Whether two green children are the same one (not merely equal): what an edit did not
/// touch.
pub(super) fn same_green(a: GreenRef<'_>, b: GreenRef<'_>) -> bool {
    match (a, b) {
        (rowan::NodeOrToken::Node(a), rowan::NodeOrToken::Node(b)) => std::ptr::eq(a, b),
        (rowan::NodeOrToken::Token(a), rowan::NodeOrToken::Token(b)) => std::ptr::eq(a, b),
        _ => false,
    }
}

pub(super) fn same_outside(old: &SyntaxNode, new: &SyntaxNode) -> bool {
    let mut pair = (old.clone(), new.clone());
    loop {
        let (old, new) = pair;
        if old.index() != new.index() {
            return false;
        }
        match (old.parent(), new.parent()) {
            (None, None) => return true,
            (Some(old_parent), Some(new_parent)) => {
                let (a, b) = (old_parent.green(), new_parent.green());
                if a.kind() != b.kind() || a.children().len() != b.children().len() {
                    return false;
                }
                let same = a
                    .children()
                    .zip(b.children())
                    .enumerate()
                    .all(|(k, (x, y))| k == old.index() || same_green(x, y));
                if !same {
                    return false;
                }
                pair = (old_parent, new_parent);
            }
            _ => return false,
        }
    }
}

/// The functions that open scopes, by their range after the edit (every scope but the
/// file's).
pub(super) fn lambda_scopes(index: &Index, shift: &Shift) -> FxHashMap<TextRange, ScopeId> {
    index
        .scope_ids()
        .skip(1)
        .map(|(id, scope)| {
            let mut range = scope.range;
            shift.range(&mut range);
            (range, id)
        })
        .collect()
}

/// Moves ranges for an edit inside `body` that changed its length by `delta`: those after
/// it move, those around it grow. Nothing kept is inside it.
pub(super) struct Shift {
    pub(super) body: TextRange,
    pub(super) delta: i64,
}

impl Shift {
    pub(super) fn offset(&self, at: TextSize) -> TextSize {
        if at >= self.body.end() {
            TextSize::from((i64::from(u32::from(at)) + self.delta) as u32)
        } else {
            at
        }
    }

    pub(super) fn range(&self, range: &mut TextRange) {
        *range = TextRange::new(self.offset(range.start()), self.offset(range.end()));
    }

    pub(super) fn index(&self, index: &mut Index) {
        for scope in &mut index.scopes {
            self.range(&mut scope.range);
        }
        for decl in index.resources.iter_mut().chain(&mut index.typed) {
            self.decl(decl);
        }
        for reference in &mut index.references {
            self.range(&mut reference.resource_range);
            if let Some((_, range)) = &mut reference.output {
                self.range(range);
            }
        }
        for provider in &mut index.providers {
            self.range(&mut provider.name_range);
        }
    }

    fn decl(&self, decl: &mut ResourceDecl) {
        decl.shift(self.body.end(), |at| self.offset(at));
    }
}
