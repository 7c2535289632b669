//! Latency and memory of `nixops4-lsp` on a generated deployment of 2,000 resources
//! (about 20,000 lines), over the real protocol: time to open (until the first
//! diagnostics), p50/p99 of diagnostics, completion and hover after a keystroke, the
//! server's CPU time per keystroke (which other load on the machine does not inflate as it
//! does latencies), and the resident memory after open. Then, in a trusted session, completion latency while the
//! server applies that deployment (2,000 files in one dependency chain). With
//! `NIXOPS4_BENCH_NIL` set to a `nil` binary, the static steps run against that general Nix
//! language server for comparison.
//!
//! Run through `bench/lsp-latency.sh`, which builds the release binaries first.

use std::path::Path;
use std::time::{Duration, Instant};

use nixops4_tests::lsp_client::{LspClient, is_response};
use serde_json::{Value, json};

const RESOURCES: usize = 2_000;
const KEYSTROKES: usize = 1_000;

fn deployment() -> String {
    let mut text = String::from(
        "{\n  outputs = { self }: {\n    nixops4Deployments.default = { resources, ... }: {\n      resources = {\n",
    );
    for i in 0..RESOURCES {
        let previous = if i == 0 { 1 } else { i - 1 };
        text.push_str(&format!(
            "        r{i} = {{\n          type = \"local.file\";\n          inputs = {{\n            name = \"out/r{i}.txt\";\n            contents = ''\n              hello {i}\n            '' + resources.r{previous}.sha256;\n            mode = \"0644\";\n          }};\n        }};\n"
        ));
    }
    text.push_str("      };\n    };\n  };\n}\n");
    text
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The CPU time (user and system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime and stime are the
    // 12th and 13th of them, in clock ticks (100 a second on Linux).
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn line_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap();
    let line = text[..at].matches('\n').count();
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, column)
}

fn diagnostics_for(message: &Value, uri: &str, version: i64) -> bool {
    message["method"] == "textDocument/publishDiagnostics"
        && message["params"]["uri"] == uri
        && (message["params"]["version"] == json!(version)
            || message["params"]["version"].is_null())
}

/// `publishes`: whether the server publishes diagnostics for every version (nil does not
/// here, so for it only requests are timed, and opening ends with the first answer).
fn run(name: &str, mut client: LspClient, dir: &Path, text: &str, publishes: bool) {
    let uri = format!("file://{}/flake.nix", dir.display());
    let opened = Instant::now();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let at = if publishes {
        client
            .wait_for_timed("diagnostics after open", |m| diagnostics_for(m, &uri, 1))
            .0
    } else {
        let id = client.send_request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        );
        client
            .wait_for_timed("the first answer", |m| is_response(m, id))
            .0
    };
    let open_time = at - opened;
    let memory = resident_kib(client.pid());
    let cpu_before = cpu_time(client.pid());
    let (mut diagnostics, mut completion, mut hover) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..KEYSTROKES {
        let i = 1 + (k * 7919) % (RESOURCES - 1);
        // Type a character into (then delete it from) resource i's file name.
        let (line, column) = line_of(text, &format!("\"out/r{i}.txt\""));
        let version = 2 + k as i64;
        let change = if k % 2 == 0 {
            json!({"range": {"start": {"line": line, "character": column + 5}, "end": {"line": line, "character": column + 5}}, "text": "x"})
        } else {
            let previous = 1 + ((k - 1) * 7919) % (RESOURCES - 1);
            let (line, column) = line_of(text, &format!("\"out/r{previous}.txt\""));
            json!({"range": {"start": {"line": line, "character": column + 5}, "end": {"line": line, "character": column + 6}}, "text": ""})
        };
        let sent = Instant::now();
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}),
        );
        // Right after the keystroke: complete the outputs of the referenced resource, or hover it.
        let (reference_line, reference_column) =
            line_of(text, &format!("'' + resources.r{}.sha256", i - 1));
        let output_column = reference_column + format!("'' + resources.r{}.", i - 1).len();
        let position = json!({"line": reference_line, "character": output_column});
        let method = if k % 2 == 0 {
            "textDocument/completion"
        } else {
            "textDocument/hover"
        };
        let asked = Instant::now();
        let id = client.send_request(
            method,
            json!({"textDocument": {"uri": uri}, "position": position}),
        );
        // The answer and the diagnostics, in whichever order they come.
        let (mut answered, mut published) = (None, if publishes { None } else { Some(sent) });
        while answered.is_none() || published.is_none() {
            let (at, message) = client.wait_for_timed("an answer and diagnostics", |m| {
                is_response(m, id) || diagnostics_for(m, &uri, version)
            });
            if is_response(&message, id) {
                assert!(message.get("error").is_none(), "{message}");
                answered = Some(at);
            } else {
                published = Some(at);
            }
        }
        let answer_time = answered.unwrap() - asked;
        if k % 2 == 0 {
            completion.push(answer_time);
        } else {
            hover.push(answer_time);
        }
        if publishes {
            diagnostics.push(published.unwrap() - sent);
        }
    }
    let cpu = (cpu_time(client.pid()) - cpu_before) / KEYSTROKES as u32;
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let diagnostics = if publishes {
        format!(
            "p50 {} p99 {}",
            ms(percentile(&mut diagnostics, 0.5)),
            ms(percentile(&mut diagnostics, 0.99))
        )
    } else {
        "not published per version".to_owned()
    };
    println!(
        "{name}: open {} | memory after open {:.1} MiB | CPU per keystroke {} | diagnostics after a keystroke {diagnostics} | completion p50 {} p99 {} | hover p50 {} p99 {}",
        ms(open_time),
        memory as f64 / 1024.0,
        ms(cpu),
        ms(percentile(&mut completion, 0.5)),
        ms(percentile(&mut completion, 0.99)),
        ms(percentile(&mut hover, 0.5)),
        ms(percentile(&mut hover, 0.99)),
    );
    client.shutdown();
}

