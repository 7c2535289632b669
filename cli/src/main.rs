//! `nixops4`: plan, apply, destroy and operate deployments from a terminal.
//!
//! Argument parsing and rendering only; the work is `nixops4-core`'s. Each subcommand
//! lives in `commands/`, output formatting in `render.rs`.

mod commands;
mod render;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use nixops4_core::engine::{Engine, EngineOptions};
use nixops4_core::error::{EngineError, EngineErrorKind};
use nixops4_core::events::EventSink;

#[derive(Parser)]
#[command(
    name = "nixops4",
    version,
    about = "Deploy what a Nix expression declares."
)]
pub struct Cli {
    /// The flake's directory.
    #[arg(long, global = true, default_value = ".")]
    flake: PathBuf,
    /// The deployment: `nixops4Deployments.<name>` of the flake.
    #[arg(short, long, global = true, default_value = "default")]
    deployment: String,
    /// The state file [default: <flake>/.nixops4/<deployment>.state.jsonl].
    #[arg(long, global = true)]
    state_file: Option<PathBuf>,
    /// How many provider calls may run at once.
    #[arg(long, global = true, default_value_t = 10)]
    parallelism: usize,
    /// Seconds a provider may take for one request.
    #[arg(long, global = true, default_value_t = 600)]
    provider_timeout: u64,
    /// How progress is reported.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// List the flake's deployments.
    Deployments,
    /// List the deployment's resources.
    Resources,
    /// Show what `apply` would do.
    Plan(commands::plan::Args),
    /// Create, update and delete resources to match the deployment.
    Apply(commands::apply::Args),
    /// Delete the deployment's resources (or some of them).
    Destroy(commands::destroy::Args),
    /// Read every recorded resource back and record what changed outside NixOps4.
    Refresh,
    /// Run a custom operation of a resource (`nixops4 run files.site backup`).
    Run(commands::run::Args),
    /// Print one of the deployment's `outputs`.
    Output(commands::output::Args),
    /// Run a script with the outputs it declares (`nixops4 script backup --full`)
    Script(commands::script::Args),
    /// Inspect and repair the state.
    #[command(subcommand)]
    State(commands::state::Command),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What every command needs: options, terminal facts, and a way to start the engine.
pub struct Context {
    pub cli: Cli,
    pub colour: bool,
    pub interactive: bool,
    pub interrupt: Arc<AtomicBool>,
}

impl Context {
    pub async fn engine(&self, events: EventSink) -> Result<Engine, EngineError> {
        let mut options = EngineOptions::new(&self.cli.flake, &self.cli.deployment);
        options.state_file = self.cli.state_file.clone();
        options.parallelism = self.cli.parallelism;
        options.provider_timeout = Duration::from_secs(self.cli.provider_timeout);
        options.events = events;
        options.interrupt = self.interrupt.clone();
        let engine = Engine::start(options).await?;
        if let Some(change) = engine.lock_file_change() {
            eprintln!("note: {change}");
        }
        Ok(engine)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let colour = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let context = Context {
        colour,
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        interrupt: Arc::default(),
        cli,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nixops4: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let interrupt = context.interrupt.clone();
        // A script gets Ctrl-C itself (it is in the terminal's foreground group) and says
        // by its exit status what became of it.
        let script = matches!(context.cli.command, Command::Script(_));
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if script {
                    continue;
                }
                if interrupt.swap(true, Ordering::SeqCst) {
                    eprintln!("nixops4: interrupted twice; stopping now");
                    std::process::exit(130);
                }
                eprintln!("nixops4: interrupted; finishing the provider calls that are running (Ctrl-C again to stop at once)");
            }
        });
        match run(&context).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("{}", render::error(&error, context.colour));
                ExitCode::from(match error.kind {
                    EngineErrorKind::Usage => 2,
                    _ => 1,
                })
            }
        }
    })
}

async fn run(context: &Context) -> Result<ExitCode, EngineError> {
    match &context.cli.command {
        Command::Deployments => commands::list::deployments(context).await,
        Command::Resources => commands::list::resources(context).await,
        Command::Plan(args) => commands::plan::run(context, args).await,
        Command::Apply(args) => commands::apply::run(context, args).await,
        Command::Destroy(args) => commands::destroy::run(context, args).await,
        Command::Refresh => commands::refresh::run(context).await,
        Command::Run(args) => commands::run::run(context, args).await,
        Command::Output(args) => commands::output::run(context, args).await,
        Command::Script(args) => commands::script::run(context, args).await,
        Command::State(command) => commands::state::run(context, command).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "nixops4", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
