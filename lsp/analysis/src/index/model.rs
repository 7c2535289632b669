//! The index as plain data: scopes, the resources each declares, the providers, and
//! every reference, with the ranges where they are written; and the questions asked of
//! it (which resource a name or a reference means, a resource's full path).
//!
//! Filled by `lower`; features read it. Nothing here looks at syntax.

use std::collections::BTreeSet;
use std::sync::Arc;

use rnix::{TextRange, TextSize};
use rustc_hash::FxHashMap;

/// One deployment's namespace of resources in a file. Opaque outside the crate: it only
/// names a scope of the analysis it came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(u32);

impl ScopeId {
    /// The file itself.
    pub(crate) const FILE: ScopeId = ScopeId(0);

    fn index(self) -> usize {
        self.0 as usize
    }
}

pub(crate) type DeclId = usize;

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Index {
    /// The first `nixops4Deployments.<name>` the file defines.
    pub(crate) deployment: Option<String>,
    /// Scope 0 is the file itself.
    pub(crate) scopes: Vec<Scope>,
    pub(crate) resources: Vec<ResourceDecl>,
    /// Sets that declare a resource by a literal `type = "<provider>.<type>"` alone,
    /// wherever they stand (a function's body, `mapAttrs`, a `let`, a list), outside the
    /// named declarations: nameless, for the completion, hover and diagnostics of their
    /// inputs.
    pub(crate) typed: Vec<ResourceDecl>,
    pub(crate) references: Vec<Reference>,
    pub(crate) providers: Vec<ProviderDecl>,
    /// Resources by scope and name.
    by_name: FxHashMap<ScopeId, FxHashMap<String, DeclId>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scope {
    /// The resource of the enclosing scope that this nested deployment is.
    pub(crate) owner: Option<DeclId>,
    pub(crate) range: TextRange,
}

/// A resource as its declarations say it. Where things are written is kept from the
/// declaration's `origin`, the start of the first of its ranges, so that an edit elsewhere
/// in the file moves one offset per declaration (`edit::Shift`) rather than each range:
/// files of 10,000 resources are edited at every keystroke. Read them with the methods;
/// the fields are for the index's own modules, which build a declaration at origin 0
/// (ranges as written) and then `seal` it.
///
/// What the declaration says is shared between copies until one is changed (`DerefMut`
/// copies it then), so that an analysis of 10,000 resources is cheap to copy: a request
/// that reads a whole document off the main loop holds one while edits go on.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ResourceDecl {
    /// Where every range of `said` is counted from, and where the last of them ends.
    pub(super) origin: TextSize,
    pub(super) end: TextSize,
    said: Arc<Said>,
}

/// What a declaration says, its ranges from its origin.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Said {
    pub(crate) name: String,
    pub(crate) scope: ScopeId,
    /// Where the name is first written.
    pub(super) name_range: TextRange,
    /// Every place the name is written in a declaration (dotted forms write it several
    /// times); quotes included for a quoted name.
    pub(super) name_ranges: Vec<TextRange>,
    /// The names of the entries that each declare the whole resource (`a = { ... }`):
    /// more than one is a duplicate.
    pub(super) whole_ranges: Vec<TextRange>,
    /// The expressions that make up the declaration.
    pub(super) body_ranges: Vec<TextRange>,
    /// The `type` string literal and the range of the string, quotes included.
    pub(super) type_name: Option<(String, TextRange)>,
    /// Where the `type = ...;` entry ends, to insert after it.
    pub(super) type_entry_end: Option<TextSize>,
    /// Inputs written literally, in order.
    pub(super) inputs: Vec<InputEntry>,
    /// The `inputs = { ... }` set, when written as one, with the ranges of its entries'
    /// values (completion offers input names elsewhere in it).
    pub(super) inputs_set: Option<InputsSet>,
    /// Whether inputs come from somewhere this index cannot see (`inputs = f x;`,
    /// `inherit`), so that missing ones cannot be told.
    pub(crate) inputs_open: bool,
    /// For a nested deployment (`lib.nested ...`), the scope of its resources.
    pub(crate) nested: Option<ScopeId>,
    /// Whether the name is a string value (`{ name = "build"; ... }` in `mkSequence`)
    /// rather than an attribute name, so that it stays quoted when renamed.
    pub(crate) named_by_string: bool,
}