/// Completion while an apply runs, compared with the same completion when idle.
fn during_apply(dir: &Path, text: &str) {
    let uri = format!("file://{}/flake.nix", dir.display());
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let mut client = LspClient::start(&[], Some(dir), json!({"trusted": true}));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    // The plan made after the open is done when the lenses are refreshed.
    client.wait_for("the first plan", |m| {
        m["method"] == "workspace/codeLens/refresh"
    });
    let (line, column) = line_of(text, "'' + resources.r1000.sha256");
    let position = json!({"line": line, "character": column + "'' + resources.r1000.".len()});
    let complete = |client: &mut LspClient, apply: Option<i64>| {
        let asked = Instant::now();
        let id = client.send_request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": position}),
        );
        let (at, message) = client.wait_for_timed("a completion", |m| {
            is_response(m, id) || apply.is_some_and(|apply| is_response(m, apply))
        });
        (at - asked, is_response(&message, id))
    };
    let mut idle: Vec<Duration> = (0..200).map(|_| complete(&mut client, None).0).collect();
    let started = Instant::now();
    let apply = client.send_request(
        "workspace/executeCommand",
        json!({"command": "nixops4.apply", "arguments": [{"uri": uri, "confirmed": true}]}),
    );
    let mut during = Vec::new();
    loop {
        let (latency, answered) = complete(&mut client, Some(apply));
        if !answered {
            break;
        }
        during.push(latency);
    }
    let applied = started.elapsed();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "nixops4-lsp during an apply of {RESOURCES} resources ({:.1} s): completion p50 {} p99 {} over {} requests | idle p50 {} p99 {}",
        applied.as_secs_f64(),
        ms(percentile(&mut during, 0.5)),
        ms(percentile(&mut during, 0.99)),
        during.len(),
        ms(percentile(&mut idle, 0.5)),
        ms(percentile(&mut idle, 0.99)),
    );
    client.shutdown();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let text = deployment();
    std::fs::write(dir.path().join("flake.nix"), &text).unwrap();
    println!(
        "deployment: {RESOURCES} resources, {} lines, {} KiB; {KEYSTROKES} keystrokes",
        text.lines().count(),
        text.len() / 1024
    );
    run(
        "nixops4-lsp",
        LspClient::start(&[], Some(dir.path()), json!({})),
        dir.path(),
        &text,
        true,
    );
    during_apply(dir.path(), &text);
    if let Some(nil) = std::env::var_os("NIXOPS4_BENCH_NIL") {
        let client =
            LspClient::start_program(Path::new(&nil), &[], Some(dir.path()), json!({}), &[]);
        run("nil", client, dir.path(), &text, false);
    }
}
