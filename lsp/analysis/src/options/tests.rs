//! Module options on the files of issue 16 (`customer.nix` declares `domain` under
//! `customers.<name>`): completed where a customer is set, hovered where one is named,
//! and offered nowhere the option path is not known. The options are given as the
//! evaluator lists them for those files.

use crate::fixture::Fixture;
use crate::options::ModuleOption;

fn options() -> Vec<ModuleOption> {
    let option =
        |path: &str, type_description: &str, description: &str, declared: &str| ModuleOption {
            path: path.split('.').map(str::to_owned).collect(),
            description: Some(description.to_owned()),
            type_description: Some(type_description.to_owned()),
            declarations: vec![declared.to_owned()],
            ..ModuleOption::default()
        };
    let mut domain = option(
        "customers.<name>.domain",
        "string",
        "The customer's domain, where their Pixelfed answers.",
        "customer.nix:2:3",
    );
    domain.example = Some("\"pixelfed.example.org\"".to_owned());
    vec![
        option(
            "customers",
            "attribute set of (submodule)",
            "The customers, by name.",
            "data-model.nix:4:3",
        ),
        domain,
        option(
            "customers.<name>.plan",
            "one of \"small\", \"large\"",
            "How much the customer pays for.",
            "customer.nix:7:3",
        ),
        option(
            "resources",
            "lazy attribute set of raw value",
            "The deployment's resources.",
            "nixops4-lib.nix:26:9",
        ),
    ]
}