impl std::ops::Deref for ResourceDecl {
    type Target = Said;

    fn deref(&self) -> &Said {
        &self.said
    }
}

impl std::ops::DerefMut for ResourceDecl {
    /// What the declaration says, to change: copied first when a copy of it shares it.
    fn deref_mut(&mut self) -> &mut Said {
        Arc::make_mut(&mut self.said)
    }
}

impl From<Said> for ResourceDecl {
    /// A declaration at origin 0, its ranges as written (not sealed).
    fn from(said: Said) -> ResourceDecl {
        ResourceDecl {
            origin: TextSize::default(),
            end: TextSize::default(),
            said: Arc::new(said),
        }
    }
}

/// One input of a declaration, where it is written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Input<'a> {
    pub(crate) name: &'a str,
    pub(crate) range: TextRange,
    /// The JSON type of a literal value (`string`, `integer`, `boolean`, `array`,
    /// `object`, `null`), when the value is a literal.
    pub(crate) literal: Option<&'static str>,
    /// The value, when it is a string without interpolation.
    pub(crate) string_value: Option<&'a str>,
    pub(crate) value_range: TextRange,
}

impl ResourceDecl {
    /// What a declaration not yet sealed says, its ranges as written.
    pub(super) fn into_said(self) -> Said {
        debug_assert_eq!(self.origin, TextSize::default(), "sealed");
        Arc::unwrap_or_clone(self.said)
    }

    fn at(&self, range: TextRange) -> TextRange {
        range + self.origin
    }

    /// Whether `offset` lies between the first and the last place the declaration
    /// writes something (inclusive): a cheap test before the others.
    pub(crate) fn spans(&self, offset: TextSize) -> bool {
        self.origin <= offset && offset <= self.end
    }

    /// Where the name is first written.
    pub(crate) fn name_range(&self) -> TextRange {
        self.at(self.name_range)
    }

