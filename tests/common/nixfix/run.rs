//! Running external commands (Nix, narscope, aws) with a time limit and readable failures.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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

/// Render a command line for messages (program and arguments, not the environment).
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.contains([' ', '\n', '&', '?']) || a.is_empty() {
            s.push('\'');
            s.push_str(&a);
            s.push('\'');
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// Run `cmd` to completion with stdin closed; kill it after `timeout`.
///
/// Returns `Err` only when the command could not be started or timed out; a non-zero exit
/// is an `Ok(Output)` for the caller to judge.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_t = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let err_t = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if Instant::now() >= deadline => {
                // Only this child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                break Err(());
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for `{what}`: {e}")),
        }
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    match status {
        Ok(st) => Ok(Output {
            what,
            code: st.code(),
            stdout,
            stderr,
        }),
        Err(()) => Err(format!(
            "`{what}` timed out after {timeout:?}\n--- stderr so far ---\n{}",
            stderr.trim_end()
        )),
    }
}
