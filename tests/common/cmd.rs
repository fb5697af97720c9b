//! Starting narscope the way every test does, and running any command (narscope, Nix, tmux)
//! with a time limit and a readable failure.
//!
//! [`narscope`] isolates the binary from the machine under one directory: its config file,
//! its cache directory, the platform config directory, nix.conf and Nix's own cache all live
//! there, so neither the user's narscope config nor `/etc/nix/nix.conf` reaches a test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::nix::nix_settings;

/// Time limit of one command started by [`run`] or [`ok`]: a command that hangs fails its
/// test instead of stalling the whole run.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(300);

/// The config file `narscope` gives narscope (`NARSCOPE_CONFIG`), created with
/// `use-nix-conf = false` when missing; a test may rewrite it.
pub fn config_file(root: &Path) -> PathBuf {
    root.join("narscope-config.toml")
}

/// narscope's cache directory (`NARSCOPE_CACHE_DIR`: the index, logs) under `root`.
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join("narscope-cache")
}

/// The narscope binary with `args`, isolated under `root` (created if missing):
/// - `NARSCOPE_CONFIG` = [`config_file`] (trusts nothing, reads no nix.conf);
/// - `NARSCOPE_CACHE_DIR` = [`cache_dir`] (index, logs); `NARSCOPE_CONFIG_DIR` and
///   `XDG_CONFIG_HOME` below `root/config`;
/// - the Nix settings Nix itself gets ([`nix_settings`]: an empty `root/nix-conf`, the tests'
///   `NIX_CONFIG`, the local store without a daemon, Nix's cache in `root/xdg`);
/// - no `RUST_LOG` from the caller.
///
/// A test that needs another config sets `NARSCOPE_CONFIG` again (the last `env` wins).
pub fn narscope(args: &[&str], root: &Path) -> Command {
    std::fs::create_dir_all(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let config = config_file(root);
    if !config.exists() {
        std::fs::write(&config, "use-nix-conf = false\n")
            .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_narscope"));
    c.args(args)
        .env("NARSCOPE_CONFIG", &config)
        .env("NARSCOPE_CACHE_DIR", cache_dir(root))
        .env("NARSCOPE_CONFIG_DIR", root.join("config/narscope"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .env_remove("RUST_LOG");
    nix_settings(&mut c, root);
    c
}

/// Runs `c` with stdin closed (within [`CMD_TIMEOUT`]) and returns its output; panics when it
/// cannot start or runs out of time.
pub fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null());
    run_as_set(c)
}

/// Runs `c` as configured (its stdin too: a test may feed it a file) within [`CMD_TIMEOUT`].
pub fn run_as_set(mut c: Command) -> Output {
    output_within(&mut c, CMD_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `c` (see [`run`]), asserts that it succeeded, and returns its stdout without trailing
/// whitespace.
pub fn ok(c: Command) -> String {
    let what = describe(&c);
    let out = run(c);
    assert!(
        out.status.success(),
        "`{what}` failed ({:?}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// A command line for messages (program and arguments, not the environment, which may hold
/// credentials).
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

/// `s` quoted for `sh` (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `c` as one `sh` command line (`env -u … K=V … program args…`), for a terminal (tmux) to
/// run: the environment `c` sets or removes, its program and its arguments (not its stdio).
pub fn shell_line(c: &Command) -> String {
    let (mut unset, mut set) = (Vec::new(), Vec::new());
    for (k, v) in c.get_envs() {
        let k = k.to_string_lossy();
        match v {
            Some(v) => set.push(format!("{k}={}", sh_quote(&v.to_string_lossy()))),
            None => unset.push(format!("-u {k}")),
        }
    }
    let mut line = vec!["env".to_string()];
    line.extend(unset);
    line.extend(set);
    line.push(sh_quote(&c.get_program().to_string_lossy()));
    line.extend(c.get_args().map(|a| sh_quote(&a.to_string_lossy())));
    line.join(" ")
}

/// Runs `cmd` to completion, collecting stdout and stderr; kills it after `timeout`.
///
/// `Err` only when the command could not be started or timed out; a non-zero exit is an
/// `Ok` for the caller to judge. stdin is left as the caller set it.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let what = describe(cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_t = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status: Option<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                // Only this child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for `{what}`: {e}")),
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "`{what}` timed out after {timeout:?}\n--- stderr so far ---\n{}",
            String::from_utf8_lossy(&stderr).trim_end()
        )),
    }
}
