//! A module-system deployment in the real `nixops4-lsp`, trusted, with real Nix and a
//! nixpkgs `lib` from `NIXOPS4_NIXPKGS_LIB` (skipped, saying so, without one): the files
//! of issue 16 (`tests/fixtures/eval/pixelfed`). Resources that `lib.mapAttrs'` generates
//! get their plan lenses at the expression that generates them, one per customer, and the
//! options that `customer.nix` declares are completed and hovered in `deployment.nix`
//! with their descriptions, from the evaluator's option list. Saving a file of the flake
//! refreshes both: a new customer gets its lens, a new description shows in hover.

use std::path::Path;

use nixops4_tests::lsp_client::{LspClient, file_uri, marked};
use serde_json::{Value, json};

/// The lenses of a file once its deployment's plan is shown: `(line, title)`, polled
/// until they no longer say "planning" and differ from `before`.
fn planned_lenses(
    client: &mut LspClient,
    file: &Path,
    before: &[(u64, String)],
) -> Vec<(u64, String)> {
    let deadline = std::time::Instant::now() + nixops4_tests::lsp_client::DEADLINE;
    loop {
        let lenses = client.request(
            "textDocument/codeLens",
            json!({"textDocument": {"uri": file_uri(file)}}),
        );
        let lenses: Vec<(u64, String)> = lenses
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["range"]["start"]["line"].as_u64().unwrap(),
                    l["command"]["title"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if !lenses.is_empty()
            && !lenses.iter().any(|(_, t)| t.contains("planning"))
            && lenses != before
        {
            return lenses;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lenses stayed {lenses:?}"
        );
        let _ = client.wait_for("a lens refresh", |m| {
            m["method"] == "workspace/codeLens/refresh"
        });
    }
}

/// Writes a file of the flake anew, in the editor and on disk, and saves it.
fn save(client: &mut LspClient, file: &Path, text: &str, version: i64) {
    std::fs::write(file, text).unwrap();
    change(client, file, text, version);
    client.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": file_uri(file)}}),
    );
}

/// The hover text at `position` of `file`, polled (between lens refreshes, which follow
/// each plan) until it contains `wanted`.
fn hover_showing(client: &mut LspClient, file: &Path, position: &Value, wanted: &str) -> String {
    let deadline = std::time::Instant::now() + nixops4_tests::lsp_client::DEADLINE;
    loop {
        let hover = client.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": file_uri(file)}, "position": position}),
        );
        let shown = hover["contents"]["value"].as_str().unwrap_or_default();
        if shown.contains(wanted) {
            return shown.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hover never showed {wanted:?}: {hover}"
        );
        let _ = client.wait_for("a lens refresh", |m| {
            m["method"] == "workspace/codeLens/refresh"
        });
    }
}

/// The position of `$0` once inserted after the first `after` in `file`'s text.
fn position_after(file: &Path, after: &str) -> Value {
    let text = std::fs::read_to_string(file).unwrap();
    let at = text.find(after).expect("the text to mark") + after.len();
    marked(&format!("{}$0{}", &text[..at], &text[at..])).1
}

/// Replaces a document's text in the editor, without saving.
fn change(client: &mut LspClient, file: &Path, text: &str, version: i64) {
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": file_uri(file), "version": version}, "contentChanges": [{"text": text}]}),
    );
}

#[test]
fn generated_resources_get_lenses_and_module_options_are_completed_and_hovered() {
    if nixops4_tests::nixpkgs_lib().is_none() {
        return;
    }
    let flake = nixops4_tests::eval_fixture("pixelfed");
    let dir = flake.path().canonicalize().unwrap();
    let pixelfed = dir.join("applications/pixelfed.nix");
    let mut client = LspClient::start(&[], Some(&dir), json!({"trusted": true}));
    client.open_file(&pixelfed);

    let lenses = planned_lenses(&mut client, &pixelfed, &[]);
    let generating_line = marked(&std::fs::read_to_string(&pixelfed).unwrap().replacen(
        "type = \"local.file\"",
        "$0",
        1,
    ))
    .1["line"]
        .as_u64()
        .unwrap();
    assert_eq!(
        lenses,
        [
            (0, "▶ Apply deployment `default` (+3 ~0 -/+0 -0)".to_owned()),
            (generating_line, "pixelfed-alice: + create".to_owned()),
            (generating_line, "pixelfed-bob: + create".to_owned()),
        ],
        "one lens per generated instance, where `lib.mapAttrs'` makes its set"
    );

    // A resource the module names keeps its lens on its name, without a second one.
    let deployment = dir.join("deployment.nix");
    client.open_file(&deployment);
    let named_line = position_after(&deployment, "resources.")["line"]
        .as_u64()
        .unwrap();
    assert_eq!(
        planned_lenses(&mut client, &deployment, &[])[1..],
        [(named_line, "+ create".to_owned())]
    );

    // The plan also listed the options: `customer.nix` declares `domain`, which a new
    // customer's set (being typed, not saved) does not set yet.
    let typed = std::fs::read_to_string(&deployment).unwrap().replacen(
        "domain = \"alice.example.org\";",
        "$0",
        1,
    );
    let (typed, inside_alice) = marked(&typed);
    change(&mut client, &deployment, &typed, 2);
    let completions = client.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": file_uri(&deployment)}, "position": inside_alice}),
    );
    let domain = completions
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["label"] == "domain")
        .unwrap_or_else(|| panic!("`domain` is offered in {completions}"));
    assert_eq!(domain["detail"], "string");
    assert_eq!(
        domain["documentation"]["value"],
        "The customer's domain, where their Pixelfed answers."
    );

    let on_domain = position_after(&deployment, "customers.bob.dom");
    let shown = hover_showing(
        &mut client,
        &deployment,
        &on_domain,
        "The customer's domain, where their Pixelfed answers.",
    );
    assert!(shown.contains("`string`"), "the type: {shown}");
    assert!(
        shown.contains("Declared in `customer.nix"),
        "the hover says where the option is declared, in the flake's own file: {shown}"
    );

    // A new customer, saved: one more generated resource, one more lens.
    let text = std::fs::read_to_string(&deployment).unwrap();
    let with_carol = text.replacen(
        "customers.bob.domain",
        "customers.carol.domain = \"carol.example.org\";\n  customers.bob.domain",
        1,
    );
    save(&mut client, &deployment, &with_carol, 3);
    let lenses = planned_lenses(&mut client, &pixelfed, &lenses);
    let titles: Vec<&str> = lenses.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        titles[1..],
        [
            "pixelfed-alice: + create",
            "pixelfed-bob: + create",
            "pixelfed-carol: + create"
        ]
    );

    // A new description, saved in the file that declares the option: hover follows.
    let customer = dir.join("customer.nix");
    client.open_file(&customer);
    let text = std::fs::read_to_string(&customer).unwrap();
    let described = text.replace("where their Pixelfed answers", "served by Pixelfed");
    assert_ne!(described, text);
    save(&mut client, &customer, &described, 2);
    let on_domain = position_after(&deployment, "customers.bob.dom");
    hover_showing(
        &mut client,
        &deployment,
        &on_domain,
        "The customer's domain, served by Pixelfed.",
    );
    client.shutdown();
}
