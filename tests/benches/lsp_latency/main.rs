//! Latency and memory of `nixops4-lsp` on generated deployments of 2,000 and 10,000
//! resources (about 20,000 and 100,000 lines), over the real protocol, while a user types
//! (`typing.rs`: a new input name, a new resource line by line, a line deleted,
//! 50 resources pasted, the worst case with an unclosed `{` and an unterminated string,
//! and a character in a string). For each case: p50/p99 of completion at the cursor and of
//! the diagnostics of that version, both from the moment the keystroke was sent, over 200
//! rounds; the server's CPU time per keystroke (which other load on the machine does not
//! inflate as it does latencies); the resident memory after open, after typing, and at its
//! peak (sampled after each case, so a server that crashes still has one). The new input
//! name is typed again with 20 other files of the flake open, since no work per keystroke
//! may grow with the number of files, and again with the requests an editor makes of the
//! whole file when typing pauses (outline, folding ranges, semantic tokens), asked after
//! each keystroke's completion, with the next keystroke sent at once, while they are being
//! answered: the worst moment to resume typing. Their latency is reported too (to the
//! answer read by the client, 10 MB of JSON for the outline of 10,000 resources), and how
//! many were answered "content modified" because the keystroke came first.
//! Then, in a trusted session, completion latency while the server applies the
//! 2,000-resource deployment.
//!
//! Side by side in the same run, so that ratios hold on a noisy machine: with
//! `NIXOPS4_BENCH_NIL` set to a `nil` binary, that general Nix language server (which
//! publishes diagnostics only when they change and without a version, so only its
//! completion is timed); with `NIXOPS4_BENCH_BASELINE` set to another `nixops4-lsp` (a
//! build of an earlier commit), that one. `NIXOPS4_BENCH_SIZES` (`2000,10000`) and
//! `NIXOPS4_BENCH_ROUNDS` (200) shorten a trial run.
//!
//! Run through `bench/lsp-latency.sh`, which builds the release binaries first.

mod typing;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nixops4_tests::lsp_client::{LspClient, is_response};
use serde_json::{Value, json};

use typing::Case;

/// Other files of the flake open in the multi-file case, and their resources each.
const OTHER_FILES: usize = 20;
const RESOURCES_PER_OTHER_FILE: usize = 100;

fn resource(i: usize, previous: usize) -> String {
    format!(
        "        r{i} = {{\n          type = \"local.file\";\n          inputs = {{\n            name = \"out/r{i}.txt\";\n            contents = \'\'\n              hello {i}\n            \'\' + resources.r{previous}.sha256;\n            mode = \"0644\";\n          }};\n        }};\n"
    )
}

fn deployment(resources: usize) -> String {
    let mut text = String::from(
        "{\n  outputs = { self }: {\n    nixops4Deployments.default = { resources, ... }: {\n      resources = {\n",
    );
    for i in 0..resources {
        text.push_str(&resource(i, if i == 0 { 1 } else { i - 1 }));
    }
    text.push_str("      };\n    };\n  };\n}\n");
    text
}

