//! The index after an edit that adds, removes or replaces whole resources in a resources
//! set (`resources = { a = { ... }; b = { ... }; }`): a resource typed line by line, a
//! pasted block, a deleted one. Only the set's entries that changed are read; the
//! declarations they were take their place in the index, and every other range moves by
//! the edit's length.
//!
//! Only for entries that each declare one resource by its name with a `{ ... }` that
//! `cache` could keep, in a set whose other entries the index already knew as resources,
//! when no name the new entries declare is declared elsewhere in the scope. Anything else
//! is indexed again whole. `lsp/analysis/tests/edits.rs` holds the result equal to indexing
//! the new tree whole.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rnix::ast;
use rnix::{SyntaxKind, SyntaxNode, TextRange, TextSize};
use rowan::ast::AstNode;
use rustc_hash::FxHashSet;

use super::cache::{BodyCache, BodyFacts, add_body_facts, green_key};
use super::edit::{Reindexed, Shift, lambda_scopes, same_green, same_outside};
use super::lower::binding_scope;
use super::model::{DeclId, Index, Reference, ResourceDecl, Said, ScopeId};
use crate::syntax::{children_from, set_around, sibling_at, static_names};

/// One entry `name = { ... };` of a resources set, as read.
struct Entry {
    name: String,
    name_range: TextRange,
    body: ast::AttrSet,
    facts: Arc<BodyFacts>,
}

/// What an edit of a resources set's entries changes in the index.
pub(crate) struct EntriesEdit {
    scope: ScopeId,
    /// The declarations the old entries were, in order (consecutive).
    old: Vec<DeclId>,
    /// Where the changed entries were, in the old text.
    region: TextRange,
    delta: i64,
    new: Vec<(
        ResourceDecl,
        Vec<Reference>,
        rowan::GreenNode,
        Arc<BodyFacts>,
    )>,
    old_keys: Vec<usize>,
}

