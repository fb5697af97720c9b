//! A test module's scratch root, where narscope's and Nix's settings live (one per module, so
//! that modules running at once never share key files), and the commands run under it.

use std::path::PathBuf;
use std::process::Command;

/// A module's scratch root.
pub struct Scratch {
    /// The directory (removed when the test binary ends).
    pub root: tempfile::TempDir,
}

impl Scratch {
    /// A fresh scratch root.
    pub fn new() -> Scratch {
        Scratch {
            root: tempfile::tempdir().unwrap(),
        }
    }
}

/// A Nix command under this root ([`super::nix::nix`]).
pub fn nix(program: &str, e: &Scratch) -> Command {
    super::nix::nix(program, e.root.path())
}

/// narscope under this root ([`super::cmd::narscope`]).
pub fn narscope(e: &Scratch, args: &[&str]) -> Command {
    super::cmd::narscope(args, e.root.path())
}

/// A fresh key pair `name` made by `narscope keygen` in this root: the secret key file and
/// the public key text.
pub fn keygen(e: &Scratch, name: &str) -> (PathBuf, String) {
    super::nix::keygen_in(e.root.path(), name, |args| {
        super::cmd::ok(narscope(e, args));
    })
}
