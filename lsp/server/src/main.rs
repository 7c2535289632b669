//! `nixops4-lsp`: the NixOps4 language server over stdio.
//!
//! Today it serves the static analysis of `nixops4-analysis` (completion and diagnostics);
//! plan previews, commands and trust handling arrive with the next issues. Document edits
//! are applied before any `.await` in their notification handlers, so they are never
//! reordered or lost; requests read a snapshot of the text.

#![deny(clippy::print_stdout)]

mod document;
mod server;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        match arg.as_str() {
            "--version" | "-V" => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stdout(),
                    "nixops4-lsp {}",
                    env!("CARGO_PKG_VERSION")
                );
                return ExitCode::SUCCESS;
            }
            "--stdio" => {}
            other => {
                eprintln!(
                    "nixops4-lsp: unknown argument `{other}` (it takes --stdio or --version)"
                );
                return ExitCode::from(2);
            }
        }
    }
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
    runtime.block_on(server::serve());
    ExitCode::SUCCESS
}
