//! The command line's definitions: clap's own consistency checks.

use clap::CommandFactory;

use super::Cli;

/// Every subcommand name, nested ones as "pin add".
fn subcommands(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for s in cmd.get_subcommands() {
        let name = format!("{prefix}{}", s.get_name());
        subcommands(s, &format!("{name} "), out);
        out.push(name);
    }
}

#[test]
fn definitions_pass_clap_debug_asserts() {
    // Catches clashing ids (two flattened structs both named `Args`), bad defaults and
    // conflicts that name no argument, in every subcommand.
    Cli::command().debug_assert();
    let mut all = Vec::new();
    subcommands(&Cli::command(), "", &mut all);
    for name in ["ls", "gc", "pin add", "config trust", "key public"] {
        assert!(all.iter().any(|n| n == name), "{name} missing from {all:?}");
    }
}
