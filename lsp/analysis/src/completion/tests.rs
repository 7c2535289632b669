//! Completion on fixtures: each item as `kind label [detail] snippet`, in the order given.

use crate::fixture::Fixture;

fn complete(fixture: &str) -> String {
    let fixture = Fixture::parse(fixture);
    fixture
        .analysis()
        .completions(fixture.offset(), &fixture.schemas, &fixture.others())
        .iter()
        .map(|c| format!("{:?} {} [{}] {}", c.kind, c.label, c.detail, c.snippet))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn resource_types() {
    insta::assert_snapshot!(complete(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.a = { type = "lo$0"; };
        }; }; }
    "#), @"
    Type local.exec [] local.exec
    Type local.file [] local.file
    Type local.memo [] local.memo
    Type local.state_file [] local.state_file
    ");
}

#[test]
fn inputs_required_first_without_those_set() {
    insta::assert_snapshot!(complete(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "x"; $0 }; };
        }; }; }
    "#), @r#"
    Input contents [string, required] contents = "$1";
    Input mode [string | null] mode = "$1";
    "#);
}

#[test]
fn inputs_in_half_typed_sets() {
    insta::assert_snapshot!(complete(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources = { a = { type = "local.exec"; inputs = { arg$0 } ; }; };
        }; }; }
    "#), @r#"
    Input executable [string, required] executable = "$1";
    Input args [array] args = [ $1 ];
    Input env [object] env = { $1 };
    Input once [boolean] once = $1;
    Input stdin [string | null] stdin = "$1";
    Input success_exit_codes [array] success_exit_codes = [ $1 ];
    "#);
}

#[test]
fn resource_names_after_resources_dot() {
    insta::assert_snapshot!(complete(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "a"; contents = "x"; }; };
          resources.b = { type = "local.exec"; inputs = { executable = resources.$0 }; };
        }; }; }
    "#), @"
    Resource a [local.file] a
    Resource b [local.exec] b
    ");
}

