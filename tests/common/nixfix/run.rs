//! Nix and narscope commands for the fixture: [`run`] with a time limit and an [`Output`] of
//! text, whose failures name the command and show its output.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::super::cmd::{describe, output_within};

/// Time limit for one Nix or narscope command.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(90);

/// What a finished command produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub what: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// The exit code, with `-1` standing for "killed by a signal".
    pub fn rc(&self) -> i32 {
        self.code.unwrap_or(-1)
    }

    /// `Ok(self)` when the command exited 0, else an error naming the command and its stderr.
    pub fn ok(self) -> Result<Output, String> {
        if self.code == Some(0) {
            Ok(self)
        } else {
            Err(self.failure("failed"))
        }
    }

    /// A message naming the command, its exit code and its output.
    pub fn failure(&self, why: &str) -> String {
        format!(
            "`{}` {why} (exit {:?})\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.what,
            self.code,
            self.stderr.trim_end(),
            truncate(&self.stdout, 4000)
        )
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Runs `cmd` to completion with stdin closed; kills it after `timeout`
/// ([`crate::common::cmd::output_within`]).
///
/// Returns `Err` only when the command could not be started or timed out; a non-zero exit
/// is an `Ok(Output)` for the caller to judge.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = describe(cmd);
    let out = output_within(cmd.stdin(Stdio::null()), timeout)?;
    Ok(Output {
        what,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
