//! Lowering on fixtures: what the index reads from each way of writing a deployment, shown
//! as one line per resource, provider and reference; and the cache's reuse after an edit.

use std::sync::Arc;

use crate::fixture::{Fixture, nested_deployment};
use crate::{Analysis, TextRange};

/// The index of a fixture's file, one line per thing it holds.
fn index(fixture: &str) -> String {
    let fixture = Fixture::parse(fixture);
    show(fixture.analysis())
}

fn show(analysis: &Analysis) -> String {
    let index = &analysis.index;
    let text = analysis.text();
    let mut lines = Vec::new();
    if let Some(name) = &index.deployment {
        lines.push(format!("deployment {name}"));
    }
    for (id, decl) in index.resources.iter().enumerate() {
        let mut line = format!("resource {}", index.path(id).join("."));
        if let Some((type_name, _)) = &decl.type_name {
            line.push_str(&format!(" `{type_name}`"));
        }
        if decl.nested.is_some() {
            line.push_str(" nested");
        }
        let inputs: Vec<String> = decl
            .inputs
            .iter()
            .map(|input| match (&input.string_value, input.literal) {
                (Some(value), _) => format!("{}={value:?}", input.name),
                (None, Some(literal)) => format!("{}:{literal}", input.name),
                (None, None) => input.name.clone(),
            })
            .collect();
        if !inputs.is_empty() {
            line.push_str(&format!(" inputs {}", inputs.join(" ")));
        }
        if decl.inputs_open {
            line.push_str(" (inputs open)");
        }
        if decl.whole_ranges.len() > 1 {
            line.push_str(&format!(
                " (declared whole {} times)",
                decl.whole_ranges.len()
            ));
        }
        lines.push(line);
    }
    for provider in &index.providers {
        lines.push(format!(
            "provider {} {:?} {:?}",
            provider.name, provider.executable, provider.args
        ));
    }
    for reference in &index.references {
        let named = match &reference.output {
            Some((output, _)) => format!("{}.{output}", reference.resource),
            None => reference.resource.to_string(),
        };
        let resolved = index
            .resolve(reference)
            .map_or("?".to_owned(), |id| index.path(id).join("."));
        let mut line = format!(
            "reference {named} at {} -> {resolved}",
            line_of(text, reference.resource_range)
        );
        if let Some(within) = reference.within {
            line.push_str(&format!(" (in {})", index.path(within).join(".")));
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn line_of(text: &str, range: TextRange) -> usize {
    text[..usize::from(range.start())].matches('\n').count() + 1
}

#[test]
fn nested_deployments_have_their_own_scope_and_reach_the_outer_one() {
    let text = nested_deployment();
    // Declarations read whole give their references first; the walk finds the rest.
    // `outer.resources.ca` in `host` is the outer `ca`; `resources.key` the inner `key`.
    insta::assert_snapshot!(show(&Analysis::new(&text)), @r#"
    deployment default
    resource state `local.state_file` inputs name="deployment.state.jsonl"
    resource ca `vault.ca` inputs commonName="example"
    resource host nested
    resource release nested
    resource odd.name `local.memo` inputs initialize_with:integer
    resource host.key `vault.key` inputs ca
    resource host.cert `local.file` inputs name="cert" contents
    resource release.build `local.exec` inputs executable="true"
    resource release.publish `local.exec` inputs executable="echo" args:array
    provider vault Some("/opt/vault-provider") ["--quiet"]
    provider vault Some("/opt/other-vault") []
    reference state at 9 -> state (in ca)
    reference ca.id at 13 -> ca (in host.key)
    reference key.public at 14 -> host.key (in host.cert)
    reference ca at 14 -> ca (in host.cert)
    reference build.stdout at 19 -> release.build (in release.publish)
    reference state at 21 -> state (in odd.name)
    "#);
}

#[test]
fn set_and_dotted_forms_mix() {
    insta::assert_snapshot!(index(r#"
        { resources, ... }: {
          resources = {
            a = { type = "local.file"; inputs = { name = "a"; mode = null; }; };
          };
          resources.a.inputs.contents = "x";
          resources.b.type = "local.exec";
          resources.b.inputs.executable = resources.a.path;
          resources."c d" = { type = "local.memo"; inputs.initialize_with = [ 1 ]; };
          resources.e.inputs.env.HOME = "/";
        }
    "#), @r#"
    resource a `local.file` inputs name="a" mode:null contents="x"
    resource b `local.exec` inputs executable
    resource c d `local.memo` inputs initialize_with:array
    resource e inputs env:object
    reference a.path at 7 -> a (in b)
    "#);
}

#[test]
fn inputs_it_cannot_see_leave_them_open() {
    insta::assert_snapshot!(index(r#"
        { resources, ... }: {
          resources.a = { type = "local.file"; inputs = f 1; };
          resources.b = { type = "local.file"; inputs = { inherit name; contents = "x"; }; };
          resources.c = { type = "local.file"; inherit inputs; };
        }
    "#), @r#"
    resource a `local.file` (inputs open)
    resource b `local.file` inputs contents="x" (inputs open)
    resource c `local.file` (inputs open)
    "#);
}

#[test]
fn data_inside_a_declaration_declares_nothing() {
    insta::assert_snapshot!(index(r#"
        { resources, ... }: {
          resources.a = { type = "local.memo"; inputs.initialize_with = { resources.x = 1; providers.y = 2; }; };
          other.inputs.resources.z = 3;
        }
    "#), @"resource a `local.memo` inputs initialize_with:object");
}

#[test]
fn a_reference_belongs_to_the_function_binding_its_base() {
    insta::assert_snapshot!(index(r#"
        {
          nixops4Deployments.first = outer@{ resources, ... }: {
            resources.a.type = "local.memo";
            resources.b = lib.nested ({ resources, ... }: {
              resources.a.inputs.initialize_with = outer.resources.a.value;
              resources.c.inputs.initialize_with = resources.a.value;
            });
            resources.d.inputs.initialize_with = args.resources.a.value;
          };
          nixops4Deployments.second = { resources, ... }: { resources.z.type = "local.memo"; };
        }
    "#), @"
    deployment first
    resource a `local.memo`
    resource b nested
    resource b.a inputs initialize_with
    resource b.c inputs initialize_with
    resource d inputs initialize_with
    resource z `local.memo`
    reference a.value at 5 -> a (in b.a)
    reference a.value at 6 -> b.a (in b.c)
    ");
}

#[test]
fn a_sequence_written_as_a_plain_list() {
    insta::assert_snapshot!(index(r#"
        { resources, ... }: {
          resources.plain = lib.mkSequence [
            { name = "one"; type = "local.exec"; inputs.executable = "true"; }
            { name = "two"; type = "local.exec"; inputs.args = [ resources.one.stdout ]; }
            { type = "unnamed"; }
          ];
        }
    "#), @r#"
    resource plain nested
    resource plain.one `local.exec` inputs executable="true"
    resource plain.two `local.exec` inputs args:array
    reference one.stdout at 4 -> ? (in plain.two)
    "#);
}

#[test]
fn duplicates_and_providers() {
    insta::assert_snapshot!(index(r#"
        { resources, ... }: {
          providers.p = { executable = "./bin/p"; args = [ "--a" "${x}" ]; };
          providers.q.executable = "/q";
          resources = { a = { type = "local.memo"; }; a = { type = "local.file"; }; };
        }
    "#), @r#"
    resource a `local.file` (declared whole 2 times)
    provider p Some("./bin/p") ["--a"]
    provider q Some("/q") []
    "#);
}

#[test]
fn broken_text_gives_what_can_be_read() {
    insta::assert_snapshot!(index(r#"
        { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "a" contents = 1; }; };
          resources.b = { type = "local.fi
    "#), @"
    resource a `local.file` inputs name
    resource b ``
    ");
}

#[test]
fn an_edit_reads_again_only_the_declaration_it_touches() {
    let fixture = Fixture::parse(
        r#"
        { resources, ... }: { resources = {
          a = { type = "local.memo"; inputs.initialize_with = resources.b.value; };
          b = { type = "local.memo"; inputs.initialize_with = 1$0; };
        }; }
    "#,
    );
    let before = fixture.analysis();
    let after = before.edited(TextRange::empty(fixture.offset()), "0");
    assert!(after.same_as(&Analysis::new(after.text())));
    let kept: Vec<bool> = after
        .bodies
        .iter()
        .map(|(key, (_, facts))| {
            before
                .bodies
                .get(key)
                .is_some_and(|(_, old)| Arc::ptr_eq(old, facts))
        })
        .collect();
    // `a` is kept as it was; `b` is read again.
    assert_eq!(kept.iter().filter(|k| **k).count(), 1, "{kept:?}");
    assert_eq!(kept.len(), 2);
    insta::assert_snapshot!(show(&after), @"
    resource a `local.memo` inputs initialize_with
    resource b `local.memo` inputs initialize_with:integer
    reference b.value at 2 -> b (in a)
    ");
}
