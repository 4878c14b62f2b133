//! Progress on a terminal: one indicatif spinner on stderr for the stage under way, and a line
//! for each stage once it ends.
//!
//! A [`Reporter`] is what a command hands its long work as a [`Progress`]. It is live only
//! when [`Output`](super::Output) says progress is wanted (stderr is a terminal, no `--quiet`,
//! no `CI` in the environment); otherwise it is inert: no thread, no bar, nothing written.
//! Invariants:
//!
//! - **Never on stdout**, and never left on screen: the spinner is cleared before a command
//!   writes its results ([`Reporter::finish`], also on drop).
//! - **Cheap for the work.** The work only names stages; the figures come from the
//!   process-wide counters of [`crate::progress`], which a thread of the reporter samples
//!   every 100 ms. That thread also reads the build's log: the last 4 KiB of the file, opened
//!   without following a link or blocking on a FIFO (the build may have replaced it), each
//!   tick. Nothing the build writes reaches the terminal unescaped.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::sanitize::sanitize;
use super::{paint, Style};
use crate::progress::{Progress, Stage};

/// How often the spinner and its figures are redrawn.
const TICK: Duration = Duration::from_millis(100);
/// How much of the end of a build's log is read for its last line.
const LOG_TAIL: u64 = 4096;
/// The longest log line shown (the terminal's width cuts it shorter).
const LINE_MAX: usize = 300;

/// Progress on stderr, or nothing.
#[derive(Debug)]
pub(crate) struct Reporter {
    live: Option<Live>,
}

#[derive(Debug)]
struct Live {
    shared: Arc<Shared>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    bar: ProgressBar,
    current: Mutex<Option<Current>>,
    stop: AtomicBool,
    color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hashing,
    Unpacking,
    Building,
    Comparing,
    Step,
}

/// The stage under way and where the counters stood when it began.
#[derive(Debug)]
struct Current {
    kind: Kind,
    what: String,
    started: Instant,
    hashed: u64,
    entries: u64,
    log: Option<PathBuf>,
    last_line: String,
}

impl Reporter {
    /// A reporter that shows nothing.
    pub(crate) fn hidden() -> Reporter {
        Reporter { live: None }
    }

    /// A reporter drawing on stderr; `color` styles the lines of finished stages.
    pub(super) fn on_stderr(color: bool) -> Reporter {
        Reporter::with_target(ProgressDrawTarget::stderr(), color)
    }

    fn with_target(target: ProgressDrawTarget, color: bool) -> Reporter {
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Reporter {
            live: Some(Live {
                shared: Arc::new(Shared {
                    bar,
                    current: Mutex::new(None),
                    stop: AtomicBool::new(false),
                    color,
                }),
                ticker: Mutex::new(None),
            }),
        }
    }

    #[cfg(test)]
    /// Whether anything is shown.
    pub(crate) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// End the last stage and clear the spinner: call before writing results.
    pub(crate) fn finish(&self) {
        let Some(live) = &self.live else { return };
        live.shared.stop.store(true, Ordering::Release);
        let ticker = live
            .ticker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ticker) = ticker {
            let _ = ticker.join();
        }
        let ended = live
            .shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ended) = ended {
            live.shared.print_ended(&ended);
        }
        live.shared.bar.finish_and_clear();
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Progress for Reporter {
    fn stage(&self, stage: Stage<'_>) {
        let Some(live) = &self.live else { return };
        let (kind, log) = match stage {
            Stage::Hashing(_) => (Kind::Hashing, None),
            Stage::Unpacking(_) => (Kind::Unpacking, None),
            Stage::Building { log, .. } => (Kind::Building, Some(log.to_path_buf())),
            Stage::Comparing(_) => (Kind::Comparing, None),
            Stage::Step(_) => (Kind::Step, None),
        };
        let next = Current {
            kind,
            what: sanitize(stage.what()),
            started: Instant::now(),
            hashed: crate::progress::hashed(),
            entries: crate::progress::entries(),
            log,
            last_line: String::new(),
        };
        {
            let mut current = live
                .shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(ended) = current.take() {
                live.shared.print_ended(&ended);
            }
            // One message holds the stage and its figures, so that a frame is drawn with the
            // new stage's words and none of the last one's (setting a prefix and then a
            // message would draw once in between).
            live.shared.bar.set_message(next.what.clone());
            *current = Some(next);
        }
        live.shared.bar.tick();
        let mut ticker = live.ticker.lock().unwrap_or_else(PoisonError::into_inner);
        if ticker.is_none() && !live.shared.stop.load(Ordering::Acquire) {
            let shared = Arc::clone(&live.shared);
            *ticker = std::thread::Builder::new()
                .name("progress".to_owned())
                .spawn(move || shared.tick_until_stopped())
                .ok();
        }
    }
}

