//! Running the narscope binary the way the integration tests do: its own state directory,
//! the local Nix store without a daemon, and a Nix configuration that reaches nothing.

use std::path::Path;
use std::process::{Command, Output};

/// The narscope binary with `args`, keeping its state (index, logs) in `state`.
pub fn narscope(args: &[&str], state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_narscope"));
    c.args(args)
        .env("NARSCOPE_CACHE_DIR", state)
        .env("NIX_REMOTE", "")
        .env("NIX_CONFIG", NIX_CONFIG);
    c
}

/// Nix settings for the tests: no substituters, no sandbox, no narinfo caching.
pub const NIX_CONFIG: &str = "experimental-features = nix-command\nsubstituters =\nsandbox = false\nnarinfo-cache-negative-ttl = 0\nnarinfo-cache-positive-ttl = 0\n";

/// Runs `c`, asserts that it succeeded, and returns its stdout.
pub fn ok(mut c: Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `c` and returns its output.
pub fn run(mut c: Command) -> Output {
    c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"))
}

/// A Nix command on the local store (no daemon), with an empty configuration of its own
/// under `root` (the machine's nix.conf does not reach it) and its own narinfo cache.
pub fn nix(program: &str, root: &Path) -> Command {
    let conf = root.join("nix-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let mut c = Command::new(program);
    c.env("NIX_REMOTE", "")
        .env("NIX_CONF_DIR", &conf)
        .env("NIX_USER_CONF_FILES", conf.join("nix.conf"))
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("XDG_CACHE_HOME", root.join("xdg"))
        .env_remove("NIX_PATH");
    c
}

/// A chain of `n` store paths built by real Nix, each referencing the one before and holding
/// `kib` KiB of random bytes; returns them, the first (which references nothing) first.
pub fn nix_chain(root: &Path, tag: &str, n: usize, kib: usize) -> Vec<String> {
    let mut expr = String::from("let\n");
    for i in 0..n {
        let prev = if i == 0 {
            String::new()
        } else {
            format!("echo ${{p{}}} > $out/prev; ", i - 1)
        };
        expr.push_str(&format!(
            "  p{i} = derivation {{ name = \"chain-{tag}-{i}\"; system = builtins.currentSystem; \
             builder = \"/bin/sh\"; args = [ \"-c\" \"/bin/mkdir $out; {prev}/usr/bin/head -c \
             {} /dev/urandom > $out/data\" ]; }};\n",
            kib * 1024
        ));
    }
    expr.push_str("in [ ");
    for i in 0..n {
        expr.push_str(&format!("p{i} "));
    }
    expr.push(']');
    let mut c = nix("nix-build", root);
    c.args(["--no-out-link", "-E", &expr]);
    ok(c).lines().map(str::to_string).collect()
}

/// A fresh key pair `name` made by `narscope keygen` in `dir`: `keygen` runs narscope with
/// the arguments it is given (each test binary has its own environment for it). Returns the
/// secret key file and the public key text.
pub fn keygen_in(
    dir: &Path,
    name: &str,
    keygen: impl FnOnce(&[&str]),
) -> (std::path::PathBuf, String) {
    let sk = dir.join(format!("{name}.sec"));
    let pk = dir.join(format!("{name}.pub"));
    let _ = std::fs::remove_file(&sk);
    let _ = std::fs::remove_file(&pk);
    keygen(&[
        "keygen",
        name,
        "--secret-key-file",
        sk.to_str().unwrap(),
        "--public-key-file",
        pk.to_str().unwrap(),
    ]);
    let public = std::fs::read_to_string(&pk).unwrap().trim().to_string();
    (sk, public)
}

/// Adds the tree `src` to the local store with `nix-store --add`; returns its store path.
pub fn nix_add(root: &Path, src: &Path) -> String {
    let mut c = nix("nix-store", root);
    c.arg("--add").arg(src);
    ok(c).trim().to_string()
}

/// Builds the Nix expression `expr` (one derivation) with `nix-build`; returns its output.
pub fn nix_build(root: &Path, expr: &str) -> String {
    let mut c = nix("nix-build", root);
    c.args(["--no-out-link", "-E", expr]);
    ok(c).trim().to_string()
}
