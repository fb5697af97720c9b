//! `narscope man`: man pages in roff, generated from the clap definitions (the same text as
//! `--help`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// Print narscope's man page, or write one page per command into a directory.
///
/// Without --dir, the page of narscope itself (its options and the list of subcommands) goes
/// to standard output: `narscope man | man -l -`. With --dir DIR, narscope.1 and a page per
/// subcommand (narscope-ls.1, narscope-pin-add.1, …) are written into DIR, for a MANPATH
/// directory such as ~/.local/share/man/man1.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write narscope.1 and one page per subcommand into DIR (created if missing; existing
    /// pages of the same names are replaced).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Print the main page of the command line `cli`, or write every page into `args.dir`.
pub fn run(args: Args, cli: clap::Command) -> Result<i32> {
    match args.dir {
        None => {
            let page = page(cli).context("cannot render the man page")?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|()| out.flush())
                .context("cannot write the man page to standard output")?;
        }
        Some(dir) => {
            let n = pages(&cli);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the directory {}", dir.display()))?;
            clap_mangen::generate_to(cli, &dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
            println!(
                "wrote {n} man pages into {} (narscope.1 and one per subcommand)",
                dir.display()
            );
        }
    }
    Ok(0)
}

/// The man page of `cli` itself, in roff.
pub fn page(cli: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cli).render(&mut buf)?;
    Ok(buf)
}

/// How many pages `--dir` writes: one for `cli` and one per (visible) subcommand, at every
/// depth.
fn pages(cli: &clap::Command) -> usize {
    1 + cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(pages)
        .sum::<usize>()
}
