//! Secret keys are never shown: a secret key put everywhere narscope reads a public key (the
//! `--trusted-key` flag, nix.conf in NIX_CONF_DIR and the XDG directories, NIX_CONFIG,
//! narscope's config file, and a malformed file in `secret-key-files`) is refused or skipped
//! with a message naming where it was, and no 12 characters of its base64 reach stdout, stderr
//! or the dashboard's log file, with debug logging too. Also `narscope key public` and
//! `keygen`'s refusal to write both halves to one file.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::common;
use std::time::{Duration, Instant};

/// An isolated environment: its own HOME, XDG directories, NIX_CONF_DIR, narscope config, a
/// demo cache, and a fresh secret key made by `narscope keygen`.
struct World {
    tmp: tempfile::TempDir,
    cache: String,
    secret_file: PathBuf,
    secret: String,
    public: String,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        for d in [
            "home",
            "xdg-config",
            "xdg-dirs",
            "nix-conf-dir",
            "cache-dir",
        ] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        std::fs::write(tmp.path().join("narscope.toml"), "").unwrap();
        let mut w = World {
            cache: tmp.path().join("demo").display().to_string(),
            secret_file: tmp.path().join("cache.sec"),
            tmp,
            secret: String::new(),
            public: String::new(),
        };
        let out = w.run(&["demo", "--no-tui", "--dir", &w.cache.clone()], &[]);
        assert!(out.status.success(), "demo: {}", text(&out));
        let pubf = w.tmp.path().join("cache.pub");
        let out = w.run(
            &[
                "keygen",
                "secret-test-1",
                "--secret-key-file",
                w.secret_file.to_str().unwrap(),
                "--public-key-file",
                pubf.to_str().unwrap(),
            ],
            &[],
        );
        assert!(out.status.success(), "keygen: {}", text(&out));
        w.secret = std::fs::read_to_string(&w.secret_file).unwrap();
        w.public = std::fs::read_to_string(&pubf).unwrap();
        assert_no_secret(&text(&out), &w.secret);
        w
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// Runs narscope with the world's environment plus `env` (a value of "" removes it).
    fn run(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        self.command(args, env).output().expect("run narscope")
    }

    /// [`common::cmd::narscope`], then this world's places where narscope reads keys: unlike
    /// the other tests, narscope reads nix.conf here (the config file is empty).
    fn command(&self, args: &[&str], env: &[(&str, String)]) -> Command {
        let mut c = common::cmd::narscope(args, &self.path("ns"));
        c.env_remove("NIX_CONFIG")
            .env_remove("NIX_USER_CONF_FILES")
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_CONFIG_DIRS", self.path("xdg-dirs"))
            .env("NIX_CONF_DIR", self.path("nix-conf-dir"))
            .env("NARSCOPE_CONFIG", self.path("narscope.toml"))
            .env("NARSCOPE_CACHE_DIR", self.path("cache-dir"))
            .env("NARSCOPE_LOG_FILE", self.path("narscope.log"))
            .stdin(Stdio::null());
        for (k, v) in env {
            if v.is_empty() {
                c.env_remove(k);
            } else {
                c.env(k, v);
            }
        }
        c
    }

    /// Runs `args` quietly and with debug logging (`-vv` and `RUST_LOG=debug`); checks that
    /// neither run shows the secret and returns both outputs (stdout and stderr together).
    fn run_both(&self, args: &[&str], env: &[(&str, String)]) -> [(Option<i32>, String); 2] {
        let quiet = self.run(args, env);
        let mut loud_args = args.to_vec();
        loud_args.push("-vv");
        let mut loud_env = env.to_vec();
        loud_env.push(("RUST_LOG", "debug".into()));
        let loud = self.run(&loud_args, &loud_env);
        let res = [
            (quiet.status.code(), text(&quiet)),
            (loud.status.code(), text(&loud)),
        ];
        for (_, t) in &res {
            assert_no_secret(t, &self.secret);
        }
        if let Ok(log) = std::fs::read_to_string(self.path("narscope.log")) {
            assert_no_secret(&log, &self.secret);
        }
        res
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Fails if `text` holds the base64 of `secret` or any 12 characters of it.
fn assert_no_secret(text: &str, secret: &str) {
    let b64 = secret.trim().split_once(':').unwrap().1;
    assert!(b64.len() >= 80, "not a secret key: {secret}");
    let chars: Vec<char> = b64.chars().collect();
    for w in chars.windows(12) {
        let piece: String = w.iter().collect();
        assert!(
            !text.contains(&piece),
            "secret key material {piece:?} shown in:\n{text}"
        );
    }
}

const ADVICE: &str = "is a secret key (keep it private), not a public key; give its public half \
                      instead: `nix key convert-secret-to-public < FILE` (Nix ≥ 2.8, \
                      experimental nix-command) or `narscope key public FILE`";

#[test]
fn a_secret_key_as_trusted_key_flag_is_refused_by_name() {
    let w = World::new();
    for cmd in ["verify", "ls", "info"] {
        for (code, out) in w.run_both(&[cmd, &w.cache, "--trusted-key", &w.secret], &[]) {
            assert_eq!(code, Some(4), "{out}");
            assert!(
                out.contains(&format!("error: --trusted-key: 'secret-test-1' {ADVICE}")),
                "{out}"
            );
        }
    }
    // Among good keys it is named by its position.
    let [(code, out), _] = w.run_both(
        &[
            "verify",
            &w.cache,
            "--trusted-key",
            &w.public,
            "--trusted-key",
            &w.secret,
        ],
        &[],
    );
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("error: --trusted-key (value 2 of 2): 'secret-test-1' is a secret key"),
        "{out}"
    );
    // A malformed public key is not echoed either.
    let b64 = w.secret.split_once(':').unwrap().1;
    let [(code, out), _] = w.run_both(&["verify", &w.cache, "--trusted-key", b64], &[]);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("error: --trusted-key: public key has no ':' between key name and base64"),
        "{out}"
    );
}