impl Shared {
    fn tick_until_stopped(&self) {
        while !self.stop.load(Ordering::Acquire) {
            {
                let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(current) = current.as_mut() {
                    if let Some(log) = &current.log {
                        if let Some(line) = last_log_line(log) {
                            current.last_line = line;
                        }
                    }
                    self.bar
                        .set_message(format!("{} {}", current.what, live_figures(current)));
                }
            }
            self.bar.tick();
            std::thread::sleep(TICK);
        }
    }

    /// A line for a stage that ended, above the spinner.
    fn print_ended(&self, ended: &Current) {
        let line = format!("{} ({})", ended.what, summary(ended));
        self.bar.println(paint(self.color, Style::Dim, &line));
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 0.05 {
        return String::new();
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    #[allow(clippy::cast_sign_loss)]
    let per_second = (bytes as f64 / secs) as u64;
    format!(", {}/s", BinaryBytes(per_second))
}

/// The figures shown beside the stage while it runs.
fn live_figures(c: &Current) -> String {
    let elapsed = c.started.elapsed();
    let hashed = crate::progress::hashed().wrapping_sub(c.hashed);
    let entries = crate::progress::entries().wrapping_sub(c.entries);
    match c.kind {
        Kind::Hashing => format!("{}{}", BinaryBytes(hashed), rate(hashed, elapsed)),
        Kind::Unpacking if entries == 0 && hashed > 0 => {
            format!("{} checked{}", BinaryBytes(hashed), rate(hashed, elapsed))
        }
        Kind::Unpacking => format!("{} entries", HumanCount(entries)),
        Kind::Building if c.last_line.is_empty() => seconds(elapsed),
        Kind::Building => format!("{} | {}", seconds(elapsed), c.last_line),
        Kind::Comparing | Kind::Step => seconds(elapsed),
    }
}

/// What a finished stage came to, in a few words.
fn summary(c: &Current) -> String {
    let elapsed = c.started.elapsed();
    let hashed = crate::progress::hashed().wrapping_sub(c.hashed);
    let entries = crate::progress::entries().wrapping_sub(c.entries);
    match c.kind {
        Kind::Hashing if hashed > 0 => format!(
            "{} in {}{}",
            BinaryBytes(hashed),
            seconds(elapsed),
            rate(hashed, elapsed)
        ),
        Kind::Unpacking if entries > 0 => {
            format!("{} entries in {}", HumanCount(entries), seconds(elapsed))
        }
        _ => seconds(elapsed),
    }
}

/// The last line of text in the log's last 4 KiB, escaped for the terminal; `None` when the
/// log cannot be read (not yet written, or not a regular file).
fn last_log_line(log: &Path) -> Option<String> {
    let mut file = crate::beneath::open_regular_nofollow(log).ok()?;
    let size = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(LOG_TAIL)))
        .ok()?;
    let mut tail = Vec::new();
    file.take(LOG_TAIL).read_to_end(&mut tail).ok()?;
    Some(last_line(&String::from_utf8_lossy(&tail)))
}

