//! What crosses files: a deployment written as modules declares resources in one file and
//! references them in another, all in their top-level scopes. Definition, references and
//! rename look at every file of the deployment; nested scopes never leave their file.
//!
//! A top-level resource `a` named in one file is the same resource in the files that
//! declare `a` at top level and in those whose top-level references to `a` are not
//! declared locally.

use std::collections::BTreeSet;

use crate::navigation::Target;
use crate::{Analysis, TextRange, TextSize};

/// One file of the deployment, by the server's identifier for it.
#[derive(Clone, Copy)]
pub struct File<'a> {
    pub id: &'a str,
    pub analysis: &'a Analysis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub range: TextRange,
}

impl Ord for Location {
    fn cmp(&self, other: &Location) -> std::cmp::Ordering {
        let key = |l: &Location| (l.file.clone(), l.range.start(), l.range.end());
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Location {
    fn partial_cmp(&self, other: &Location) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A rename's edits, and the resource paths before and after (for moving its state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    pub old_path: Vec<String>,
    pub new_path: Vec<String>,
    pub edits: Vec<(Location, String)>,
}

/// The resources the other files declare at top level.
pub fn neighbours(files: &[File], current: &str) -> BTreeSet<String> {
    files
        .iter()
        .filter(|f| f.id != current)
        .flat_map(|f| {
            let index = &f.analysis.index;
            index
                .resources
                .iter()
                .filter(|r| index.is_top_level(r.scope))
                .map(|r| r.name.clone())
        })
        .collect()
}

fn current<'a>(files: &[File<'a>], id: &str) -> Option<File<'a>> {
    files.iter().find(|f| f.id == id).copied()
}

/// Every place that names the target: `(file, scope)` pairs it lives in, then the ranges.
fn occurrences(files: &[File], current_id: &str, target: &Target) -> Vec<Location> {
    let Some(here) = current(files, current_id) else {
        return Vec::new();
    };
    let index = &here.analysis.index;
    let mut places = vec![(here, target.scope)];
    if index.is_top_level(target.scope) {
        let declared_here = index.find(target.scope, &target.resource).is_some();
        for other in files.iter().filter(|f| f.id != current_id) {
            let other_index = &other.analysis.index;
            for (scope, _) in other_index
                .scope_ids()
                .filter(|(s, _)| other_index.is_top_level(*s))
            {
                let declared_there = other_index.find(scope, &target.resource).is_some();
                // Declared in both: two different deployments that share a name.
                if declared_here && declared_there {
                    continue;
                }
                places.push((*other, scope));
            }
        }
    }
    let mut found: Vec<Location> = places
        .into_iter()
        .flat_map(|(file, scope)| {
            file.analysis
                .occurrences(scope, &target.resource, target.output.as_deref())
                .into_iter()
                .map(|range| Location {
                    file: file.id.to_owned(),
                    range,
                })
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Where the resource named at `offset` is declared (for an output: its resource).
pub fn definition(files: &[File], current_id: &str, offset: TextSize) -> Vec<Location> {
    let Some(here) = current(files, current_id) else {
        return Vec::new();
    };
    let Some(target) = here.analysis.target(offset) else {
        return Vec::new();
    };
    let local = here
        .analysis
        .declaration(target.scope, &target.resource)
        .map(|decl| Location {
            file: current_id.to_owned(),
            range: decl.name_range(),
        });
    if let Some(local) = local {
        return vec![local];
    }
    if !here.analysis.index.is_top_level(target.scope) {
        return Vec::new();
    }
    files
        .iter()
        .filter(|f| f.id != current_id)
        .flat_map(|f| {
            let index = &f.analysis.index;
            index
                .resources
                .iter()
                .filter(|r| index.is_top_level(r.scope) && r.name == target.resource)
                .map(|r| Location {
                    file: f.id.to_owned(),
                    range: r.name_range(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every place naming what is at `offset`, declarations included when asked.
pub fn references(
    files: &[File],
    current_id: &str,
    offset: TextSize,
    include_declaration: bool,
) -> Vec<Location> {
    let Some(here) = current(files, current_id) else {
        return Vec::new();
    };
    let Some(target) = here.analysis.target(offset) else {
        return Vec::new();
    };
    let declarations: BTreeSet<Location> = if include_declaration {
        BTreeSet::new()
    } else {
        definition(files, current_id, offset)
            .into_iter()
            .filter(|_| target.output.is_none())
            .flat_map(|location| {
                let file = current(files, &location.file);
                file.into_iter().flat_map(move |f| {
                    let decl = f
                        .analysis
                        .index
                        .resources
                        .iter()
                        .find(|r| r.name_range() == location.range);
                    decl.into_iter()
                        .flat_map(|d| d.name_ranges())
                        .map(|range| Location {
                            file: location.file.clone(),
                            range,
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect()
    };
    occurrences(files, current_id, &target)
        .into_iter()
        .filter(|l| !declarations.contains(l))
        .collect()
}

/// The name a rename at `offset` would change, and its range.
pub fn prepare_rename(
    analysis: &Analysis,
    offset: TextSize,
) -> Result<(TextRange, String), String> {
    match analysis.target(offset) {
        Some(target) if target.output.is_none() => Ok((target.range, target.resource)),
        Some(_) => Err("outputs are named by the resource's provider and cannot be renamed".into()),
        None => Err("rename works on a resource's name".into()),
    }
}

pub fn rename(
    files: &[File],
    current_id: &str,
    offset: TextSize,
    new_name: &str,
) -> Result<Rename, String> {
    let here = current(files, current_id).ok_or("the document is not open")?;
    prepare_rename(here.analysis, offset)?;
    let target = here
        .analysis
        .target(offset)
        .ok_or("rename works on a resource's name")?;
    if new_name.is_empty() {
        return Err("a resource needs a name".into());
    }
    if here.analysis.declaration(target.scope, new_name).is_some() {
        return Err(format!("there is already a resource `{new_name}` here"));
    }
    let index = &here.analysis.index;
    let old_path = match index.find(target.scope, &target.resource) {
        Some(id) => index.path(id),
        None => vec![target.resource.clone()],
    };
    let mut new_path = old_path.clone();
    if let Some(last) = new_path.last_mut() {
        *last = new_name.to_owned();
    }
    let edits = occurrences(files, current_id, &target)
        .into_iter()
        .map(|location| {
            let string_value = current(files, &location.file).is_some_and(|f| {
                f.analysis
                    .index
                    .resources
                    .iter()
                    .any(|r| r.named_by_string && r.name_ranges().any(|n| n == location.range))
            });
            let replacement = if string_value {
                quoted(new_name)
            } else {
                crate::attribute_name(new_name)
            };
            (location, replacement)
        })
        .collect();
    Ok(Rename {
        old_path,
        new_path,
        edits,
    })
}

/// A name as a Nix string, always quoted.
fn quoted(name: &str) -> String {
    let written = crate::attribute_name(name);
    if written.starts_with('"') {
        written
    } else {
        format!("\"{written}\"")
    }
}

#[cfg(test)]
mod tests;
