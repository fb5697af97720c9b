//! `narscope key`: work with key files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::nix::{PublicKey, SecretKey};

/// Work with key files: `narscope key public SECRET-FILE` prints the public key.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: KeyAction,
}

/// `narscope key` actions.
#[derive(Debug, clap::Subcommand)]
pub enum KeyAction {
    /// Print the public key of a secret key file, for trusted-public-keys or --trusted-key
    /// (as `nix key convert-secret-to-public`). The secret itself is never printed.
    Public {
        /// The secret key file (`-` reads standard input).
        #[arg(value_name = "SECRET-FILE")]
        file: PathBuf,
    },
}

/// Run the action.
pub fn run(args: Args) -> Result<i32> {
    match args.action {
        KeyAction::Public { file } => key_public(&file),
    }
}

/// `narscope key public FILE`: print the public key of a secret key file (never the secret).
fn key_public(file: &Path) -> Result<i32> {
    let stdin = file == Path::new("-");
    let what = if stdin {
        "standard input".to_string()
    } else {
        file.display().to_string()
    };
    let text = if stdin {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .with_context(|| format!("cannot read secret key {what}"))?;
    match SecretKey::parse(&text) {
        Ok(sk) => {
            println!("{}", sk.public_key());
            Ok(0)
        }
        Err(e) => {
            if let Ok(pk) = PublicKey::parse(&text) {
                bail!(
                    "{what} holds the public key '{}', not a secret key: it is already what \
                     trusted-public-keys needs",
                    pk.name()
                );
            }
            Err(e).with_context(|| format!("secret key {what}"))
        }
    }
}