/// A module file of the same flake, with resources of its own.
fn module(k: usize) -> String {
    let mut text = String::from("{ resources, ... }: {\n  resources = {\n");
    for j in 0..RESOURCES_PER_OTHER_FILE {
        text.push_str(&format!(
            "    m{k}x{j} = {{ type = \"local.file\"; inputs = {{ name = \"out/m{k}x{j}\"; contents = resources.r1.sha256; }}; }};\n"
        ));
    }
    text.push_str("  };\n}\n");
    text
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// A field of `/proc/<pid>/status` in KiB: `VmRSS` now, `VmHWM` at its peak.
fn memory_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix(field).and_then(|v| {
                    v.trim_start_matches(':')
                        .trim()
                        .trim_end_matches(" kB")
                        .trim()
                        .parse()
                        .ok()
                })
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

/// LSP's position of a byte offset (the generated text is ASCII).
fn position(text: &str, offset: usize) -> Value {
    let line = text[..offset].matches('\n').count();
    let character = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": character})
}

fn diagnostics_for(message: &Value, uri: &str, version: i64) -> bool {
    message["method"] == "textDocument/publishDiagnostics"
        && message["params"]["uri"] == uri
        && (message["params"]["version"] == json!(version)
            || message["params"]["version"].is_null())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A server under test: how to start it, and whether it publishes diagnostics for every
/// version (nil does not, so for it only completion is timed, and opening ends with the
/// first answer).
struct Server {
    name: &'static str,
    program: PathBuf,
    publishes: bool,
}

impl Server {
    fn start(&self, dir: &Path) -> LspClient {
        LspClient::start_program(&self.program, &[], Some(dir), json!({}), &[])
    }
}

/// What a run adds to typing.
#[derive(Clone, Copy, Default)]
struct Around {
    /// Other module files of the flake open.
    others: usize,
    /// Whether the editor asks for the outline, folding ranges and semantic tokens after
    /// each keystroke.
    whole_file_requests: bool,
}

/// The requests an editor makes of the whole file after a change.
/// The whole-file requests of a case: those still being answered (id, when sent), how
/// long the answered ones took, how many the next keystroke overtook (answered "content
/// modified", LSP's answer about a document edited before it was answered, or cancelled
/// by the server, as nil does), and how many the server does not know (nil has no folding
/// ranges).
#[derive(Default)]
struct WholeFile {
    in_flight: Vec<(i64, Instant)>,
    latencies: Vec<Duration>,
    overtaken: usize,
    unknown: usize,
}

impl WholeFile {
    fn waits_for(&self, message: &Value) -> bool {
        self.in_flight
            .iter()
            .any(|(id, _)| is_response(message, *id))
    }

    /// Counts `message`, read at `at`, when it answers one of them; any other error fails
    /// the benchmark.
    fn answered(&mut self, message: &Value, at: Instant) -> bool {
        const CONTENT_MODIFIED: i64 = -32801;
        const REQUEST_CANCELLED: i64 = -32800;
        const METHOD_NOT_FOUND: i64 = -32601;
        let Some(k) = self
            .in_flight
            .iter()
            .position(|(id, _)| is_response(message, *id))
        else {
            return false;
        };
        let (_, sent) = self.in_flight.swap_remove(k);
        match message["error"]["code"].as_i64() {
            None => self.latencies.push(at - sent),
            Some(CONTENT_MODIFIED | REQUEST_CANCELLED) => self.overtaken += 1,
            Some(METHOD_NOT_FOUND) => self.unknown += 1,
            Some(_) => panic!("{message}"),
        }
        true
    }
}

const WHOLE_FILE_REQUESTS: [&str; 3] = [
    "textDocument/documentSymbol",
    "textDocument/foldingRange",
    "textDocument/semanticTokens/full",
];

/// Opens `text` as the flake (and module files of it), types every case in `cases`, and
/// prints a line for each.
fn run(server: &Server, dir: &Path, text: &str, cases: &[Case], around: Around, rounds: usize) {
    let others = around.others;
    let mut client = server.start(dir);
    let uri = format!("file://{}/flake.nix", dir.display());
    for k in 0..others {
        let path = dir.join(format!("module{k}.nix"));
        client.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": format!("file://{}", path.display()), "languageId": "nix", "version": 1, "text": module(k)}}),
        );
    }
    let opened = Instant::now();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "nix", "version": 1, "text": text}}),
    );
    let at = if server.publishes {
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
    let mut with_others = if others > 0 {
        format!(", {others} other files open")
    } else {
        String::new()
    };
    if around.whole_file_requests {
        with_others.push_str(", outline, folding and semantic tokens asked at each pause");
    }
    println!(
        "  {}{with_others}: open {} | memory after open {:.1} MiB",
        server.name,
        ms(at - opened),
        memory_kib(client.pid(), "VmRSS") as f64 / 1024.0
    );
    let resources = text.matches("type = \"local.file\"").count();
    let mut version = 1;
    let mut peak = 0;
    for case in cases {
        let (mut completion, mut diagnostics) = (Vec::new(), Vec::new());
        let mut whole_file = WholeFile::default();
        let cpu_before = cpu_time(client.pid());
        let mut k = 0;
        while completion.len() < rounds {
            let i = 1 + (k * 7919) % (resources - 1);
            k += 1;
            let mut current = text.to_owned();
            for step in case.steps(text, i) {
                let change = json!({"range": {"start": position(&current, step.start), "end": position(&current, step.end)}, "text": step.text});
                current.replace_range(step.start..step.end, &step.text);
                version += 1;
                let sent = Instant::now();
                client.notify(
                    "textDocument/didChange",
                    json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}),
                );
                let id = client.send_request(
                    "textDocument/completion",
                    json!({"textDocument": {"uri": uri}, "position": position(&current, step.cursor)}),
                );
                // The answer and the diagnostics, in whichever order they come.
                let (mut answered, mut published) =
                    (None, if server.publishes { None } else { Some(sent) });
                while answered.is_none() || published.is_none() {
                    let Some((at, message)) = client.try_wait_for_timed(|m| {
                        is_response(m, id)
                            || diagnostics_for(m, &uri, version)
                            || whole_file.waits_for(m)
                    }) else {
                        // A server that crashed (nil overflows its stack on some broken
                        // texts) is reported as such, and the run goes on without it.
                        println!(
                            "    {:<30} {} stopped answering (no answer within 30 s); peak memory before {:.1} MiB",
                            case.name(),
                            server.name,
                            peak as f64 / 1024.0
                        );
                        return;
                    };
                    if is_response(&message, id) {
                        assert!(message.get("error").is_none(), "{message}");
                        answered = Some(at);
                    } else if !whole_file.answered(&message, at) {
                        published = Some(at);
                    }
                }
                client.forget_transcript();
                completion.push(answered.unwrap() - sent);
                if server.publishes {
                    diagnostics.push(published.unwrap() - sent);
                }
                if around.whole_file_requests {
                    let params = json!({"textDocument": {"uri": uri}});
                    whole_file
                        .in_flight
                        .extend(WHOLE_FILE_REQUESTS.iter().map(|method| {
                            (client.send_request(method, params.clone()), Instant::now())
                        }));
                }
            }
            assert_eq!(current, text, "each sequence of {case:?} restores the text");
        }
        // The last keystroke's, in whichever order they come.
        while !whole_file.in_flight.is_empty() {
            let Some((at, message)) = client.try_wait_for_timed(|m| whole_file.waits_for(m)) else {
                println!(
                    "    {:<30} {} did not answer the outline, folding or semantic tokens within 30 s",
                    case.name(),
                    server.name
                );
                return;
            };
            whole_file.answered(&message, at);
        }
        let cpu = (cpu_time(client.pid()) - cpu_before) / completion.len() as u32;
        let diagnostics = if server.publishes {
            format!(
                "p50 {} p99 {}",
                ms(percentile(&mut diagnostics, 0.5)),
                ms(percentile(&mut diagnostics, 0.99))
            )
        } else {
            "not published per version".to_owned()
        };
        println!(
            "    {:<30} completion p50 {} p99 {} | diagnostics {diagnostics} | CPU per keystroke {} | {} keystrokes",
            case.name(),
            ms(percentile(&mut completion, 0.5)),
            ms(percentile(&mut completion, 0.99)),
            ms(cpu),
            completion.len(),
        );
        if !whole_file.latencies.is_empty() {
            println!(
                "    {:<30} outline, folding, semantic tokens: {} answered, {} content modified, {} not known, p50 {} p99 {}",
                "",
                whole_file.latencies.len(),
                whole_file.overtaken,
                whole_file.unknown,
                ms(percentile(&mut whole_file.latencies, 0.5)),
                ms(percentile(&mut whole_file.latencies, 0.99)),
            );
        }
        peak = peak.max(memory_kib(client.pid(), "VmHWM"));
    }
    println!(
        "    memory after typing {:.1} MiB | peak {:.1} MiB",
        memory_kib(client.pid(), "VmRSS") as f64 / 1024.0,
        peak as f64 / 1024.0
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
    let needle = "'' + resources.r1000.";
    let position = position(text, text.find(needle).unwrap() + needle.len());
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
    println!(
        "nixops4-lsp during an apply of 2000 resources ({:.1} s): completion p50 {} p99 {} over {} requests | idle p50 {} p99 {}",
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
    let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let sizes: Vec<usize> = variable("NIXOPS4_BENCH_SIZES")
        .unwrap_or_else(|| "2000,10000".to_owned())
        .split(',')
        .map(|s| s.trim().parse().expect("NIXOPS4_BENCH_SIZES: numbers"))
        .collect();
    let rounds: usize = variable("NIXOPS4_BENCH_ROUNDS")
        .map_or(200, |r| r.parse().expect("NIXOPS4_BENCH_ROUNDS: a number"));
    let mut servers = vec![Server {
        name: "nixops4-lsp",
        program: nixops4_tests::binary("nixops4-lsp"),
        publishes: true,
    }];
    if let Some(baseline) = variable("NIXOPS4_BENCH_BASELINE") {
        servers.push(Server {
            name: "baseline nixops4-lsp",
            program: baseline.into(),
            publishes: true,
        });
    }
    if let Some(nil) = variable("NIXOPS4_BENCH_NIL") {
        servers.push(Server {
            name: "nil",
            program: nil.into(),
            publishes: false,
        });
    }
    for &size in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let text = deployment(size);
        std::fs::write(dir.path().join("flake.nix"), &text).unwrap();
        println!(
            "deployment: {size} resources, {} lines, {} KiB; {rounds} keystrokes a case",
            text.lines().count(),
            text.len() / 1024
        );
        for server in &servers {
            let with_others = Around {
                others: OTHER_FILES,
                ..Around::default()
            };
            let with_requests = Around {
                whole_file_requests: true,
                ..Around::default()
            };
            for (cases, around) in [
                (&Case::ALL[..], Around::default()),
                (&[Case::InputName], with_others),
                (&[Case::InputName], with_requests),
            ] {
                run(server, dir.path(), &text, cases, around, rounds);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let text = deployment(2_000);
    std::fs::write(dir.path().join("flake.nix"), &text).unwrap();
    during_apply(dir.path(), &text);
}
