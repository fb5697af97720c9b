//! The command line's definitions: clap's own consistency checks, and the completion scripts
//! and man pages generated from them.

use clap::CommandFactory;

use super::Cli;
use super::cmd::{completions, man};

/// Every subcommand name, nested ones as "pin add".
fn subcommands(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for s in cmd.get_subcommands() {
        let name = format!("{prefix}{}", s.get_name());
        subcommands(s, &format!("{name} "), out);
        out.push(name);
    }
}

fn top_level() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| n != "help")
        .collect()
}

#[test]
fn definitions_pass_clap_debug_asserts() {
    // Catches clashing ids (two flattened structs both named `Args`), bad defaults and
    // conflicts that name no argument, in every subcommand.
    Cli::command().debug_assert();
    let mut all = Vec::new();
    subcommands(&Cli::command(), "", &mut all);
    for name in [
        "ls",
        "gc",
        "pin add",
        "config trust",
        "key public",
        "completions",
        "man",
    ] {
        assert!(all.iter().any(|n| n == name), "{name} missing from {all:?}");
    }
}

#[test]
fn completion_scripts_know_every_subcommand_and_flag() {
    let names = top_level();
    assert!(names.len() >= 17, "{names:?}");
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
        clap_complete::Shell::Elvish,
        clap_complete::Shell::PowerShell,
    ] {
        let script = String::from_utf8(completions::script(shell, Cli::command())).unwrap();
        for name in &names {
            assert!(
                script.contains(name.as_str()),
                "{shell}: no {name} in the script"
            );
        }
        for flag in [
            "keep-younger-than",
            "keep-versions",
            "max-size",
            "trusted-key",
            "nar-concurrency",
            "even-if-pinned",
        ] {
            assert!(script.contains(flag), "{shell}: no --{flag} in the script");
        }
    }
}

/// What bash completes after `words` (the last one being completed), with the script loaded.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let prog = format!(
        "source '{}'; COMP_WORDS=({line}); COMP_CWORD={}; _narscope narscope '{}' '{}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &prog])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands_nested_ones_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("narscope.bash");
    std::fs::write(
        &script,
        completions::script(clap_complete::Shell::Bash, Cli::command()),
    )
    .unwrap();
    assert_eq!(bash_completes(&script, &["narscope", "pi"]), ["pin"]);
    assert_eq!(
        bash_completes(&script, &["narscope", "gc", "--keep-y"]),
        ["--keep-younger-than"]
    );
    assert_eq!(
        bash_completes(&script, &["narscope", "pin", "CACHE", "a"]),
        ["add"]
    );
    let shells = bash_completes(&script, &["narscope", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
}

#[test]
fn man_page_has_synopsis_and_every_subcommand() {
    let page = String::from_utf8(man::page(Cli::command()).unwrap()).unwrap();
    assert!(page.starts_with(".ie"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains(".TH narscope 1"), "no title line");
    assert!(page.contains(".SH SYNOPSIS"), "no SYNOPSIS");
    assert!(page.contains(".SH SUBCOMMANDS"), "no SUBCOMMANDS");
    for name in top_level() {
        assert!(
            page.contains(&format!("narscope\\-{name}(1)")),
            "the main page does not list {name}"
        );
    }
    // The long help text (after_help) is there, and the global options.
    assert!(page.contains("trusted\\-key"), "no --trusted-key");
    assert!(
        page.contains("Trusted keys come from"),
        "no after_help text"
    );
}

#[test]
fn man_dir_writes_one_page_per_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let code = man::run(
        man::Args {
            dir: Some(dir.clone()),
        },
        Cli::command(),
    )
    .unwrap();
    assert_eq!(code, 0);
    let mut all = Vec::new();
    subcommands(&Cli::command(), "", &mut all);
    let mut wanted: Vec<String> = all
        .iter()
        .filter(|n| !n.ends_with("help"))
        .map(|n| format!("narscope-{}.1", n.replace(' ', "-")))
        .collect();
    wanted.push("narscope.1".into());
    wanted.sort();
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, wanted);
    let gc = std::fs::read_to_string(dir.join("narscope-gc.1")).unwrap();
    assert!(gc.contains(".SH SYNOPSIS"), "{gc}");
    assert!(gc.contains("keep\\-younger\\-than"), "{gc}");
    let add = std::fs::read_to_string(dir.join("narscope-pin-add.1")).unwrap();
    assert!(add.contains("Create or replace a pin"), "{add}");
}

#[test]
fn man_dir_that_cannot_be_created_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = man::run(
        man::Args {
            dir: Some(file.join("man1")),
        },
        Cli::command(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("not-a-dir/man1"), "{err:#}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}