    /// Every place the name is written.
    pub(crate) fn name_ranges(&self) -> impl Iterator<Item = TextRange> + '_ {
        self.name_ranges.iter().map(|r| self.at(*r))
    }

    /// The names of the entries that declare the whole resource, the first first.
    pub(crate) fn whole_ranges(&self) -> impl Iterator<Item = TextRange> + '_ {
        self.whole_ranges.iter().map(|r| self.at(*r))
    }

    /// The expressions that make up the declaration.
    pub(crate) fn body_ranges(&self) -> impl Iterator<Item = TextRange> + '_ {
        self.body_ranges.iter().map(|r| self.at(*r))
    }

    /// The `type` string literal and where the string is, quotes included.
    pub(crate) fn type_name(&self) -> Option<(&str, TextRange)> {
        let (name, range) = self.type_name.as_ref()?;
        Some((name.as_str(), self.at(*range)))
    }

    /// Where the `type = ...;` entry ends.
    pub(crate) fn type_entry_end(&self) -> Option<TextSize> {
        self.type_entry_end.map(|end| end + self.origin)
    }

    /// The inputs written literally, in order.
    pub(crate) fn inputs(&self) -> impl Iterator<Item = Input<'_>> {
        self.inputs.iter().map(|input| Input {
            name: &input.name,
            range: self.at(input.range),
            literal: input.literal,
            string_value: input.string_value.as_deref(),
            value_range: self.at(input.value_range),
        })
    }

    /// Whether an input of that name is written.
    pub(crate) fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|input| input.name == name)
    }

    /// The `inputs = { ... }` set, when written as one.
    pub(crate) fn inputs_set(&self) -> Option<InputsSet> {
        self.inputs_set.as_ref().map(|set| InputsSet {
            range: self.at(set.range),
            value_ranges: set.value_ranges.iter().map(|r| self.at(*r)).collect(),
            closed: set.closed,
        })
    }

    /// Every range the fields hold, as stored.
    fn ranges_mut(&mut self) -> impl Iterator<Item = &mut TextRange> {
        let Said {
            name_range,
            name_ranges,
            whole_ranges,
            body_ranges,
            type_name,
            inputs,
            inputs_set,
            ..
        } = &mut **self;
        std::iter::once(name_range)
            .chain(name_ranges.iter_mut())
            .chain(whole_ranges.iter_mut())
            .chain(body_ranges.iter_mut())
            .chain(type_name.iter_mut().map(|(_, range)| range))
            .chain(
                inputs
                    .iter_mut()
                    .flat_map(|input| [&mut input.range, &mut input.value_range]),
            )
            .chain(
                inputs_set.iter_mut().flat_map(|set| {
                    std::iter::once(&mut set.range).chain(set.value_ranges.iter_mut())
                }),
            )
    }

    /// Keeps the ranges (as written, the declaration at origin 0) from the start of the
    /// first of them.
    pub(super) fn seal(&mut self) {
        debug_assert_eq!(self.origin, TextSize::default(), "sealed twice");
        let mut origin = self.type_entry_end.unwrap_or(TextSize::from(u32::MAX));
        let mut end = self.type_entry_end.unwrap_or_default();
        for range in self.ranges_mut() {
            origin = origin.min(range.start());
            end = end.max(range.end());
        }
        let origin = origin.min(end);
        for range in self.ranges_mut() {
            *range -= origin;
        }
        if let Some(type_end) = &mut self.type_entry_end {
            *type_end -= origin;
        }
        self.origin = origin;
        self.end = end;
    }

    /// Undoes `seal`: the ranges as written, at origin 0, to change them.
    pub(super) fn unseal(&mut self) {
        let origin = std::mem::take(&mut self.origin);
        for range in self.ranges_mut() {
            *range += origin;
        }
        if let Some(type_end) = &mut self.type_entry_end {
            *type_end += origin;
        }
    }

    /// Moves the declaration for an edit that moved each offset at or after `from` to
    /// `moved(offset)` (`edit::Shift`): nothing when it lies before, its origin when it
    /// lies after, each range when it has ranges on both sides.
    pub(super) fn shift(&mut self, from: TextSize, moved: impl Fn(TextSize) -> TextSize) {
        if self.end < from {
            return;
        }
        if self.origin >= from {
            self.origin = moved(self.origin);
            self.end = moved(self.end);
            return;
        }
        self.unseal();
        for range in self.ranges_mut() {
            *range = TextRange::new(moved(range.start()), moved(range.end()));
        }
        if let Some(type_end) = &mut self.type_entry_end {
            *type_end = moved(*type_end);
        }
        self.seal();
    }
}

