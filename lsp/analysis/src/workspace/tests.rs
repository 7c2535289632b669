//! Definition, references and rename on fixtures of one or more files: locations as
//! ``/path:line:column `text` ``, renames as the files they leave.

use crate::fixture::Fixture;
use crate::workspace::{self, Location};

fn locations(fixture: &Fixture, found: &[Location]) -> String {
    if found.is_empty() {
        return "(none)".to_owned();
    }
    found
        .iter()
        .map(|location| fixture.location(location))
        .collect::<Vec<_>>()
        .join("\n")
}

fn definition(fixture: &str) -> String {
    let fixture = Fixture::parse(fixture);
    let found = workspace::definition(&fixture.files(), fixture.path(), fixture.offset());
    locations(&fixture, &found)
}

fn references(fixture: &Fixture, include_declaration: bool) -> String {
    let found = workspace::references(
        &fixture.files(),
        fixture.path(),
        fixture.offset(),
        include_declaration,
    );
    locations(fixture, &found)
}

/// The paths before and after, then the lines the rename changes in each file, as it
/// leaves them.
fn rename(fixture: &str, new_name: &str) -> String {
    renamed(&Fixture::parse(fixture), new_name)
}

fn renamed(fixture: &Fixture, new_name: &str) -> String {
    let rename =
        match workspace::rename(&fixture.files(), fixture.path(), fixture.offset(), new_name) {
            Ok(rename) => rename,
            Err(refused) => return format!("refused: {refused}"),
        };
    let mut shown = format!(
        "{} -> {}\n",
        rename.old_path.join("."),
        rename.new_path.join(".")
    );
    for file in fixture.files() {
        if rename.edits.iter().any(|(l, _)| l.file == file.id) {
            shown.push_str(&format!("#- {}\n", file.id));
            let edited = fixture.edited(file.id, &rename.edits);
            let before = file.analysis.text().lines();
            for (n, (old, new)) in before.zip(edited.lines()).enumerate() {
                if old != new {
                    shown.push_str(&format!("{}: {new}\n", n + 1));
                }
            }
        }
    }
    shown
}

#[test]
fn definition_past_unknown_references() {
    insta::assert_snapshot!(definition(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "a"; contents = resources.nope.x; }; };
          resources.b = { type = "local.exec"; inputs.executable = resources.$0a.sha256; };
        }; }; }
    "#), @"/flake.nix:2:13 `a`");
}

#[test]
fn no_definition_of_an_unknown_resource() {
    insta::assert_snapshot!(definition(r#"
        { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "a"; contents = resources.no$0pe.x; }; };
        }
    "#), @"(none)");
}

