//! Real Nix 2.8 in the tests: one set of Nix settings, one way to start a Nix command, and
//! one answer to "are the Nix tests wanted here?".

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::cmd::{ok, output_within};

/// Nix settings for every Nix command of the tests (and for the Nix that narscope starts):
/// the `nix` command on, no substituters (nothing from the network), no sandbox (Debian's
/// single-user Nix runs without one), signatures required (Nix's default, stated so that no
/// test depends on the machine), and no narinfo caching, so that a cache changed by a test is
/// read again by the next Nix command.
pub const NIX_CONFIG: &str = "experimental-features = nix-command\nsubstituters =\nsandbox = false\nrequire-sigs = true\nnarinfo-cache-negative-ttl = 0\nnarinfo-cache-positive-ttl = 0\n";

/// A Nix command on the local store (no daemon) with the tests' settings: nix.conf from the
/// empty `root/nix-conf` (the machine's nix.conf does not reach it), [`NIX_CONFIG`], and its
/// narinfo cache in `root/xdg`.
pub fn nix(program: &str, root: &Path) -> Command {
    let mut c = Command::new(program);
    nix_settings(&mut c, root);
    c
}

/// Gives `c` the tests' Nix settings under `root` (see [`nix`]); narscope gets them too, for
/// the Nix it starts and the nix.conf it reads.
pub fn nix_settings(c: &mut Command, root: &Path) {
    let conf = nix_conf_dir(root);
    c.env("NIX_REMOTE", "")
        .env("NIX_CONF_DIR", &conf)
        .env("NIX_USER_CONF_FILES", conf.join("nix.conf"))
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("XDG_CACHE_HOME", root.join("xdg"))
        .env_remove("NIX_PATH")
        .env_remove("NIX_STORE_DIR");
}

/// `root/nix-conf`, created with an empty `nix.conf`: the only nix.conf a test's Nix or
/// narscope reads.
pub fn nix_conf_dir(root: &Path) -> PathBuf {
    let conf = root.join("nix-conf");
    std::fs::create_dir_all(&conf).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
    let file = conf.join("nix.conf");
    if !file.exists() {
        std::fs::write(&file, "").unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    conf
}

/// True when the Nix tests should be skipped (`NARSCOPE_SKIP_NIX=1`; the caller returns
/// early). Otherwise real Nix 2.x must be installed: panics with install advice when
/// `nix --version` fails (checked once per run).
pub fn skip_nix() -> bool {
    if std::env::var("NARSCOPE_SKIP_NIX").is_ok_and(|v| v == "1") {
        eprintln!("NARSCOPE_SKIP_NIX=1: skipping a Nix test");
        return true;
    }
    static PRESENT: OnceLock<Result<(), String>> = OnceLock::new();
    let present = PRESENT.get_or_init(|| {
        let mut c = Command::new("nix");
        c.arg("--version").stdin(std::process::Stdio::null());
        match output_within(&mut c, std::time::Duration::from_secs(30)) {
            Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("2.") => {
                Ok(())
            }
            Ok(o) => Err(format!(
                "unexpected `nix --version`: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(e),
        }
    });
    if let Err(e) = present {
        panic!(
            "real Nix 2.x is required: install Debian's nix-bin (`apt-get install -y nix-bin`), \
             or set NARSCOPE_SKIP_NIX=1 to skip the Nix tests ({e})"
        );
    }
    false
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
/// the arguments it is given (the caller chooses its environment, e.g. Garage credentials).
/// Returns the
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
