//! `nixops4-eval`: evaluates deployments for the engine, in a process of its own so that
//! a Nix crash or out-of-memory cannot take the engine down.
//!
//! Requests arrive as JSON lines on stdin and are handled one at a time, except builds,
//! which run beside them on threads of their own (`nix build` children); a
//! `{"cancel": N}` line stops request N while it runs. Replies and log lines go to stdout. Nix is found
//! as `nix` on `PATH` unless `NIXOPS4_NIX` names another command (program and leading
//! arguments, separated by spaces). `NIXOPS4_EVAL_TIMEOUT` bounds one evaluation step, in
//! seconds (default 600).

#![deny(clippy::print_stdout)]

mod build;
mod nix_error;
mod repl;
mod session;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nixops4_eval::protocol::*;
use serde::Deserialize;

/// What arrives on stdin: a request, or the cancellation of one.
#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    Request(RequestEnvelope),
    Cancel { cancel: u64 },
}

/// No request is running.
const IDLE: u64 = u64::MAX;

fn main() -> std::process::ExitCode {
    let nix_command: Vec<String> = std::env::var("NIXOPS4_NIX")
        .unwrap_or_else(|_| "nix".to_owned())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let timeout = std::env::var("NIXOPS4_EVAL_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(600));
    let mut session = match session::Session::new(nix_command.clone(), timeout) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("nixops4-eval: cannot create a session directory: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };

    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let send = {
        let stdout = stdout.clone();
        move |line: &ResponseLine| {
            let mut text = serde_json::to_string(line).expect("responses are plain JSON");
            text.push('\n');
            let mut out = stdout.lock().unwrap_or_else(|e| e.into_inner());
            // A closed stdout means the engine is gone; the loop ends with stdin.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
    };

    // Requests are read on their own thread so that a cancellation can arrive while a
    // request runs.
    let running = Arc::new(AtomicU64::new(IDLE));
    let cancelled = Arc::new(AtomicU64::new(IDLE));
    // Requests cancelled before their turn came.
    let cancelled_early: Arc<Mutex<HashSet<u64>>> = Arc::default();
    // Builds that run, by request id, with the flag that stops each.
    let builds: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>> = Arc::default();
    let (requests, queue) = channel();
    {
        let (running, cancelled, send) = (running.clone(), cancelled.clone(), send.clone());
        let (cancelled_early, builds) = (cancelled_early.clone(), builds.clone());
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Incoming>(&line) {
                    Ok(Incoming::Request(envelope)) => {
                        if requests.send(envelope).is_err() {
                            break;
                        }
                    }
                    Ok(Incoming::Cancel { cancel }) => {
                        let build = builds
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(&cancel)
                            .cloned();
                        if let Some(stop) = build {
                            stop.store(true, Ordering::SeqCst);
                        } else if running.load(Ordering::SeqCst) == cancel {
                            cancelled.store(cancel, Ordering::SeqCst);
                        } else {
                            cancelled_early
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(cancel);
                        }
                    }
                    Err(e) => send(&ResponseLine::Log {
                        log: LogLine {
                            level: LogLevel::Warning,
                            message: format!(
                                "nixops4-eval: ignoring a malformed request ({e}): {line}"
                            ),
                        },
                    }),
                }
            }
        });
    }

    let mut build_threads = Vec::new();
    let was_cancelled_early = |id: u64| {
        cancelled_early
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    };
    for RequestEnvelope { id, request } in queue {
        if was_cancelled_early(id) {
            let error = EvalError {
                kind: EvalErrorKind::Request,
                message: "cancelled before it started".into(),
                position: None,
            };
            send(&ResponseLine::Error { id, error });
            continue;
        }
        if let Request::Build { derivations } = request {
            let stop = Arc::new(AtomicBool::new(false));
            builds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, stop.clone());
            // A cancellation read before the flag was registered.
            if was_cancelled_early(id) {
                stop.store(true, Ordering::SeqCst);
            }
            let (nix_command, dir) = (nix_command.clone(), session.dir().to_owned());
            let (send, builds) = (send.clone(), builds.clone());
            build_threads.push(std::thread::spawn(move || {
                let mut progress = |build| send(&ResponseLine::Build { id, build });
                let cancelled = || stop.load(Ordering::SeqCst);
                let reply = match build::build(
                    &nix_command,
                    &dir,
                    id,
                    &derivations,
                    &cancelled,
                    &mut progress,
                ) {
                    Ok(results) => ResponseLine::Result {
                        id,
                        result: Response::Built { results },
                    },
                    Err(error) => ResponseLine::Error { id, error },
                };
                builds.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                send(&reply);
            }));
            continue;
        }
        running.store(id, Ordering::SeqCst);
        let is_cancelled = || cancelled.load(Ordering::SeqCst) == id;
        let mut log = |log: LogLine| send(&ResponseLine::Log { log });
        let reply = match session.handle(request, &is_cancelled, &mut log) {
            Ok(result) => ResponseLine::Result { id, result },
            Err(error) => ResponseLine::Error { id, error },
        };
        running.store(IDLE, Ordering::SeqCst);
        send(&reply);
    }
    // The engine is gone: stop the builds that still run, so no `nix build` outlives us.
    for stop in builds.lock().unwrap_or_else(|e| e.into_inner()).values() {
        stop.store(true, Ordering::SeqCst);
    }
    for thread in build_threads {
        let _ = thread.join();
    }
    std::process::ExitCode::SUCCESS
}