#[test]
fn a_secret_key_in_nix_conf_or_nix_config_is_skipped_with_a_warning_naming_the_place() {
    let w = World::new();
    let cases: Vec<(PathBuf, String, &str)> = vec![
        (
            w.path("nix-conf-dir/nix.conf"),
            format!(
                "# system\ntrusted-public-keys = {} {}\n",
                w.public, w.secret
            ),
            "line 2: ignoring a key in trusted-public-keys",
        ),
        (
            w.path("xdg-config/nix/nix.conf"),
            format!("extra-trusted-public-keys = {}\n", w.secret),
            "line 1: ignoring a key in extra-trusted-public-keys",
        ),
        (
            w.path("xdg-dirs/nix/nix.conf"),
            format!("\n\nextra-trusted-public-keys = {}\n", w.secret),
            "line 3: ignoring a key in extra-trusted-public-keys",
        ),
    ];
    for (file, body, what) in &cases {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, body).unwrap();
        for (code, out) in w.run_both(&["verify", &w.cache], &[]) {
            assert_eq!(code, Some(2), "untrusted paths, not an error: {out}");
            let warning = format!("{} {what}: 'secret-test-1' {ADVICE}", file.display());
            assert!(out.contains(&warning), "want {warning}\nin:\n{out}");
        }
        std::fs::remove_file(file).unwrap();
    }
    let env = [(
        "NIX_CONFIG",
        format!("substituters = \ntrusted-public-keys = {}\n", w.secret),
    )];
    for (code, out) in w.run_both(&["ls", &w.cache], &env) {
        assert_eq!(code, Some(0), "{out}");
        assert!(
            out.contains(&format!(
                "NIX_CONFIG line 2: ignoring a key in trusted-public-keys: 'secret-test-1' {ADVICE}"
            )),
            "{out}"
        );
    }
}

#[test]
fn a_secret_key_in_narscopes_config_is_refused_by_file_and_setting() {
    let w = World::new();
    let cfg = w.path("narscope.toml");
    std::fs::write(
        &cfg,
        format!(
            "use-nix-conf = false\n[caches.demo]\nurl = \"{}\"\ntrusted-keys = [\"{}\"]\n",
            w.cache, w.secret
        ),
    )
    .unwrap();
    for (code, out) in w.run_both(&["verify", "demo"], &[]) {
        assert_eq!(code, Some(4), "{out}");
        let want = format!(
            "error: {}: [caches.demo] trusted-keys: 'secret-test-1' {ADVICE}",
            cfg.display()
        );
        assert!(out.contains(&want), "want {want}\nin:\n{out}");
    }
    std::fs::write(
        &cfg,
        format!("trusted-keys = [\"{}\", \"{}\"]\n", w.public, w.secret),
    )
    .unwrap();
    for (code, out) in w.run_both(&["ls", &w.cache], &[]) {
        assert_eq!(code, Some(4), "{out}");
        assert!(
            out.contains("trusted-keys (value 2 of 2): 'secret-test-1' is a secret key"),
            "{out}"
        );
    }
    // The wrong shape of setting: a TOML type error, without the value.
    std::fs::write(&cfg, format!("trusted-keys = \"{}\"\n", w.secret)).unwrap();
    for (code, out) in w.run_both(&["ls", &w.cache], &[]) {
        assert_eq!(code, Some(4), "{out}");
        assert!(
            out.contains(&format!(
                "error: config {}: line 1: invalid type: string",
                cfg.display()
            )),
            "{out}"
        );
    }
}

