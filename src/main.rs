//! The `narscope` binary: parse the command line, set up logging, run, exit with its code.

use clap::Parser;
use narscope::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    // The dashboard owns the terminal: its logs go to a file.
    let tui = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && match &cli.command {
            None => true,
            Some(Command::Demo { no_tui, .. }) => !no_tui,
            Some(_) => false,
        };
    if tui {
        init_file_logging(cli.verbose);
    } else {
        init_logging(cli.verbose);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(cli::EXIT_ERROR);
        }
    };
    let code = match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            cli::EXIT_ERROR
        }
    };
    // Don't wait for idle connections or blocking reads to wind down.
    runtime.shutdown_background();
    std::process::exit(code);
}

/// Logs go to stderr, warnings by default; -v/-vv or RUST_LOG raise the level.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,aws=warn,hyper=warn",
        _ => "debug,aws_smithy_runtime=info,hyper=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Logs of the dashboard: info by default, to `narscope::tui::log_path()`. If the file cannot
/// be opened, nothing is logged (the terminal must stay clean).
fn init_file_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let Some(path) = narscope::tui::log_path() else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let default = match verbose {
        0 => "info,aws=warn,hyper=warn,aws_smithy_runtime=warn",
        _ => "debug,aws_smithy_runtime=info,hyper=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .init();
}