/// An input as a declaration keeps it (`Input` is how it is read).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct InputEntry {
    pub(crate) name: String,
    pub(crate) range: TextRange,
    pub(crate) literal: Option<&'static str>,
    pub(crate) string_value: Option<String>,
    pub(crate) value_range: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct InputsSet {
    pub(crate) range: TextRange,
    pub(crate) value_ranges: Vec<TextRange>,
    /// Whether it is a complete `{ ... }` set, its `}` written (not a half-typed one read as
    /// a pattern, nor one rnix ends where its `}` is missing).
    pub(crate) closed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reference {
    pub(crate) scope: ScopeId,
    /// The innermost resource whose declaration contains the reference.
    pub(crate) within: Option<DeclId>,
    /// Names shared with the cached reading of the declaration they are in, so that
    /// copying an analysis copies no string.
    pub(crate) resource: Arc<str>,
    pub(crate) resource_range: TextRange,
    pub(crate) output: Option<(Arc<str>, TextRange)>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProviderDecl {
    pub(crate) name: String,
    pub(crate) scope: ScopeId,
    pub(crate) name_range: TextRange,
    /// The `executable` when written as a plain string.
    pub(crate) executable: Option<String>,
    /// The `args` when written as a list of plain strings.
    pub(crate) args: Vec<String>,
}

impl Index {
    /// An index of a file whose root spans `range`: one scope, the file's.
    pub(crate) fn of_file(range: TextRange) -> Index {
        Index {
            scopes: vec![Scope { owner: None, range }],
            ..Index::default()
        }
    }

    /// The resource a reference names, in this file.
    pub(crate) fn resolve(&self, reference: &Reference) -> Option<DeclId> {
        self.find(reference.scope, &reference.resource)
    }

    pub(crate) fn find(&self, scope: ScopeId, name: &str) -> Option<DeclId> {
        self.by_name.get(&scope)?.get(name).copied()
    }

    /// A resource's full path: `host.key` for `key` nested in `host`.
    pub(crate) fn path(&self, decl: DeclId) -> Vec<String> {
        let mut path = vec![self.resources[decl].name.clone()];
        let mut scope = self.resources[decl].scope;
        while let Some(owner) = self.scope(scope).owner {
            path.insert(0, self.resources[owner].name.clone());
            scope = self.resources[owner].scope;
        }
        path
    }

    /// Whether a scope is a deployment's top level (not nested), whose resources other
    /// files (modules) may declare or reference.
    pub(crate) fn is_top_level(&self, scope: ScopeId) -> bool {
        self.scope(scope).owner.is_none()
    }

    pub(crate) fn scope(&self, scope: ScopeId) -> &Scope {
        &self.scopes[scope.index()]
    }

    /// Every declaration whose inputs can be checked: the named ones, then the typed ones.
    pub(crate) fn declarations(&self) -> impl Iterator<Item = &ResourceDecl> {
        self.resources.iter().chain(&self.typed)
    }

    /// Every scope, the file's first.
    pub(crate) fn scope_ids(&self) -> impl Iterator<Item = (ScopeId, &Scope)> {
        self.scopes
            .iter()
            .enumerate()
            .map(|(id, scope)| (ScopeId(id as u32), scope))
    }

    /// Opens a scope; `owner` is the resource it is the nested deployment of.
    pub(crate) fn add_scope(&mut self, owner: Option<DeclId>, range: TextRange) -> ScopeId {
        self.scopes.push(Scope { owner, range });
        ScopeId((self.scopes.len() - 1) as u32)
    }

    /// Removes the references `matching` says (those of the declarations an edit read again)
    /// and returns where the ones read in their place go, so that references stay in the
    /// order of the text: where the first removed one was, else before the first reference
    /// at or after `start`.
    pub(crate) fn remove_references(
        &mut self,
        matching: impl Fn(&Reference) -> bool,
        start: TextSize,
    ) -> usize {
        let first = self.references.iter().position(&matching);
        self.references.retain(|r| !matching(r));
        first.unwrap_or_else(|| {
            self.references
                .iter()
                .position(|r| r.resource_range.start() >= start)
                .unwrap_or(self.references.len())
        })
    }

    /// Renumbers every declaration the names know by `renumber`, after forgetting the
    /// names `forgotten` of `scope`.
    pub(crate) fn rename_declarations(
        &mut self,
        scope: ScopeId,
        forgotten: &BTreeSet<String>,
        renumber: impl Fn(DeclId) -> DeclId,
    ) {
        if let Some(names) = self.by_name.get_mut(&scope) {
            for name in forgotten {
                names.remove(name);
            }
        }
        for names in self.by_name.values_mut() {
            for id in names.values_mut() {
                *id = renumber(*id);
            }
        }
    }

    /// Makes `name` of `scope` mean declaration `id`.
    pub(crate) fn name(&mut self, scope: ScopeId, name: String, id: DeclId) {
        self.by_name.entry(scope).or_default().insert(name, id);
    }

    /// The resource `name` of `scope`, declared here if it is not yet; `range` is one more
    /// place its name is written.
    pub(crate) fn declare(&mut self, scope: ScopeId, name: &str, range: TextRange) -> DeclId {
        let resources = &mut self.resources;
        let names = self.by_name.entry(scope).or_default();
        let id = match names.get(name) {
            Some(id) => *id,
            None => {
                resources.push(
                    Said {
                        name: name.to_owned(),
                        scope,
                        name_range: range,
                        ..Said::default()
                    }
                    .into(),
                );
                names.insert(name.to_owned(), resources.len() - 1);
                resources.len() - 1
            }
        };
        if !resources[id].name_ranges.contains(&range) {
            resources[id].name_ranges.push(range);
        }
        id
    }
}
