//! The only code that writes to stdout and stderr.
//!
//! stdout carries results (human text, or one JSON document with `--json`); stderr carries
//! everything else: progress, warnings, the build's log lines, errors. Colour is decided once,
//! here, from `--color`, the terminal, `NO_COLOR` and `TERM`. Progress (a spinner and the
//! lines of finished stages, [`progress::Reporter`]) is shown only when stderr is a terminal,
//! without `--quiet`, and when `CI` is unset or empty.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub(crate) mod attest;
pub(crate) mod batch;
pub(crate) mod custody;
pub(crate) mod diff;
pub(crate) mod dump;
pub(crate) mod failure;
pub(crate) mod hash;
pub(crate) mod lock;
pub(crate) mod policy;
pub(crate) mod progress;
pub(crate) mod rebuild;
pub(crate) mod report;
pub(crate) mod sanitize;
pub(crate) mod verify;

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

pub(crate) use failure::not_produced_text;

/// Human text or JSON on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Json,
}

/// When to colour human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Where and how results and messages go.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub format: Format,
    /// Colour on stdout.
    pub color: bool,
    /// Colour on stderr.
    pub color_err: bool,
    /// Progress and informational lines on stderr: a terminal, no `--quiet`, not in CI.
    pub verbose_progress: bool,
}

/// Styles, as ANSI SGR parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    Good,
    Bad,
    Warn,
    Dim,
    Bold,
    Path,
}

impl Style {
    fn sgr(self) -> &'static str {
        match self {
            Style::Good => "1;32",
            Style::Bad => "1;31",
            Style::Warn => "1;33",
            Style::Dim => "2",
            Style::Bold => "1",
            Style::Path => "36",
        }
    }
}

/// `CI` set to anything but the empty string, as CI services do (`CI=true`): no progress.
fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

fn color_allowed(choice: ColorChoice, is_tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            is_tty && !no_color && !dumb
        }
    }
}

impl Output {
    pub(crate) fn new(format: Format, color: ColorChoice, quiet: bool) -> Self {
        let stderr_tty = io::stderr().is_terminal();
        Self {
            format,
            color: color_allowed(color, io::stdout().is_terminal()),
            color_err: color_allowed(color, stderr_tty),
            verbose_progress: stderr_tty && !quiet && !in_ci(),
        }
    }

    /// What a command hands its long work: live progress on stderr when it is wanted, else
    /// an inert reporter.
    pub(crate) fn reporter(&self) -> progress::Reporter {
        if self.verbose_progress {
            progress::Reporter::on_stderr(self.color_err)
        } else {
            progress::Reporter::hidden()
        }
    }

    /// What a batch hands its jobs: a spinner per running job on stderr when progress is
    /// wanted, else nothing.
    pub(crate) fn jobs_reporter(&self) -> progress::JobsReporter {
        progress::JobsReporter::new(self.verbose_progress)
    }

    pub(crate) fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// `text` styled for stdout.
    pub(crate) fn paint(&self, style: Style, text: &str) -> String {
        paint(self.color, style, text)
    }

    /// `text` styled for stderr.
    pub(crate) fn paint_err(&self, style: Style, text: &str) -> String {
        paint(self.color_err, style, text)
    }

    /// Write a result to stdout as it is.
    // A method, not a function: every print goes through the `Output` the command was given.
    #[allow(clippy::unused_self)]
    pub(crate) fn result(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// Write one JSON document (and a newline) to stdout.
    #[allow(clippy::unused_self)]
    pub(crate) fn json(&self, value: &impl Serialize) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// A progress or status line on stderr, shown only on a terminal (never in CI logs).
    /// Escaped: progress carries the build's own log lines, which the escrow controls.
    pub(crate) fn progress(&self, text: &str) {
        if self.verbose_progress {
            eprintln!("{}", self.paint_err(Style::Dim, &sanitize::sanitize(text)));
        }
    }

    pub(crate) fn warn(&self, text: &str) {
        eprintln!("{} {text}", self.paint_err(Style::Warn, "warning:"));
    }

    /// Render an error and its causes, uv-style, on stderr.
    pub(crate) fn error(&self, err: &anyhow::Error) {
        self.error_lines(&err.to_string(), err.chain().skip(1), err);
    }

    /// Render `err` as the cause of `what`, on stderr (a release of a batch that failed).
    pub(crate) fn error_in(&self, what: &str, err: &anyhow::Error) {
        self.error_lines(what, err.chain(), err);
    }

    fn error_lines<'e>(
        &self,
        head: &str,
        causes: impl Iterator<Item = &'e (dyn std::error::Error + 'static)>,
        err: &anyhow::Error,
    ) {
        let mut text = format!("{} {head}\n", self.paint_err(Style::Bad, "error:"));
        for cause in causes.filter(|c| !c.is::<Hint>()) {
            text.push_str(&format!(
                "  {} {}\n",
                self.paint_err(Style::Dim, "caused by:"),
                lowercase_first(&cause.to_string())
            ));
        }
        if let Some(hint) = err.chain().find_map(|c| c.downcast_ref::<Hint>()) {
            text.push_str(&format!(
                "\n{} {}\n",
                self.paint_err(Style::Bold, "hint:"),
                hint.0
            ));
        }
        eprint!("{text}");
    }
}

/// `No such file or directory (os error 2)` as our own messages read: lowercase first, unless
/// the word is an acronym (`ELF`, `TOML`).
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(text.chars().skip(1)).collect()
        }
        _ => text.to_owned(),
    }
}

fn paint(on: bool, style: Style, text: &str) -> String {
    if on {
        format!("\x1b[{}m{text}\x1b[0m", style.sgr())
    } else {
        text.to_owned()
    }
}

/// A suggestion for fixing an error, placed at the root of its chain
/// (`anyhow::Error::new(Hint(..)).context("what failed")`); printed as `hint:`, not as a cause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Hint(pub String);

/// True when `err` is a broken pipe on stdout (`reprove hash … | head`): a quiet exit 0.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}
