//! `narscope completions SHELL`: a shell completion script, generated from the clap
//! definitions, so it knows every subcommand and flag of this very binary.

use std::io::Write;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// Print a shell completion script for bash, zsh, fish, elvish or PowerShell.
///
/// The script is generated from narscope's own command line definitions. Install it where
/// the shell looks: bash `narscope completions bash >
/// ~/.local/share/bash-completion/completions/narscope`; zsh `narscope completions zsh >
/// ~/.zfunc/_narscope` (with ~/.zfunc on $fpath); fish `narscope completions fish >
/// ~/.config/fish/completions/narscope.fish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// Print the script for `args.shell` of the command line `cli` to stdout.
pub fn run(args: Args, cli: clap::Command) -> Result<i32> {
    let script = script(args.shell, cli);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("cannot write the completion script to standard output")?;
    Ok(0)
}

/// The completion script of `cli` for `shell`, completing the command `narscope`.
pub fn script(shell: Shell, mut cli: clap::Command) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cli, "narscope", &mut buf);
    buf
}