/// The last non-blank line of `text` as a terminal would leave it (what follows its last
/// carriage return), without escape sequences, escaped and cut to [`LINE_MAX`] characters.
fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .map(|l| {
            l.rsplit('\r')
                .find(|part| !part.trim().is_empty())
                .unwrap_or("")
        })
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("");
    let plain: String = strip_escapes(line.trim()).chars().take(LINE_MAX).collect();
    sanitize(&plain)
}

/// `text` without ANSI CSI sequences (`ESC [ … final`), which colour or move the cursor.
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_is_what_a_terminal_would_show_and_escaped() {
        assert_eq!(last_line("cc -c a.c\ncc -c b.c\n\n  \n"), "cc -c b.c");
        assert_eq!(last_line("partial li"), "partial li");
        assert_eq!(last_line(" 10%\r 55%\r"), "55%");
        assert_eq!(last_line("\x1b[1;31merror:\x1b[0m bad"), "error: bad");
        // A bidi override from the escrow's build is shown, not obeyed.
        assert_eq!(last_line("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(last_line(""), "");
        assert_eq!(last_line(&"x".repeat(1000)).len(), LINE_MAX);
    }

    #[test]
    fn the_log_is_read_only_as_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        assert_eq!(last_log_line(&log), None);
        std::fs::write(dir.path().join("secret"), "top secret\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), &log).unwrap();
        assert_eq!(last_log_line(&log), None);
        std::fs::remove_file(&log).unwrap();
        let text = format!("{}\nlast one\n", "y".repeat(10_000));
        std::fs::write(&log, text).unwrap();
        assert_eq!(last_log_line(&log).as_deref(), Some("last one"));
    }

    /// A terminal that keeps every line drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl indicatif::TermLike for Recorder {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.trim().is_empty() {
                self.0.lock().unwrap().push(s.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A stage's figures and the build's last log line belong to it: the first frame of the
    /// next stage shows none of them.
    #[test]
    fn a_new_stage_does_not_keep_the_last_ones_figures() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        std::fs::write(&log, "cc -c the-old-stage.c\n").unwrap();
        let term = Recorder::default();
        let r = Reporter::with_target(
            ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 255),
            false,
        );
        r.stage(Stage::Building {
            what: "building",
            log: &log,
        });
        // The ticker reads the log and shows its last line beside the stage.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !term
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("the-old-stage"))
        {
            assert!(Instant::now() < deadline, "{:?}", term.0.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        r.stage(Stage::Comparing("comparing"));
        r.finish();
        let frames = term.0.lock().unwrap().clone();
        assert!(frames.iter().any(|l| l.contains("comparing")), "{frames:?}");
        for frame in frames.iter().filter(|l| l.contains("comparing")) {
            assert!(!frame.contains("the-old-stage"), "{frames:?}");
        }
    }

    #[test]
    fn a_hidden_reporter_takes_stages_and_shows_nothing() {
        let r = Reporter::hidden();
        r.stage(Stage::Hashing("x"));
        assert!(!r.is_live());
        r.finish();
    }
}

/// Progress of several jobs at once on stderr (`verify --jobs N`): a spinner per running job,
/// showing its name, its stage and the time the job has taken, cleared when the job ends; or
/// nothing, when progress is not wanted.
#[derive(Debug)]
pub(crate) struct JobsReporter {
    multi: Option<indicatif::MultiProgress>,
}

impl JobsReporter {
    pub(super) fn new(live: bool) -> JobsReporter {
        JobsReporter {
            multi: live
                .then(|| indicatif::MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }
}

/// One job's spinner.
struct JobBar {
    bar: ProgressBar,
}

impl Progress for JobBar {
    fn stage(&self, stage: Stage<'_>) {
        self.bar.set_message(sanitize(stage.what()));
    }
}

impl Drop for JobBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl crate::progress::Jobs for JobsReporter {
    fn job(&self, name: &str) -> Box<dyn Progress + '_> {
        let Some(multi) = &self.multi else {
            return Box::new(crate::progress::Silent);
        };
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(sanitize(name));
        bar.enable_steady_tick(TICK);
        Box::new(JobBar { bar })
    }
}
