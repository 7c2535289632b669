//! Diagnostics on fixtures: each as ``code `source text`: message``, its fix's title
//! after `=>`; and quick fixes applied to the text.

use std::collections::BTreeSet;

use crate::fixture::{Fixture, apply_edits, nested_deployment};

fn diagnose(fixture: &str) -> String {
    diagnose_beside(fixture, &[])
}

/// With `neighbours`: what other files of the deployment declare.
fn diagnose_beside(fixture: &str, neighbours: &[&str]) -> String {
    let fixture = Fixture::parse(fixture);
    let neighbours: BTreeSet<String> = neighbours.iter().map(|n| (*n).to_owned()).collect();
    let text = fixture.text();
    fixture
        .analysis()
        .diagnostics(&fixture.schemas, &neighbours)
        .iter()
        .map(|d| {
            let mut line = format!("{} `{}`: {}", d.code, &text[d.range], d.message);
            if let Some(fix) = &d.fix {
                line.push_str(&format!(" => {}", fix.title));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text after every fix, then what is left to say about it.
fn fixed(fixture: &str) -> String {
    let fixture = Fixture::parse(fixture);
    let edits: Vec<_> = fixture
        .analysis()
        .diagnostics(&fixture.schemas, &BTreeSet::new())
        .into_iter()
        .filter_map(|d| d.fix)
        .flat_map(|fix| fix.edits)
        .collect();
    let text = apply_edits(fixture.text(), &edits);
    format!("{text}---\n{}", diagnose(&text))
}

#[test]
fn what_is_wrong_with_precise_ranges() {
    insta::assert_snapshot!(diagnose(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources = {
            a = { type = "local.flie"; inputs = { name = "a"; }; };
            b = { type = "local.file"; inputs = { name = "b"; contnets = "x"; mode = 644; }; };
            c = { type = "local.exec"; inputs = { executable = "echo"; args = [ resources.b.paht resources.nope.path ]; }; };
            d = { type = "other.thing"; inputs = { anything = 1; }; };
          };
        }; }; }
    "#), @r#"
    unknown-type `"local.flie"`: unknown resource type `local.flie` (did you mean `local.file`?) => Change to `"local.file"`
    missing-input `{ name = "b"; contnets = "x"; mode = 644; }`: `local.file` needs input `contents`
    unknown-input `contnets`: `local.file` has no input `contnets` (did you mean `contents`?) => Change to `contents`
    wrong-type `644`: input `mode` must be string or null, not integer
    unknown-output `paht`: resource `b` has no output `paht` (did you mean `path`?) => Change to `path`
    unknown-resource `nope`: there is no resource `nope`
    "#);
}

#[test]
fn syntax_errors_and_the_rest_still_checked() {
    insta::assert_snapshot!(diagnose(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "a" contents = 1; }; };
          resources.b = { type = "local.flie"; };
        }; }; }
    "#), @r#"
    missing-input `{ name = "a" contents = 1; }`: `local.file` needs input `contents` => Add input `contents`
    syntax `= 1`: unexpected TOKEN_ASSIGN at 145..148, wanted any of [TOKEN_SEMICOLON]
    unknown-type `"local.flie"`: unknown resource type `local.flie` (did you mean `local.file`?) => Change to `"local.file"`
    "#);
}

