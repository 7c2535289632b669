//! The real `nixops4-lsp` under thousands of random incremental edits, requests at random
//! (also invalid) positions, and malformed messages (also bodies that are not JSON, or
//! not a message): it must answer everything, never exit, and after every edit hold
//! exactly the text the client holds.

use nixops4_tests::lsp_client::LspClient;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

const URI: &str = "file:///robustness/flake.nix";

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ";",
    " = ",
    "\"",
    "''",
    "${",
    "#",
    "\n",
    "\r\n",
    " ",
    "a",
    "resources.",
    "resources.a.",
    "inputs = { ",
    "type = \"local.file\"; ",
    "é",
    "😀",
    "𝄞",
    "\t",
    "x: ",
    // A name typed where an attribute goes, before its `= ...;`: the contained reparse.
    "ow",
    "owner ",
    "rec ",
    ":",
    "@",
];

#[derive(Clone, Debug)]
enum Step {
    /// Replace from (line, column) fractions over a number of UTF-16 units with fragments.
    Edit {
        at: f64,
        delete: usize,
        insert: Vec<usize>,
    },
    /// A request at a position that may lie outside the text.
    Request {
        method: usize,
        line: u32,
        character: u32,
    },
    /// A message the server must refuse without harm.
    Malformed(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0.0..1.0f64, 0..10usize, prop::collection::vec(0..FRAGMENTS.len(), 0..3))
            .prop_map(|(at, delete, insert)| Step::Edit { at, delete, insert }),
        3 => (0..8usize, 0..40u32, 0..120u32)
            .prop_map(|(method, line, character)| Step::Request { method, line, character }),
        1 => (0..9usize).prop_map(Step::Malformed),
    ]
}

/// The LSP position (line, UTF-16 column) of a byte offset, and the byte offset of the
/// position a UTF-16 count into the text reaches, at a character boundary.
fn position_of(text: &str, offset: usize) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": text[line_start..offset].encode_utf16().count()})
}

fn boundary_at(text: &str, fraction: f64) -> usize {
    let mut at = ((fraction * text.len() as f64) as usize).min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    // Never between the two halves of a CRLF: editors do not put the cursor there.
    if at > 0 && text.as_bytes()[at - 1] == b'\r' && text[at..].starts_with('\n') {
        at -= 1;
    }
    at
}

fn end_after(text: &str, start: usize, characters: usize) -> usize {
    let mut end = start;
    for c in text[start..].chars().take(characters) {
        end += c.len_utf8();
    }
    if end > 0
        && end < text.len()
        && text.as_bytes()[end - 1] == b'\r'
        && text[end..].starts_with('\n')
    {
        end -= 1;
    }
    end
}

const METHODS: &[&str] = &[
    "textDocument/completion",
    "textDocument/hover",
    "textDocument/definition",
    "textDocument/references",
    "textDocument/prepareRename",
    "textDocument/rename",
    "textDocument/codeAction",
    "textDocument/semanticTokens/full",
];

fn malformed(client: &mut LspClient, kind: usize) {
    match kind {
        0 => client.send(json!({"jsonrpc": "2.0", "id": 999_999, "method": "textDocument/hover", "params": {"nonsense": true}})),
        1 => client.send(json!({"jsonrpc": "2.0", "id": 999_998, "method": "nixops4/noSuchMethod", "params": null})),
        2 => client.notify("textDocument/didChange", json!({"textDocument": {"uri": "file:///not/open.nix", "version": 3}, "contentChanges": [{"text": "x"}]})),
        3 => client.notify("textDocument/didChange", json!({"textDocument": {"uri": URI}, "contentChanges": "not a list"})),
        4 => client.send(json!({"jsonrpc": "2.0", "id": 999_997, "method": "textDocument/completion", "params": {"textDocument": {"uri": URI}, "position": {"line": -1, "character": "x"}}})),
        5 => client.send(json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 123_456}})),
        6 => client.send_body(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"textDocument/hov"),
        7 => client.send_body(b"[\"not\", \"a\", \"message\"]"),
        _ => client.send_bytes(b"Content-Length: many\r\n\r\n"),
    }
}