impl EntriesEdit {
    /// The edit of `index` (of `old_root`) that `edited` (a range of the old text, whose
    /// length changed by `delta`) made, when it changed only whole entries of a resources
    /// set and `new_root` is `old_root` outside that set.
    pub(crate) fn of(
        index: &Index,
        old_root: &SyntaxNode,
        new_root: &SyntaxNode,
        edited: TextRange,
        delta: i64,
    ) -> Option<EntriesEdit> {
        let old_set = set_around(old_root, edited)?;
        let range = old_set.text_range();
        let new_len = u32::try_from(i64::from(u32::from(range.len())) + delta).ok()?;
        let new_range = TextRange::at(range.start(), TextSize::from(new_len));
        let new_set = new_root
            .covering_element(new_range)
            .into_node()?
            .ancestors()
            .take_while(|n| n.text_range() == new_range)
            .find(|n| n.kind() == SyntaxKind::NODE_ATTR_SET)?;
        if !same_outside(&old_set, &new_set) {
            return None;
        }
        // The children both versions share, from the front and from the back, compared
        // by their green identity (without a cursor per child).
        let (old_green, new_green) = (old_set.green(), new_set.green());
        let (old_count, new_count) = (old_green.children().len(), new_green.children().len());
        let prefix = old_green
            .children()
            .zip(new_green.children())
            .take_while(|(a, b)| same_green(*a, *b))
            .count();
        let suffix = old_green
            .children()
            .rev()
            .zip(new_green.children().rev())
            .take(old_count.min(new_count) - prefix)
            .take_while(|(a, b)| same_green(*a, *b))
            .count();
        // The changed children, reached by rowan's search from the edit rather than by
        // walking the set's children to it (it may have ten thousand).
        let old_first = sibling_at(children_from(&old_set, edited.start()).next()?, prefix)?;
        let new_first = sibling_at(
            children_from(&new_set, old_first.text_range().start()).next()?,
            prefix,
        )?;
        let run = |first: &rnix::SyntaxElement, count: usize| {
            std::iter::successors(Some(first.clone()), |at| at.next_sibling_or_token())
                .take(count)
                .collect::<Vec<_>>()
        };
        let old_mid = run(&old_first, old_count - suffix - prefix);
        let new_mid = run(&new_first, new_count - suffix - prefix);
        if old_mid.is_empty() && new_mid.is_empty() {
            return None;
        }
        let region = match (old_mid.first(), old_mid.last()) {
            (Some(first), Some(last)) => {
                TextRange::new(first.text_range().start(), last.text_range().end())
            }
            _ => TextRange::empty(old_first.text_range().start()),
        };
        // The set's kept entries tell its scope: one of them is a resource the index
        // knows. The nearest before the change, else after it.
        let before = std::iter::successors(old_first.prev_sibling_or_token(), |at| {
            at.prev_sibling_or_token()
        });
        let after_first = match old_mid.last() {
            Some(last) => last.next_sibling_or_token(),
            None => Some(old_first.clone()),
        };
        let after = std::iter::successors(after_first, |at| at.next_sibling_or_token());
        let kept = before
            .chain(after)
            .filter(|at| at.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
            .take(1)
            .filter_map(|at| at.into_node())
            .filter_map(ast::AttrpathValue::cast);
        let scope = kept
            .filter_map(|entry| {
                let (name, name_range) = single_name(&entry)?;
                index.scope_ids().find_map(|(scope, _)| {
                    let id = index.find(scope, &name)?;
                    (index.resources[id].name_range() == name_range).then_some(scope)
                })
            })
            .next()?;
        let old_entries = entries(&old_mid)?;
        let new_entries = entries(&new_mid)?;
        // The old entries are consecutive declarations, each written once, here.
        let mut old = Vec::new();
        for entry in &old_entries {
            let id = index.find(scope, &entry.name)?;
            let decl = &index.resources[id];
            let body = entry.body.syntax().text_range();
            let written_once = decl.name_range() == entry.name_range
                && decl.name_ranges().eq([entry.name_range])
                && decl.whole_ranges().eq([entry.name_range])
                && decl.body_ranges().eq([body])
                && decl.nested.is_none()
                && !decl.named_by_string;
            if !written_once || old.last().is_some_and(|last| last + 1 != id) {
                return None;
            }
            old.push(id);
        }
        // New names are new to the scope (a duplicate is the whole parse's to tell).
        let removed: BTreeSet<&str> = old_entries.iter().map(|e| e.name.as_str()).collect();
        let mut added = BTreeSet::new();
        for entry in &new_entries {
            let taken =
                index.find(scope, &entry.name).is_some() && !removed.contains(entry.name.as_str());
            if taken || !added.insert(entry.name.as_str()) {
                return None;
            }
        }
        // Nothing else the index holds is in the region, nor around it but the scope.
        let meets = |r: &TextRange| r.start() < region.end() && region.start() < r.end();
        let within = |r: &TextRange| region.start() <= r.start() && r.end() <= region.end();
        if index
            .typed
            .iter()
            .any(|t| t.body_ranges().any(|r| meets(&r)))
            || index
                .scopes
                .iter()
                .skip(1)
                .any(|s| within(&s.range) && !region.is_empty())
            || index.providers.iter().any(|p| meets(&p.name_range))
        {
            return None;
        }
        let shift = Shift {
            body: region,
            delta,
        };
        let lambda_scopes = lambda_scopes(index, &shift);
        let new = new_entries
            .into_iter()
            .map(|entry| {
                let body = entry.body.syntax().text_range();
                let mut decl: ResourceDecl = Said {
                    name: entry.name.clone(),
                    scope,
                    name_range: entry.name_range,
                    name_ranges: vec![entry.name_range],
                    whole_ranges: vec![entry.name_range],
                    body_ranges: vec![body],
                    ..Said::default()
                }
                .into();
                add_body_facts(&mut decl, entry.facts.decl_at(body.start()));
                decl.seal();
                let references = entry
                    .facts
                    .references_at(body.start())
                    .filter_map(|parts| {
                        let scope =
                            binding_scope(&lambda_scopes, &parts.base, entry.body.syntax())?;
                        Some(Reference {
                            scope,
                            within: None,
                            resource: parts.resource,
                            resource_range: parts.resource_range,
                            output: parts.output,
                        })
                    })
                    .collect();
                let green = entry.body.syntax().green().to_owned();
                (decl, references, green, entry.facts)
            })
            .collect();
        let old_keys = old_entries
            .iter()
            .map(|e| green_key(&e.body.syntax().green().to_owned()))
            .collect();
        Some(EntriesEdit {
            scope,
            old,
            region,
            delta,
            new,
            old_keys,
        })
    }

    /// Applies the edit to the index it was made of, and to the cache built with it.
    pub(crate) fn apply(self, index: &mut Index, cache: &mut BodyCache) -> Reindexed {
        let region = self.region;
        let at = match self.old.first() {
            Some(first) => *first,
            None => index
                .resources
                .iter()
                .position(|d| d.name_range().start() >= region.start())
                .unwrap_or(index.resources.len()),
        };
        let (removed, added) = (self.old.len(), self.new.len());
        let renumber = |id: DeclId| {
            if id >= at + removed {
                id + added - removed
            } else {
                id
            }
        };
        let changed_names: BTreeSet<String> = self
            .old
            .iter()
            .map(|id| index.resources[*id].name.clone())
            .chain(self.new.iter().map(|(decl, ..)| decl.name.clone()))
            .collect();
        // Dependencies by name, before and after, of the entries replaced: the edges of the
        // graph cycles are found in that the edit may change.
        type Edges<'a> = BTreeMap<&'a str, BTreeSet<(ScopeId, &'a str)>>;
        let mut old_edges = Edges::new();
        for id in &self.old {
            old_edges
                .entry(index.resources[*id].name.as_str())
                .or_default();
        }
        for reference in &index.references {
            if let Some(within) = reference.within.filter(|w| *w >= at && *w < at + removed) {
                old_edges
                    .entry(index.resources[within].name.as_str())
                    .or_default()
                    .insert((reference.scope, &*reference.resource));
            }
        }
        let mut new_edges = Edges::new();
        for (decl, references, ..) in &self.new {
            let targets = new_edges.entry(decl.name.as_str()).or_default();
            for reference in references {
                targets.insert((reference.scope, &*reference.resource));
            }
        }
        // Names that came or went: what references to them name changes. A name replaced by
        // one with the same dependencies (an entry read again, unchanged) changes no cycle.
        let came_or_went: BTreeSet<String> = old_edges
            .keys()
            .filter(|name| !new_edges.contains_key(*name))
            .chain(
                new_edges
                    .keys()
                    .filter(|name| !old_edges.contains_key(*name)),
            )
            .map(|name| (*name).to_owned())
            .collect();
        let dependencies_changed = old_edges
            .iter()
            .any(|(name, targets)| new_edges.get(name).is_some_and(|new| new != targets));
        // References: those of the old entries go, the others are renumbered.
        let was_old = |r: &Reference| r.within.is_some_and(|w| w >= at && w < at + removed);
        let references_at = index.remove_references(was_old, region.start());
        for reference in &mut index.references {
            reference.within = reference.within.map(renumber);
        }
        for scope in &mut index.scopes {
            scope.owner = scope.owner.map(renumber);
        }
        let shift = Shift {
            body: region,
            delta: self.delta,
        };
        shift.index(index);
        index.rename_declarations(self.scope, &changed_names, renumber);
        let mut new_references = Vec::new();
        let mut new_decls = Vec::new();
        for (k, (decl, references, green, facts)) in self.new.into_iter().enumerate() {
            new_references.extend(references.into_iter().map(|r| Reference {
                within: Some(at + k),
                ..r
            }));
            cache.insert(green_key(&green), (green, facts));
            new_decls.push(decl);
        }
        for key in &self.old_keys {
            cache.remove(key);
        }
        index.resources.splice(at..at + removed, new_decls);
        for k in at..at + added {
            let name = index.resources[k].name.clone();
            index.name(self.scope, name, k);
        }
        index
            .references
            .splice(references_at..references_at, new_references);
        // What now means another resource, or none: references naming a changed name.
        let changed: FxHashSet<&str> = changed_names.iter().map(String::as_str).collect();
        let mut recheck = BTreeSet::new();
        let mut recheck_outside = false;
        let mut recheck_cycles = dependencies_changed;
        for reference in &index.references {
            if reference.scope != self.scope || !changed.contains(&*reference.resource) {
                continue;
            }
            recheck_cycles |= came_or_went.contains(&*reference.resource);
            match reference.within {
                // A new declaration is checked anyway.
                Some(within) if within >= at && within < at + added => {}
                Some(within) => {
                    recheck.insert(within);
                }
                None => recheck_outside = true,
            }
        }
        Reindexed {
            shift,
            at,
            removed,
            added,
            recheck: recheck.into_iter().collect(),
            recheck_outside,
            recheck_cycles,
            recheck_all: false,
        }
    }
}

/// The name of an entry `name = ...;` whose path is that one name.
fn single_name(entry: &ast::AttrpathValue) -> Option<(String, TextRange)> {
    match static_names(&entry.attrpath()?).as_slice() {
        [(Some(name), range)] => Some((name.clone(), *range)),
        _ => None,
    }
}

/// The entries among `children`, when each declares a resource by name with a `{ ... }`
/// the cache can keep (and the rest is trivia).
fn entries(children: &[rnix::SyntaxElement]) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    for child in children {
        let node = match child {
            rowan::NodeOrToken::Token(token) if token.kind().is_trivia() => continue,
            rowan::NodeOrToken::Token(_) => return None,
            rowan::NodeOrToken::Node(node) => node,
        };
        let entry = ast::AttrpathValue::cast(node.clone())?;
        let (name, name_range) = single_name(&entry)?;
        let ast::Expr::AttrSet(body) = entry.value()? else {
            return None;
        };
        let facts = Arc::new(BodyFacts::read(&body)?);
        entries.push(Entry {
            name,
            name_range,
            body,
            facts,
        });
    }
    Some(entries)
}