/// rnix ends an `inputs` set whose `}` is missing at whatever it read last, here a
/// character of four bytes: no fix is placed before a `}` that is not there.
#[test]
fn an_inputs_set_without_its_brace_is_checked_without_a_fix() {
    insta::assert_snapshot!(diagnose(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "a"; 𝄞
    "#).lines().next().unwrap_or_default(), @"missing-input `{ name = \"a\"; 𝄞`: `local.file` needs input `contents`");
}

#[test]
fn duplicates_and_cycles_where_they_are_written() {
    insta::assert_snapshot!(diagnose(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources = {
            a = { type = "local.memo"; inputs.initialize_with = resources.c.value; };
            b = { type = "local.memo"; inputs.initialize_with = resources.a.value; };
            c = { type = "local.memo"; inputs.initialize_with = resources.b.value; };
            d = { type = "local.memo"; inputs.initialize_with = resources.d.value; };
            e = { type = "local.memo"; inputs.initialize_with = resources.a.value; };
            e = { type = "local.memo"; inputs.initialize_with = 2; };
          };
        }; }; }
    "#), @"
    dependency-cycle `c`: dependency cycle: a → c → b → a
    dependency-cycle `a`: dependency cycle: a → c → b → a
    dependency-cycle `b`: dependency cycle: a → c → b → a
    dependency-cycle `d`: dependency cycle: d → d
    duplicate-resource `e`: resource `e` is declared more than once
    ");
}

#[test]
fn quick_fixes_repair_the_text() {
    // Fixed, the file has nothing left to say but the input `a` still lacks.
    insta::assert_snapshot!(fixed(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources = {
            a = { type = "local.flie"; inputs.name = "a"; };
            blob = {
              type = "local.file";
              inputs = {
                nmae = "b";
              };
            };
            c = { type = "local.file"; inputs = { name = "c"; }; };
            d = { type = "local.file"; };
            e = { type = "local.exec"; inputs.executable = resources.blbo.path; };
          };
        }; }; }
    "#), @r#"
    { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
      resources = {
        a = { type = "local.file"; inputs.name = "a"; };
        blob = {
          type = "local.file";
          inputs = {
            name = "b";
            contents = "";
          };
        };
        c = { type = "local.file"; inputs = { name = "c"; contents = ""; }; };
        d = { type = "local.file"; inputs = { name = ""; contents = ""; }; };
        e = { type = "local.exec"; inputs.executable = resources.blob.path; };
      };
    }; }; }
    ---
    missing-input `"local.file"`: `local.file` needs input `contents`
    "#);
}

#[test]
fn the_evaluated_nested_deployment_is_clean() {
    // Every reference resolves in its own scope.
    assert_eq!(diagnose(&nested_deployment()), "");
}

#[test]
fn a_nested_scope_does_not_see_the_outer_one_without_its_binder() {
    insta::assert_snapshot!(diagnose(r#"
        { nixops4Deployments.default = outer@{ resources, ... }: {
          resources = {
            ca = { type = "vault.ca"; };
            host = lib.nested ({ resources, ... }: {
              resources.key = { type = "vault.key"; inputs.ca = resources.ca.id; };
              resources.cert = { type = "vault.cert"; inputs.ca = outer.resources.ca.id; };
            });
          };
        }; }
    "#), @"unknown-resource `ca`: there is no resource `ca`");
}

#[test]
fn module_files_may_name_what_their_neighbours_declare() {
    let module = r#"
        { resources, ... }: {
          resources.a = { type = "local.memo"; inputs.initialize_with = resources.shared.value; };
          resources.b = { type = "local.memo"; inputs.initialize_with = resources.sharde.value; };
        }
    "#;
    insta::assert_snapshot!(diagnose_beside(module, &["shared"]), @"unknown-resource `sharde`: there is no resource `sharde` (did you mean `shared`?) => Change to `shared`");
}

#[test]
fn a_file_declaring_nothing_cannot_tell_unknown_resources() {
    insta::assert_snapshot!(diagnose(r#"
        { resources, ... }: { x = resources.anything.value; }
    "#), @"");
}

#[test]
fn inputs_of_a_generated_resource_are_checked() {
    insta::assert_snapshot!(diagnose(&crate::fixture::pixelfed_modules(r#"
{ config, lib, ... }: {
  resources = lib.mapAttrs' (name: customer: lib.nameValuePair "pixelfed-${name}" {
    type = "local.file";
    inputs = { nmae = "pixelfed-${name}.conf"; contents = customer.domain; };
  }) config.customers;
  # Data, not a declaration: a set with a `type` inside an input.
  resources.other = { type = "local.exec"; inputs = { executable = "true"; env = { type = "local.file"; }; }; };
}$0"#)), @r#"
    missing-input `{ nmae = "pixelfed-${name}.conf"; contents = customer.domain; }`: `local.file` needs input `name`
    unknown-input `nmae`: `local.file` has no input `nmae` (did you mean `name`?) => Change to `name`
    "#);
}