#[test]
fn definition_of_an_output_is_its_resource() {
    insta::assert_snapshot!(definition(r#"
        { resources, ... }: { resources.a.type = "local.memo"; x = resources.a.val$0ue; }
    "#), @"/flake.nix:1:33 `a`");
}

/// A deployment in module files: `declares.nix` declares `"web server"`, `uses.nix` only
/// names it, and `other.nix` is another deployment that declares the same name.
#[test]
fn a_name_only_used_in_a_module_may_be_declared_by_any_deployment() {
    insta::assert_snapshot!(definition(r#"
        #- /declares.nix
        { resources, ... }: { resources."web server".type = "local.file"; }
        #- /uses.nix
        { resources, ... }: { x = resources."web $0server".sha256; }
        #- /other.nix
        { resources, ... }: { resources."web server".type = "local.memo"; }
    "#), @r#"
    /declares.nix:1:33 `"web server"`
    /other.nix:1:33 `"web server"`
    "#);
}

/// Module files of one deployment beside another deployment that declares the same name,
/// from the declaration.
#[test]
fn references_and_rename_cross_module_files_but_not_deployments() {
    let fixture = Fixture::parse(
        r#"
        #- /declares.nix
        { resources, ... }: {
          resources."$0web server" = { type = "local.file"; inputs = { name = "w"; contents = "x"; }; };
          resources.log.type = "local.memo";
          resources.log.inputs.initialize_with = resources."web server".path;
        }
        #- /uses.nix
        { resources, ... }: {
          resources.copy = { type = "local.file"; inputs = { name = "c"; contents = resources."web server".sha256; }; };
        }
        #- /other.nix
        { resources, ... }: {
          resources."web server" = { type = "local.memo"; inputs.initialize_with = 1; };
          x = resources."web server".value;
        }
    "#,
    );
    insta::assert_snapshot!(references(&fixture, false), @r#"
    /declares.nix:4:52 `"web server"`
    /uses.nix:2:87 `"web server"`
    "#);
    insta::assert_snapshot!(references(&fixture, true), @r#"
    /declares.nix:2:13 `"web server"`
    /declares.nix:4:52 `"web server"`
    /uses.nix:2:87 `"web server"`
    "#);
    insta::assert_snapshot!(renamed(&fixture, "web"), @r#"
    web server -> web
    #- /declares.nix
    2:   resources.web = { type = "local.file"; inputs = { name = "w"; contents = "x"; }; };
    4:   resources.log.inputs.initialize_with = resources.web.path;
    #- /uses.nix
    2:   resources.copy = { type = "local.file"; inputs = { name = "c"; contents = resources.web.sha256; }; };
    "#);
    insta::assert_snapshot!(renamed(&fixture, "log"), @"refused: there is already a resource `log` here");
}

#[test]
fn rename_quotes_a_name_that_needs_it() {
    insta::assert_snapshot!(rename(r#"
        { resources, ... }: { resources.a$0.type = "local.memo"; x = resources.a.value; }
    "#, "web 2"), @r#"
    a -> web 2
    #- /flake.nix
    1: { resources, ... }: { resources."web 2".type = "local.memo"; x = resources."web 2".value; }
    "#);
}

#[test]
fn rename_refuses_outputs_and_what_is_no_resource() {
    insta::assert_snapshot!(rename(r#"{ resources, ... }: { resources.a.type = "local.memo"; x = resources.a.val$0ue; }"#, "x"), @"refused: outputs are named by the resource's provider and cannot be renamed");
    insta::assert_snapshot!(rename("{ x$0 = 1; }", "y"), @"refused: rename works on a resource's name");
    insta::assert_snapshot!(rename("{ resources.a$0 = { }; }", ""), @"refused: a resource needs a name");
}

/// The evaluator's nested fixture, shortened, with the cursor on a step of `release`.
#[test]
fn rename_a_step_of_a_sequence_keeps_it_a_string() {
    insta::assert_snapshot!(rename(r#"
        { nixops4Deployments.default = outer@{ resources, ... }: {
          resources = {
            state = { type = "local.state_file"; inputs.name = "deployment.state.jsonl"; };
            release = lib.mkSequence ({ resources, ... }: [
              { name = "bu$0ild"; type = "local.exec"; inputs.executable = "true"; }
              { name = "publish"; type = "local.exec"; inputs = { executable = "echo"; args = [ resources.build.stdout ]; }; }
            ]);
          };
        }; }
    "#, "compile"), @r#"
    release.build -> release.compile
    #- /flake.nix
    5:       { name = "compile"; type = "local.exec"; inputs.executable = "true"; }
    6:       { name = "publish"; type = "local.exec"; inputs = { executable = "echo"; args = [ resources.compile.stdout ]; }; }
    "#);
}

#[test]
fn rename_in_a_nested_scope_leaves_the_outer_one() {
    insta::assert_snapshot!(rename(r#"
        { nixops4Deployments.default = outer@{ resources, ... }: {
          resources = {
            ca = { type = "vault.ca"; inputs.commonName = "example"; };
            key = { type = "local.memo"; inputs.initialize_with = resources.ca.id; };
            host = lib.nested ({ resources, ... }: {
              resources = {
                k$0ey = { type = "vault.key"; inputs.ca = outer.resources.ca.id; };
                cert = { type = "local.file"; inputs = { name = "cert"; contents = resources.key.public; }; };
              };
            });
          };
        }; }
    "#, "ca"), @r#"
    host.key -> host.ca
    #- /flake.nix
    7:         ca = { type = "vault.key"; inputs.ca = outer.resources.ca.id; };
    8:         cert = { type = "local.file"; inputs = { name = "cert"; contents = resources.ca.public; }; };
    "#);
}

#[test]
fn prepare_rename_gives_the_name_and_its_range() {
    let fixture =
        Fixture::parse(r#"{ resources, ... }: { resources."a b"$0.type = "local.memo"; }"#);
    let prepared = workspace::prepare_rename(fixture.analysis(), fixture.offset())
        .map(|(range, name)| format!("{name:?} at {}", fixture.range(range)));
    insta::assert_snapshot!(format!("{prepared:?}"), @r#"Ok("\"a b\" at 1:33 `\"a b\"`")"#);
}

#[test]
fn neighbours_are_what_the_other_files_declare_at_top_level() {
    let fixture = Fixture::parse(
        r#"
        #- /a.nix
        { resources, ... }: { resources.a.type = "local.memo"; }
        #- /b.nix
        { resources, ... }: {
          resources.b.type = "local.memo";
          resources.n = lib.nested ({ resources, ... }: { resources.inner.type = "local.memo"; });
        }
    "#,
    );
    let neighbours = workspace::neighbours(&fixture.files(), "/a.nix");
    insta::assert_snapshot!(format!("{neighbours:?}"), @r#"{"b", "n"}"#);
}