fn complete(fixture: &str) -> String {
    let fixture = Fixture::parse(fixture);
    fixture
        .analysis()
        .option_completions(fixture.offset(), &options())
        .iter()
        .map(|c| {
            format!(
                "{:?} {} [{}] {} | {}",
                c.kind, c.label, c.detail, c.snippet, c.documentation
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn hover(fixture: &str) -> String {
    let fixture = Fixture::parse(fixture);
    match fixture
        .analysis()
        .option_hover(fixture.offset(), &options())
    {
        Some(info) => format!("{}\n{}", fixture.range(info.range), info.markdown),
        None => "(none)".to_owned(),
    }
}

#[test]
fn inside_a_customers_set() {
    insta::assert_snapshot!(complete(r#"
        #- /deployment.nix
        { resources, ... }: {
          customers.alice = {
            $0
          };
        }
    "#), @r#"
    Option domain [string] domain = "$1"; | The customer's domain, where their Pixelfed answers.
    Option plan [one of "small", "large"] plan = $1; | How much the customer pays for.
    "#);
}

#[test]
fn not_what_the_set_already_sets() {
    insta::assert_snapshot!(complete(r#"
        { ... }: {
          customers.alice = {
            domain = "alice.example.org";
            $0
          };
        }
    "#), @r#"Option plan [one of "small", "large"] plan = $1; | How much the customer pays for."#);
}

#[test]
fn after_a_dotted_path_being_typed() {
    let expected = r#"Option domain [string] domain = "$1"; | The customer's domain, where their Pixelfed answers.
Option plan [one of "small", "large"] plan = $1; | How much the customer pays for."#;
    for typed in [
        "customers.alice.do$0",
        "customers.alice.$0",
        "customers.alice.do$0 = \"x\";",
    ] {
        let fixture = format!("{{ lib, ... }}: {{\n  {typed}\n}}\n");
        assert_eq!(complete(&fixture), expected, "{typed}");
    }
}

#[test]
fn a_name_begun_in_an_unfinished_set() {
    insta::assert_snapshot!(complete(r#"
        { ... }: { customers.alice = { do$0 }; }
    "#), @r#"
    Option domain [string] domain = "$1"; | The customer's domain, where their Pixelfed answers.
    Option plan [one of "small", "large"] plan = $1; | How much the customer pays for.
    "#);
}

#[test]
fn at_the_top_of_a_module_and_under_config() {
    insta::assert_snapshot!(complete(r#"
        { config, lib, ... }: {
          config = lib.mkIf true {
            $0
          };
        }
    "#), @"
    Option customers [attribute set of (submodule)] customers = $1; | The customers, by name.
    Option resources [lazy attribute set of raw value] resources = $1; | The deployment's resources.
    ");
    insta::assert_snapshot!(complete(r#"
        { lib, ... }: let x = 1; in {
          customers = lib.mkMerge [ { bob = { $0 }; } ];
        }
    "#), @r#"
    Option domain [string] domain = "$1"; | The customer's domain, where their Pixelfed answers.
    Option plan [one of "small", "large"] plan = $1; | How much the customer pays for.
    "#);
}

#[test]
fn nothing_where_the_path_is_unknown_or_not_a_module() {
    for fixture in [
        // Inside another function: which attribute this is depends on the call.
        "{ lib, config, ... }: { resources = lib.mapAttrs (name: c: { $0 }) config.customers; }",
        // A `let` binding is no option.
        "{ ... }: let customers.alice = { $0 }; in { }",
        // Declaring options is not setting them.
        "{ lib, ... }: { options.customers = { $0 }; }",
        // A value, not a name.
        "{ ... }: { customers.alice.domain = $0; }",
        // A flake is not a module.
        "{ outputs = { self }: { }; customers.alice = { $0 }; }",
        // No such option.
        "{ ... }: { services.web = { $0 }; }",
    ] {
        assert_eq!(complete(fixture), "", "{fixture}");
    }
}

#[test]
fn hover_on_an_option_shows_its_declaration() {
    insta::assert_snapshot!(hover(r#"
        #- /deployment.nix
        { resources, ... }: {
          customers.alice.dom$0ain = "alice.example.org";
        }
    "#), @r#"
    2:19 `domain`
    option **customers.<name>.domain** `string`

    The customer's domain, where their Pixelfed answers.

    Example: `"pixelfed.example.org"`

    Declared in `customer.nix:2:3`
    "#);
    insta::assert_snapshot!(hover(r#"
        { ... }: { customers.bob = { domain$0 = "bob.example.org"; }; }
    "#), @r#"
    1:30 `domain`
    option **customers.<name>.domain** `string`

    The customer's domain, where their Pixelfed answers.

    Example: `"pixelfed.example.org"`

    Declared in `customer.nix:2:3`
    "#);
    let mut options = options();
    options[2].default = Some("\"small\"".to_owned());
    options[2].example = Some("if big\nthen \"large\"\nelse \"small\"".to_owned());
    let fixture = Fixture::parse("{ ... }: { customers.bob.pl$0an = \"large\"; }");
    let info = fixture
        .analysis()
        .option_hover(fixture.offset(), &options)
        .unwrap();
    insta::assert_snapshot!(info.markdown, @r#"
    option **customers.<name>.plan** `one of "small", "large"`

    How much the customer pays for.

    Default: `"small"`

    Example:
    ```nix
    if big
    then "large"
    else "small"
    ```

    Declared in `customer.nix:7:3`
    "#);
    insta::assert_snapshot!(hover(r#"
        { ... }: { cust$0omers = { }; }
    "#), @"
    1:12 `customers`
    option **customers** `attribute set of (submodule)`

    The customers, by name.

    Declared in `data-model.nix:4:3`
    ");
    assert_eq!(
        hover("{ ... }: { customers.alice$0 = { }; }"),
        "(none)",
        "a customer's name is no option"
    );
}

#[test]
fn any_text_at_any_offset_is_answered() {
    let texts = [
        "{ ... }: { customers.alice = { do }; }",
        "{ ... }: { customers.\"a b\".${x}.y = { }; }",
        "{ config, ... }: { config.customers.alice.",
        "(({ ... }: { customers = { bob = { } ; } ; }))",
        "{ ... }: { customers.\"\u{e9}\u{1F600}\".é. = { dé }; }",
        "{{{{ ;;; \"\\",
        "",
    ];
    for text in texts {
        let analysis = crate::Analysis::new(text);
        for offset in 0..=text.len() + 1 {
            let offset = crate::TextSize::from(offset as u32);
            let _ = analysis.option_completions(offset, &options());
            let _ = analysis.option_hover(offset, &options());
        }
    }
}
