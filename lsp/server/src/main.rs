//! `nixops4-lsp`: the NixOps4 language server over stdio.
//!
//! Serves the static analysis of `nixops4-analysis`: completion, diagnostics with quick
//! fixes, hover (with the values the state recorded), definition, references, rename,
//! symbols, folding and semantic tokens. Plan previews and commands arrive with the next
//! issue. Document edits are applied before any `.await` in their notification handlers,
//! so they are never reordered or lost; requests read a snapshot of a document.

#![deny(clippy::print_stdout)]

mod document;
mod project;
mod server;

use std::process::ExitCode;

use clap::Parser;

/// The syntax trees and indexes are many small allocations, made and freed on every
/// keystroke: mimalloc does that markedly faster than the system allocator here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The NixOps4 language server. Editors start it and speak LSP over stdin and stdout.
#[derive(Parser)]
#[command(name = "nixops4-lsp", version)]
struct Arguments {
    /// Speak LSP over stdin and stdout (the default; accepted for editors that pass it).
    #[arg(long)]
    stdio: bool,
    /// Trust the workspace: ask the providers it declares for their schemas and read state
    /// outside it. A client's `initializationOptions.trusted` takes precedence.
    #[arg(long)]
    trust_workspace: bool,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
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
    runtime.block_on(server::serve(server::Options {
        trust_workspace: arguments.trust_workspace,
    }));
    ExitCode::SUCCESS
}