#[test]
fn unusable_secret_key_files_are_warned_about_by_file_not_contents() {
    let w = World::new();
    // The secret key with its public half damaged: the seed is intact in the file.
    let (name, b64) = w.secret.split_once(':').unwrap();
    let mut bytes = narscope::nix::hash::base64_decode(b64).unwrap();
    bytes[63] ^= 1;
    let damaged = narscope::nix::hash::base64_encode(&bytes);
    let bad = w.path("bad.sec");
    std::fs::write(&bad, format!("{name}:{damaged}")).unwrap();
    let missing = w.path("missing.sec");
    let conf = w.path("nix-conf-dir/nix.conf");
    std::fs::write(
        &conf,
        format!(
            "secret-key-files = {} {}\nextra-secret-key-files = {}\n",
            bad.display(),
            missing.display(),
            w.secret_file.display()
        ),
    )
    .unwrap();
    let secret_of_bad = format!("{name}:{damaged}");
    for (code, out) in w.run_both(&["verify", &w.cache], &[]) {
        assert_no_secret(&out, &secret_of_bad);
        assert_eq!(code, Some(2), "{out}");
        let want = format!(
            "{} line 1: secret-key-files {}: it does not hold a valid secret key: secret key \
             'secret-test-1' is not valid: its public half does not match its seed; its public \
             key is not trusted",
            conf.display(),
            bad.display()
        );
        assert!(out.contains(&want), "want {want}\nin:\n{out}");
        let want = format!(
            "{} line 1: secret-key-files {}: cannot read it: No such file or directory",
            conf.display(),
            missing.display()
        );
        assert!(out.contains(&want), "want {want}\nin:\n{out}");
    }
    // The good file in the same nix.conf is trusted: its public key is used and named.
    let [_, (_, out)] = w.run_both(&["ls", &w.cache], &[]);
    assert!(
        out.contains(&format!(
            "trusting {} (from {} line 2 (secret-key-files {}))",
            w.public,
            conf.display(),
            w.secret_file.display()
        )),
        "{out}"
    );
}

#[test]
fn key_public_prints_the_public_half_only() {
    let w = World::new();
    let sec = w.secret_file.to_str().unwrap();
    for (code, out) in w.run_both(&["key", "public", sec], &[]) {
        assert_eq!(code, Some(0), "{out}");
        assert!(out.starts_with(&format!("{}\n", w.public)), "{out}");
    }
    let mut c = w.command(&["key", "public", "-"], &[]);
    c.stdin(std::fs::File::open(&w.secret_file).unwrap());
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", w.public)
    );
    // The same as Nix's own conversion.
    let nix = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "key",
            "convert-secret-to-public",
        ])
        .stdin(std::fs::File::open(&w.secret_file).unwrap())
        .output();
    if let Ok(nix) = nix
        && nix.status.success()
    {
        assert_eq!(String::from_utf8_lossy(&nix.stdout).trim(), w.public);
    }
    // A public key file, and a damaged secret: clear errors, nothing echoed.
    let pubf = w.path("cache.pub");
    let [(code, out), _] = w.run_both(&["key", "public", pubf.to_str().unwrap()], &[]);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!(
            "error: {} holds the public key 'secret-test-1', not a secret key",
            pubf.display()
        )),
        "{out}"
    );
    let bad = w.path("short.sec");
    std::fs::write(&bad, &w.secret[..60]).unwrap();
    let [(code, out), _] = w.run_both(&["key", "public", bad.to_str().unwrap()], &[]);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains(&format!(
            "error: secret key {}: secret key 'secret-test-1' is not valid",
            bad.display()
        )),
        "{out}"
    );
}