#[test]
fn outputs_while_the_expression_is_unfinished() {
    insta::assert_snapshot!(complete(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.a = { type = "local.file"; inputs = { name = "a"; contents = "x"; }; };
          resources.b = { type = "local.exec"; inputs = { executable = resources.a.$0
        }; }; }
    "#), @"
    Output path [string] path
    Output sha256 [string] sha256
    ");
}

/// The shape of the evaluator's nested fixture, with the cursor in `host`.
#[test]
fn resources_of_the_nested_scope_at_the_cursor() {
    insta::assert_snapshot!(complete(r#"
        { nixops4Deployments.default = outer@{ resources, ... }: {
          resources = {
            ca = { type = "vault.ca"; inputs.commonName = "example"; };
            host = lib.nested ({ resources, ... }: {
              providers.vault = { executable = "/opt/other-vault"; };
              resources = {
                key = { type = "vault.key"; inputs.ca = resources.$0; };
                cert = { type = "local.file"; inputs = { name = "cert"; contents = resources.key.public; }; };
              };
            });
          };
        }; }
    "#), @"
    Resource key [vault.key] key
    Resource cert [local.file] cert
    ");
}

/// The outer scope's resources, from inside `host`, named through its binder.
#[test]
fn resources_of_the_outer_scope_by_its_binder() {
    insta::assert_snapshot!(complete(r#"
        { nixops4Deployments.default = outer@{ resources, ... }: {
          resources = {
            state = { type = "local.state_file"; inputs.name = "deployment.state.jsonl"; };
            ca = { type = "vault.ca"; state = resources.state; };
            host = lib.nested ({ resources, ... }: {
              resources.key = { type = "vault.key"; inputs.ca = outer.resources.$0 };
              resources.cert = { type = "local.file"; };
            });
            release = lib.mkSequence ({ resources, ... }: [ { name = "build"; type = "local.exec"; } ]);
            "odd.name" = { type = "local.memo"; inputs.initialize_with = 1; };
          };
        }; }
    "#), @r#"
    Resource state [local.state_file] state
    Resource ca [vault.ca] ca
    Resource host [nested deployment] host
    Resource release [nested deployment] release
    Resource odd.name [local.memo] "odd.name"
    "#);
}

#[test]
fn steps_of_a_sequence_after_its_name() {
    insta::assert_snapshot!(complete(r#"
        { nixops4Deployments.default = { resources, ... }: {
          resources = {
            release = lib.mkSequence ({ resources, ... }: [
              { name = "build"; type = "local.exec"; inputs.executable = "true"; }
              { name = "publish"; type = "local.exec"; inputs = { executable = "echo"; args = [ resources.build.stdout ]; }; }
            ]);
            "odd.name" = { type = "local.memo"; state = resources.release.$0; };
          };
        }; }
    "#), @"
    Resource build [local.exec] build
    Resource publish [local.exec] publish
    ");
}

#[test]
fn state_resources_after_state_equals() {
    insta::assert_snapshot!(complete(r#"
        { outputs = { self }: { nixops4Deployments.default = { resources, ... }: {
          resources.s = { type = "local.state_file"; inputs.name = "s.jsonl"; };
          resources.m = { type = "local.memo"; inputs.initialize_with = 1; state = $0
        }; }; }
    "#), @"Resource resources.s [local.state_file] resources.s;");
}

const VAULT: &str = r#"
#- provider vault
{ "key": {
    "description": "A key.",
    "inputs": { "type": "object", "additionalProperties": false, "required": ["algorithm"], "properties": {
      "algorithm": { "type": "string", "enum": ["ed25519", "rsa"], "description": "The algorithm." },
      "exportable": { "type": "boolean" } } },
    "outputs": { "type": "object", "properties": { "public": { "type": "string" }, "private": { "type": "string" } } },
    "secretOutputs": ["private"] } }
"#;

fn with_vault(file: &str) -> String {
    format!("#- /flake.nix\n{file}\n{VAULT}")
}

#[test]
fn values_a_schema_lists_inside_quotes() {
    insta::assert_snapshot!(complete(&with_vault(
        r#"{ resources, ... }: { resources.k = { type = "vault.key"; inputs = { algorithm = "$0"; }; }; }"#
    )), @"
    Value ed25519 [] ed25519
    Value rsa [] rsa
    ");
}

#[test]
fn booleans_for_a_boolean_input() {
    insta::assert_snapshot!(complete(&with_vault(
        r#"{ resources, ... }: { resources.k = { type = "vault.key"; inputs = { algorithm = "rsa"; exportable = t$0rue; }; }; }"#
    )), @"
    Value true [] true
    Value false [] false
    ");
}

#[test]
fn secret_outputs_say_so() {
    insta::assert_snapshot!(complete(&with_vault(
        r#"{ resources, ... }: { resources.k = { type = "vault.key"; }; x = resources.k.$0; }"#
    )), @"
    Output private [string (secret)] private
    Output public [string] public
    ");
}

#[test]
fn nothing_outside_what_it_knows() {
    insta::assert_snapshot!(complete(r#"
        { resources, ... }: { resources.a = { type = "other.thing"; inputs = { $0 }; }; x = 1; }
    "#), @"");
}

#[test]
fn inputs_of_a_resource_generated_by_mapattrs_in_a_module() {
    insta::assert_snapshot!(complete(&crate::fixture::pixelfed_modules(r#"
{ config, lib, resources, ... }: {
  resources = lib.mapAttrs' (name: customer: lib.nameValuePair "pixelfed-${name}" {
    type = "local.file";
    inputs = { name = "pixelfed-${name}.conf"; $0 };
  }) config.customers;
}"#)), @r#"
    Input contents [string, required] contents = "$1";
    Input mode [string | null] mode = "$1";
    "#);
}

#[test]
fn inputs_of_a_resource_built_in_a_let_and_a_list() {
    insta::assert_snapshot!(complete(r#"
        { lib, ... }:
        let site = domain: { type = "local.exec"; inputs = { executable = "true"; o$0 }; };
        in { resources = lib.listToAttrs [ (lib.nameValuePair "a" (site "a.org")) ]; }
    "#), @r#"
    Input args [array] args = [ $1 ];
    Input env [object] env = { $1 };
    Input once [boolean] once = $1;
    Input stdin [string | null] stdin = "$1";
    Input success_exit_codes [array] success_exit_codes = [ $1 ];
    "#);
}

#[test]
fn outputs_of_a_resource_another_module_declares() {
    insta::assert_snapshot!(complete(&crate::fixture::pixelfed_modules(r#"
{ config, lib, resources, ... }: {
  resources = lib.mapAttrs' (name: customer: lib.nameValuePair "pixelfed-${name}" {
    type = "local.file";
    inputs = { name = "pixelfed-${name}.conf"; contents = resources.sshkeypair.$0 };
  }) config.customers;
}"#)), @"Output value [] value");
}

#[test]
fn resource_names_of_every_module() {
    insta::assert_snapshot!(complete(&crate::fixture::pixelfed_modules(r#"
{ resources, ... }: {
  resources.site = { type = "local.file"; inputs = { name = "s"; contents = resources.$0 }; };
}"#)), @"
    Resource site [local.file] site
    Resource sshkeypair [local.memo] sshkeypair
    ");
}
