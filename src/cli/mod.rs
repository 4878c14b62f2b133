//! The command line: the only code that knows clap. Each command turns its arguments into
//! plain options, calls the domain, and hands the result to [`crate::output`].

mod attest;
mod attest_export;
mod attest_policy;
mod attest_seek;
mod completions;
mod diff;
mod dump;
mod hash;
mod key;
mod lock;
mod man;
mod rebuild;
mod report;
mod verify;

use clap::{Args, Parser, Subcommand};

use crate::exit::ExitStatus;
use crate::interrupt::Interrupted;
use crate::output::{ColorChoice, Format, Hint, Output};

/// Prove that shipped firmware was built from escrowed source.
#[derive(Debug, Parser)]
#[command(name = "reprove", version, about, max_term_width = 100, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Write results as JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t)]
    pub color: ColorChoice,
    /// No progress on stderr
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// The exit codes, for `--help` and the man page (the mapping is [`ExitStatus`]'s).
const EXIT_CODES: &str = "\
Exit codes (as `cmp` and `diff`):
  0    verified: identical, or equivalent within declared allowances
  1    a definite negative: different, nondeterministic, missing, build failed, rejected
  2    could not decide: bad input, drifted toolchain, no sandbox, I/O trouble
  130  interrupted by SIGINT (143 for SIGTERM, 129 for SIGHUP), after removing what it made";

/// The bounds kept by every command that reads archives, for its `--help` (the values are
/// [`crate::archive::Limits::default`]'s, checked by a test).
const ARCHIVE_BOUNDS: &str = "\
Archives (escrows, shipped bundles, toolchain roots, diff inputs) are read within bounds; past one,
the command stops with exit code 2 and removes what it unpacked. Raise them in the environment:
  REPROVE_MAX_UNPACKED_BYTES  bytes written when unpacking (default 68719476736, 64 GiB)
  REPROVE_MAX_ENTRIES         archive entries (default 4000000)
  REPROVE_MAX_DEPTH           archives nested in archives, for comparing (default 16)";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild from escrow, compare with the shipped binaries, write an attestation
    #[command(after_help = ARCHIVE_BOUNDS)]
    Verify(verify::VerifyArgs),
    /// Rebuild from escrow only: the artifacts and their digests
    #[command(after_help = ARCHIVE_BOUNDS)]
    Rebuild(rebuild::RebuildArgs),
    /// Write the toolchain lock, or check that its pins still hold
    #[command(after_help = ARCHIVE_BOUNDS)]
    Lock(lock::LockArgs),
    /// Print file and tree digests (sha256 and blake3)
    Hash(hash::HashArgs),
    /// Generate signing keys
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Check attestations
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// One view of many attestations: per package and version, the verdict, verifier, date,
    /// isolation and drift
    Report(report::ReportArgs),
    /// Compare two files, directories, archives or images, and explain each difference
    #[command(after_help = ARCHIVE_BOUNDS)]
    Diff(diff::DiffArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::CompletionsArgs),
    /// Print a man page, or write them all with `--out-dir`
    Man(man::ManArgs),
}

/// Run a parsed command line to its exit status; errors are printed here.
pub fn run(cli: Cli) -> ExitStatus {
    let format = if cli.global.json {
        Format::Json
    } else {
        Format::Human
    };
    let out = Output::new(format, cli.global.color, cli.global.quiet);
    crate::interrupt::install();
    let result = match cli.command {
        Command::Verify(args) => verify::run(&args, &out),
        Command::Rebuild(args) => rebuild::run(&args, &out),
        Command::Lock(args) => lock::run(&args, &out),
        Command::Hash(args) => hash::run(&args, &out),
        Command::Key(command) => key::run(&command, &out),
        Command::Attest(command) => attest::run(&command, &out),
        Command::Report(args) => report::run(&args, &out),
        Command::Diff(args) => diff::run(&args, &out),
        Command::Completions(args) => completions::run(&args, &out),
        Command::Man(args) => man::run(&args, &out),
    };
    // By now every temporary file and folder of the command has been dropped. A run that saw
    // a signal ends as interrupted, whatever became of the error on its way up (an archive
    // reader may have reported it as a corrupt entry), and even if it finished.
    if let Some(signal) = interrupted(&result) {
        out.error(&interrupt_message(signal, result.as_ref().err()));
        return ExitStatus::Interrupted(signal);
    }
    match result {
        Ok(status) => status,
        Err(err) if crate::output::is_broken_pipe(&err) => ExitStatus::Success,
        Err(err) => {
            out.error(&err);
            ExitStatus::Error
        }
    }
}

/// The signal that stopped the run: an [`Interrupted`] in the error's chain (also inside an
/// `io::Error`), or else the signal the process recorded.
fn interrupted(result: &anyhow::Result<ExitStatus>) -> Option<Interrupted> {
    let in_chain = result.as_ref().err().and_then(|err| {
        err.chain().find_map(|cause| {
            cause.downcast_ref::<Interrupted>().copied().or_else(|| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref)
                    .and_then(|inner| inner.downcast_ref::<Interrupted>())
                    .copied()
            })
        })
    });
    in_chain.or_else(crate::interrupt::received)
}

/// One line naming the signal, and the hint the command attached, if any (a kept work folder).
fn interrupt_message(signal: Interrupted, err: Option<&anyhow::Error>) -> anyhow::Error {
    let hint = err
        .and_then(|e| e.chain().find_map(|c| c.downcast_ref::<Hint>()))
        .map(|h| h.0.clone());
    match hint {
        Some(hint) => anyhow::Error::new(Hint(hint)).context(signal.to_string()),
        None => anyhow::Error::new(signal),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_sound() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_help_states_the_archive_bounds_in_force() {
        let limits = crate::archive::Limits::default();
        for (bound, default) in [
            (crate::archive::Bound::Bytes, limits.max_bytes),
            (crate::archive::Bound::Entries, limits.max_entries),
            (crate::archive::Bound::Depth, limits.max_depth),
        ] {
            let line = super::ARCHIVE_BOUNDS
                .lines()
                .find(|l| l.contains(bound.var()))
                .unwrap();
            assert!(line.contains(&format!("(default {default}")), "{line}");
        }
    }
}