#[test]
fn keygen_refuses_one_file_for_both_halves() {
    let w = World::new();
    let sec = w.secret_file.to_str().unwrap().to_string();
    let dir = w.tmp.path();
    std::os::unix::fs::symlink(&w.secret_file, dir.join("link.pub")).unwrap();
    std::fs::hard_link(&w.secret_file, dir.join("hard.pub")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let same = [
        sec.clone(),
        format!("{}/./cache.sec", dir.display()),
        format!("{}/sub/../cache.sec", dir.display()),
        dir.join("link.pub").display().to_string(),
        dir.join("hard.pub").display().to_string(),
    ];
    for other in &same {
        for force in [false, true] {
            let mut args = vec![
                "keygen",
                "other-1",
                "--secret-key-file",
                &sec,
                "--public-key-file",
                other,
            ];
            if force {
                args.push("--force");
            }
            let [(code, out), _] = w.run_both(&args, &[]);
            assert_eq!(code, Some(4), "{out}");
            assert!(out.contains("are the same file"), "{out}");
            assert!(out.contains("nothing was written"), "{out}");
            assert_eq!(std::fs::read_to_string(&w.secret_file).unwrap(), w.secret);
            // And the other way round.
            args.swap(3, 5);
            let [(code, out), _] = w.run_both(&args, &[]);
            assert_eq!(code, Some(4), "{out}");
            assert_eq!(std::fs::read_to_string(&w.secret_file).unwrap(), w.secret);
        }
    }
    // A secret key given as the name of a new key is not echoed either.
    let (a, b) = (w.path("n.sec"), w.path("n.pub"));
    let [(code, out), _] = w.run_both(
        &[
            "keygen",
            &w.secret,
            "--secret-key-file",
            a.to_str().unwrap(),
            "--public-key-file",
            b.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("error: invalid key name 'secret-test-1:…': must be non-empty"),
        "{out}"
    );
    assert!(!a.exists() && !b.exists());
    // A relative spelling from another working directory, neither file existing yet.
    let fresh = w.path("fresh.key");
    let out = w
        .command(
            &[
                "keygen",
                "other-1",
                "--secret-key-file",
                "fresh.key",
                "--public-key-file",
                fresh.to_str().unwrap(),
            ],
            &[],
        )
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(!fresh.exists());
}

/// The dashboard logs to a file: a secret key in NIX_CONFIG gives a warning there (naming
/// NIX_CONFIG), and neither the log, the terminal nor stderr shows the key; a secret key as
/// `--trusted-key` stops it with an error that does not show it either.
#[test]
fn the_dashboards_log_file_never_shows_a_secret_key() {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!("tmux is needed for this test (apt-get install tmux)");
    }
    let w = World::new();
    let socket = format!("narscope-secrets-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    struct Kill<'a>(&'a str);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", self.0, "kill-server"])
                .output();
        }
    }
    let _kill = Kill(&socket);
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let log = w.path("narscope.log");
    let stderr_file = w.path("stderr");
    let exit_file = w.path("exit");
    let start = |extra: &[&str], nix_config: &str| {
        let _ = std::fs::remove_file(&exit_file);
        let mut args = vec![w.cache.as_str()];
        args.extend_from_slice(extra);
        let env = [
            ("RUST_LOG", "debug".to_string()),
            ("NIX_CONFIG", nix_config.to_string()),
        ];
        let cmd = format!(
            "{} 2>{}; echo $? > {}",
            common::cmd::shell_line(&w.command(&args, &env)),
            q(stderr_file.to_str().unwrap()),
            q(exit_file.to_str().unwrap()),
        );
        tmux(&[
            "new-session",
            "-d",
            "-s",
            "s",
            "-x",
            "120",
            "-y",
            "40",
            "sh",
            "-c",
            &cmd,
        ]);
    };
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !ok() {
            if t.elapsed() > Duration::from_secs(30) {
                panic!(
                    "timed out waiting for {what}; screen:\n{}",
                    tmux(&["capture-pane", "-p", "-t", "s"])
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let exited = || exit_file.exists();

    // The dashboard opens; the warning goes to its log file.
    start(&[], &format!("trusted-public-keys = {}", w.secret));
    wait("the dashboard", &|| {
        tmux(&["capture-pane", "-p", "-t", "s"]).contains("paths")
    });
    let screen = tmux(&["capture-pane", "-p", "-t", "s"]);
    tmux(&["send-keys", "-t", "s", "q"]);
    wait("the exit", &exited);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(&format!(
            "NIX_CONFIG line 1: ignoring a key in trusted-public-keys: 'secret-test-1' {ADVICE}"
        )),
        "{logged}"
    );
    for t in [
        &logged,
        &screen,
        &std::fs::read_to_string(&stderr_file).unwrap(),
    ] {
        assert_no_secret(t, &w.secret);
    }

    // A secret --trusted-key: an error on stderr, naming the flag.
    start(&["--trusted-key", &w.secret], "");
    wait("the exit", &exited);
    assert_eq!(std::fs::read_to_string(&exit_file).unwrap().trim(), "4");
    let err = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(
        err.contains("--trusted-key: 'secret-test-1' is a secret key"),
        "{err}"
    );
    for t in [&err, &std::fs::read_to_string(&log).unwrap()] {
        assert_no_secret(t, &w.secret);
    }
}