/// Waits for the answer to a message that could not be read: an error without an id.
fn error_without_id(client: &mut LspClient) -> Value {
    let answer = client.wait_for("an error answer", |m| {
        m.get("method").is_none() && m.get("error").is_some()
    });
    assert_eq!(answer["id"], Value::Null, "{answer}");
    answer["error"]["code"].clone()
}

#[test]
fn a_body_that_is_not_a_message_is_answered_and_the_server_goes_on() {
    let mut client = LspClient::start(&[], None, json!({}));
    let not_json: [&[u8]; 3] = [
        b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"textDocument/hov",
        b"Content-Length: 12",
        b"\xff\xfe{}",
    ];
    for body in not_json {
        client.send_body(body);
        assert_eq!(error_without_id(&mut client), json!(-32700));
    }
    for body in [
        &b"[1, 2, 3]"[..],
        b"{\"jsonrpc\": \"2.0\"}",
        b"{\"id\": {}}",
        b"7",
    ] {
        client.send_body(body);
        assert_eq!(error_without_id(&mut client), json!(-32600));
    }
    // Its id is known, so the answer carries it.
    client.send_body(b"{\"jsonrpc\": \"2.0\", \"id\": 41, \"method\": 7}");
    let answer = client.wait_for("the answer to 41", |m| m["id"] == 41);
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    // Headers without a usable length: answered, and the next frame is read.
    client.send_bytes(b"Content-Length: many\r\n\r\n");
    assert_eq!(error_without_id(&mut client), json!(-32700));
    client.send_bytes(b"garbage\r\n\r\n");
    assert_eq!(error_without_id(&mut client), json!(-32700));
    // Still serving, with the documents it had.
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "nix", "version": 1, "text": "{ }"}}),
    );
    let held = client.request("nixops4/documentText", json!({"uri": URI}));
    assert_eq!(held["text"], "{ }");
    client.shutdown();
}

#[test]
fn random_edits_requests_and_garbage_never_lose_an_edit() {
    let initial = std::fs::read_to_string(
        nixops4_tests::repository_root().join("tests/fixtures/eval/nested/flake.nix"),
    )
    .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 8,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(step(), 400), |steps| {
            let mut client = LspClient::start(&[], None, json!({}));
            let mut text = initial.clone();
            let mut version = 1;
            client.notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": URI, "languageId": "nix", "version": version, "text": text}}),
            );
            for step in steps {
                match step {
                    Step::Edit { at, delete, insert } => {
                        let start = boundary_at(&text, at);
                        let end = end_after(&text, start, delete);
                        let inserted: String = insert.iter().map(|i| FRAGMENTS[*i]).collect();
                        let range = json!({"start": position_of(&text, start), "end": position_of(&text, end)});
                        text.replace_range(start..end, &inserted);
                        version += 1;
                        client.notify(
                            "textDocument/didChange",
                            json!({"textDocument": {"uri": URI, "version": version}, "contentChanges": [{"range": range, "text": inserted}]}),
                        );
                        let held = client.request("nixops4/documentText", json!({"uri": URI}));
                        prop_assert_eq!(&held["text"], &json!(text));
                        prop_assert_eq!(&held["version"], &json!(version));
                        prop_assert_eq!(&held["analysed"], &json!(true));
                    }
                    Step::Request { method, line, character } => {
                        let position = json!({"line": line, "character": character});
                        let params = json!({
                            "textDocument": {"uri": URI},
                            "position": position,
                            "newName": "renamed",
                            "context": {"includeDeclaration": true, "diagnostics": []},
                            "range": {"start": position, "end": position},
                        });
                        let id = client.send_request(METHODS[method], params);
                        // An answer, result or error, but an answer.
                        client.wait_for(METHODS[method], |m| nixops4_tests::lsp_client::is_response(m, id));
                    }
                    Step::Malformed(kind) => malformed(&mut client, kind),
                }
            }
            client.shutdown();
            Ok(())
        })
        .unwrap();
}
