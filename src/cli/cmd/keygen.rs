//! `narscope keygen`: an ed25519 key pair in Nix's format, written safely (the secret with
//! mode 0600, never over the public file), and the next steps to use it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::nix::{PublicKey, SecretKey};

/// Generate an ed25519 signing key pair in Nix's format (as nix-store --generate-binary-cache-key).
///
/// Then prints the next steps: the nix.conf line that trusts the key
/// (extra-trusted-public-keys), the `narscope config trust` command that makes narscope
/// trust it, and how to sign as you push. The secret key is never printed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The key name, conventionally host-N, e.g. cache.example.org-1.
    pub name: String,
    /// Where to write the secret key (created with mode 0600; never printed).
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: PathBuf,
    /// Where to write the public key (give its contents to trusted-public-keys).
    #[arg(long, value_name = "FILE")]
    pub public_key_file: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// Generate the pair, write both files and print the next steps.
pub fn run(args: Args) -> Result<i32> {
    keygen(
        &args.name,
        &args.secret_key_file,
        &args.public_key_file,
        args.force,
    )
}

/// Write a new key pair named `name` to `secret` and `public` (refusing to overwrite
/// without `force`, or to write both halves to one file).
fn keygen(name: &str, secret: &Path, public: &Path, force: bool) -> Result<i32> {
    if same_file(secret, public) {
        bail!(
            "--secret-key-file {} and --public-key-file {} are the same file: writing the public \
             key would destroy the secret one; give two different files (nothing was written)",
            secret.display(),
            public.display()
        );
    }
    let sk = SecretKey::generate(name)?;
    let pk = sk.public_key();
    for p in [secret, public] {
        if p.exists() && !force {
            bail!(
                "{} exists; refusing to overwrite it (use --force)",
                p.display()
            );
        }
    }
    write_private(secret, sk.to_file_text().as_bytes())
        .with_context(|| format!("cannot write secret key {}", secret.display()))?;
    std::fs::write(public, pk.to_string())
        .with_context(|| format!("cannot write public key {}", public.display()))?;
    println!("wrote secret key {} (keep it private)", secret.display());
    println!("wrote public key {}: {pk}", public.display());
    print!("{}", keygen_next_steps(&pk, secret, public));
    Ok(0)
}

/// What to do with a fresh key pair: trust it in Nix and in narscope, sign with it. Shows the
/// public key and the files' paths, never the secret.
fn keygen_next_steps(pk: &PublicKey, secret: &Path, public: &Path) -> String {
    let (s, p) = (shell_word(secret), shell_word(public));
    format!(
        "\nNext steps:\n\
         \x20 Trust it in Nix: add this line to nix.conf (or NIX_CONFIG) where you substitute:\n\
         \x20   extra-trusted-public-keys = {pk}\n\
         \x20 Trust it in narscope, so `ls`, `verify` and the dashboard show your pushes as trusted:\n\
         \x20   narscope config trust CACHE {p}          # CACHE: a named cache, or a URL with --name NAME\n\
         \x20   narscope config trust --global {p}       # or for every cache\n\
         \x20 Sign as you push:\n\
         \x20   narscope push CACHE PATH… --key-file {s}\n"
    )
}

/// `p` as one shell word: as is when it is plain, else single-quoted.
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Whether two paths name the same file: the same place once the directories are resolved and
/// symbolic links (dangling ones too) followed, or the same existing file (hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if final_location(a) == final_location(b) {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Where writing to `p` ends up: its directory resolved and links at its end followed, even
/// dangling ones (a write through a dangling link creates its target).
fn final_location(p: &Path) -> std::path::PathBuf {
    let mut p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // Linux follows at most 40 links; give up on loops the same way.
    for _ in 0..40 {
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return p;
        };
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let here = dir.join(name);
        match std::fs::read_link(&here) {
            Ok(target) => p = dir.join(target),
            Err(_) => return here,
        }
    }
    p
}

/// Write a file only its owner can read, replacing it atomically.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = path.with_file_name(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(d) = dir {
        let _ = std::fs::File::open(d).and_then(|f| f.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_sees_through_spelling_links_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        let a = d.join("a.key");
        // Not existing yet: the same place spelled differently.
        assert!(same_file(&a, &a));
        assert!(same_file(&a, &d.join("sub/../a.key")));
        assert!(same_file(&a, &d.join("./sub/.././a.key")));
        assert!(!same_file(&a, &d.join("b.key")));
        // A dangling link to the other: writing through it creates the other.
        std::os::unix::fs::symlink("a.key", d.join("link")).unwrap();
        assert!(same_file(&a, &d.join("link")));
        assert!(same_file(&d.join("sub/../link"), &a));
        // A link to the directory holding it.
        std::os::unix::fs::symlink(d, d.join("sub/up")).unwrap();
        assert!(same_file(&a, &d.join("sub/up/a.key")));
        // Existing files: hard links are the same file too.
        std::fs::write(&a, "x").unwrap();
        std::fs::hard_link(&a, d.join("hard")).unwrap();
        assert!(same_file(&d.join("hard"), &a));
        std::fs::write(d.join("b.key"), "x").unwrap();
        assert!(!same_file(&a, &d.join("b.key")));
        // A link loop does not hang.
        std::os::unix::fs::symlink("loop2", d.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", d.join("loop2")).unwrap();
        assert!(!same_file(&d.join("loop1"), &a));
    }

    #[test]
    fn keygen_refuses_one_file_for_both_halves_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let err = keygen("k-1", &p, &dir.path().join("./k"), false).unwrap_err();
        assert!(err.to_string().contains("are the same file"), "{err}");
        assert!(!p.exists());
        std::fs::write(&p, "old").unwrap();
        assert!(keygen("k-1", &p, &p, true).is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        let (s, pb) = (dir.path().join("s"), dir.path().join("p"));
        assert_eq!(keygen("k-1", &s, &pb, false).unwrap(), 0);
        let sk = SecretKey::parse(&std::fs::read_to_string(&s).unwrap()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&pb).unwrap(),
            sk.public_key().to_string()
        );
    }
}
