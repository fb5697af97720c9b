//! The `narscope` binary: parse the command line, set up logging, run, exit with its code.

use clap::Parser;
use narscope::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    // The dashboard owns the terminal: its logs go to a file.
    let tui = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && match &cli.command {
            None => true,
            Some(Command::Demo(demo)) => !demo.no_tui,
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

/// Logs go to stderr, warnings by default (-v/-vv or RUST_LOG raise the level), without colour
/// codes unless stderr is a terminal; narscope's own debug details also go to the log file
/// (`narscope::config::paths::log_path()`), where a failure's full cause chain can be read.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // The SDK's own log lines are Debug dumps of what narscope reports in words: they go to
    // the log file only, unless -v asks for them.
    let default = match verbose {
        0 => "warn,aws_smithy_runtime=off,aws_smithy_runtime_api=off,aws_sdk_s3=off,aws_config=off",
        1 => "info,aws=warn,hyper=warn",
        _ => "debug,aws_smithy_runtime=info,hyper=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    let file = log_file().map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_filter(EnvFilter::new("warn,narscope=debug"))
    });
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .init();
}

/// The log file, opened for appending (`None` when it cannot be).
fn log_file() -> Option<std::fs::File> {
    let path = narscope::config::paths::log_path()?;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()
}

/// Logs of the dashboard: info by default, to `narscope::config::paths::log_path()`. If the file cannot
/// be opened, nothing is logged (the terminal must stay clean).
fn init_file_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let Some(file) = log_file() else {
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
