//! `nixops4-lsp`: the NixOps4 language server over stdio.
//!
//! Serves the static analysis of `nixops4-analysis` (completion, diagnostics with quick
//! fixes, hover with the values the state recorded, definition, references, rename,
//! symbols, folding, semantic tokens) and, in trusted workspaces, plan lenses and commands
//! that apply, destroy, refresh and run operations. `--apply` runs that apply without an
//! editor. The main loop applies document edits before it reads the next message, so they
//! are never reordered or lost; requests read a snapshot of the documents.

#![deny(clippy::print_stdout)]
// `Uri` (the documents' key) caches its parse; its hash and equality never change.
#![allow(clippy::mutable_key_type)]

mod client;
mod diagnostics;
mod document;
mod from_proto;
mod handlers;
mod headless;
mod jobs;
mod line_index;
mod lsp_ext;
mod memory;
mod project;
mod render;
mod router;
mod runner;
mod server;
mod snapshot;
mod state;
mod to_proto;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The NixOps4 language server. Editors start it and speak LSP over stdin and stdout;
/// CI runs the editor's apply with `--apply`.
#[derive(Parser)]
#[command(name = "nixops4-lsp", version)]
struct Arguments {
    /// Speak LSP over stdin and stdout (the default; accepted for editors that pass it).
    #[arg(long, conflicts_with = "apply")]
    stdio: bool,
    /// Trust the workspace: plan, apply and run operations, ask the providers it declares
    /// for their schemas, read state outside it. A client's
    /// `initializationOptions.trusted` takes precedence.
    #[arg(long)]
    trust_workspace: bool,
    /// Without an editor: plan and apply the deployment as the editor's apply command
    /// does, printing the plan and the progress; exit 0 on success, 1 on failure.
    #[arg(long)]
    apply: bool,
    /// The flake's directory.
    #[arg(long, default_value = ".", requires = "apply")]
    flake: PathBuf,
    /// The deployment to apply.
    #[arg(long, short = 'd', default_value = "default", requires = "apply")]
    deployment: String,
    /// Apply only this resource and what it depends on (repeatable).
    #[arg(long, value_name = "RESOURCE", requires = "apply")]
    target: Vec<String>,
    /// Apply also when the plan deletes or replaces resources.
    #[arg(long, requires = "apply")]
    yes: bool,
    /// Only print the plan; exit 2 when it has changes, 0 when it has none.
    #[arg(long, requires = "apply")]
    plan_only: bool,
    /// How many provider calls may run at once.
    #[arg(long, default_value_t = 10, requires = "apply")]
    parallelism: usize,
    /// Print JSON lines: `{"plan": ...}`, `{"event": ...}`, `{"report": ...}`, `{"error": ...}`.
    #[arg(long, requires = "apply")]
    json: bool,
}

fn main() -> ExitCode {
    memory::without_huge_pages();
    let arguments = Arguments::parse();
    // One thread: the main loop and every request and job; blocking work (reading the
    // workspace's files) goes to tokio's blocking threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nixops4-lsp: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if arguments.apply {
        return runtime.block_on(headless::run(headless::Options {
            flake: arguments.flake,
            deployment: arguments.deployment,
            targets: arguments.target,
            yes: arguments.yes,
            plan_only: arguments.plan_only,
            json: arguments.json,
            parallelism: arguments.parallelism,
        }));
    }
    let code = runtime.block_on(server::serve(state::Options {
        trust_workspace: arguments.trust_workspace,
    }));
    // Tasks still running (a request the client did not wait for) end with the process.
    runtime.shutdown_background();
    code
}
