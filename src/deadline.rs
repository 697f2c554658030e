//! The run's deadline (`[engine] deadline_minutes`, `run --deadline`): a run that passes it
//! stops with exit code 5 ([`crate::error::EXIT_DEADLINE`]) and a message naming the stage it
//! was in, so that a nightly job that cannot finish in time fails visibly instead of holding
//! its cluster until the task's own time limit.
//!
//! What is committed, given that every output is computed before the first commit:
//!
//! 1. Until commits start, the deadline stops the run wherever it is ([`Deadline::bound`]):
//!    nothing was written, the output tables are unchanged.
//! 2. Commits start only while at least the *commit reserve* is left (a tenth of the deadline,
//!    at most 5 minutes; [`Deadline::begin_commits`]); with less, the run stops before the
//!    first commit, so a run never starts writing what it cannot finish writing in time.
//! 3. Once commits have started, the commit in flight is left to finish (each one is a single
//!    atomic Delta commit, bounded by the object-store timeouts); if the deadline passes
//!    meanwhile, the run stops before the next one ([`Deadline::before_commit`]) and the
//!    message lists the tables committed (with the new window) and those not (at their
//!    previous versions): rerunning the window brings them in line.
//! 4. A watchdog thread ends the process [`WATCHDOG_GRACE`] after the deadline if the run has
//!    not stopped by then: a call that blocks its thread cannot be interrupted by an
//!    asynchronous timeout, and the process must not outlive its deadline for ever
//!    ([`Deadline::watchdog`]).

use std::future::Future;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{EXIT_DEADLINE, Error, Result};
use crate::progress::Stages;
use crate::settings::EngineSettings;

/// How long after the deadline the watchdog ends a run that did not stop by itself.
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(120);
/// The longest commit reserve (see the module documentation).
pub const MAX_COMMIT_RESERVE: Duration = Duration::from_secs(300);

/// When the run must be over, if ever; cheap to clone (clones share the commit bookkeeping).
#[derive(Debug, Clone, Default)]
pub struct Deadline {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    limit: Duration,
    /// The setting it came from, for messages.
    source: &'static str,
    at: Instant,
    commits: Mutex<Commits>,
}

#[derive(Debug, Default)]
struct Commits {
    started: bool,
    planned: Vec<String>,
    done: Vec<String>,
    current: Option<String>,
}

impl Deadline {
    /// No deadline: every check passes.
    pub fn none() -> Self {
        Deadline { inner: None }
    }

    /// A deadline `limit` from now; `source` names the setting in messages.
    pub fn after(limit: Duration, source: &'static str) -> Self {
        let inner = Inner { limit, source, at: Instant::now() + limit, commits: Mutex::default() };
        Deadline { inner: Some(Arc::new(inner)) }
    }

    /// The run's deadline from now: `run --deadline` if given, else `[engine]
    /// deadline_minutes`, else none.
    pub fn for_run(flag: Option<Duration>, engine: &EngineSettings) -> Self {
        match (flag, engine.deadline_minutes) {
            (Some(limit), _) => Deadline::after(limit, "`run --deadline`"),
            (None, Some(minutes)) => {
                Deadline::after(Duration::from_secs(minutes.saturating_mul(60)), "`[engine] deadline_minutes`")
            }
            (None, None) => Deadline::none(),
        }
    }

    /// The time the run was given, if any.
    pub fn limit(&self) -> Option<Duration> {
        self.inner.as_ref().map(|i| i.limit)
    }

    /// Time left before the deadline (zero once passed), if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.inner.as_ref().map(|i| i.at.saturating_duration_since(Instant::now()))
    }

    /// The time kept for writing the outputs: a tenth of the deadline, at most 5 minutes.
    pub fn commit_reserve(&self) -> Option<Duration> {
        self.inner.as_ref().map(|i| (i.limit / 10).min(MAX_COMMIT_RESERVE))
    }

    fn passed(&self) -> bool {
        self.remaining().is_some_and(|left| left.is_zero())
    }

    /// Fails with [`Error::DeadlinePassed`] naming `stage` if the deadline has passed.
    pub fn check(&self, stage: &str) -> Result<()> {
        if self.passed() { Err(Error::DeadlinePassed(self.message(stage, ""))) } else { Ok(()) }
    }

    /// Called once before the first commit with the names of everything the run is about to
    /// write: fails (and nothing is committed) unless at least the commit reserve is left.
    pub fn begin_commits<'a>(&self, planned: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let (Some(inner), Some(left), Some(reserve)) = (&self.inner, self.remaining(), self.commit_reserve()) else {
            return Ok(());
        };
        if left.is_zero() {
            return Err(Error::DeadlinePassed(self.message("computing the outputs", "")));
        }
        if left < reserve {
            return Err(Error::DeadlinePassed(format!(
                "the run has {} left of its deadline of {} ({}), less than the {} kept for writing the outputs: \
                 it stops before the first commit. Nothing was committed: the output tables are unchanged",
                show(left),
                show(inner.limit),
                inner.source,
                show(reserve),
            )));
        }
        if let Ok(mut commits) = inner.commits.lock() {
            commits.started = true;
            commits.planned = planned.into_iter().map(str::to_string).collect();
        }
        tracing::debug!(left = %show(left), reserve = %show(reserve), "deadline: enough time left to write the outputs");
        Ok(())
    }

    /// Called before each commit (`name`: the table, or the patch folder): the previous one is
    /// done; fails, naming what was and was not committed, if the deadline has passed.
    pub fn before_commit(&self, name: &str) -> Result<()> {
        let Some(inner) = &self.inner else { return Ok(()) };
        if let Ok(mut commits) = inner.commits.lock()
            && let Some(previous) = commits.current.take()
        {
            commits.done.push(previous);
        }
        if self.passed() {
            return Err(Error::DeadlinePassed(
                self.message("writing the outputs", &format!(" before writing `{name}`")),
            ));
        }
        if let Ok(mut commits) = inner.commits.lock() {
            commits.current = Some(name.to_string());
        }
        Ok(())
    }

    fn committing(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.commits.lock().is_ok_and(|c| c.started))
    }

    /// Runs `run`, stopping it with [`Error::DeadlinePassed`] (naming the current stage of
    /// `stages`) when the deadline passes before commits have started; once they have, the
    /// commit in flight finishes and [`Self::before_commit`] stops the run before the next.
    pub async fn bound<T>(&self, stages: &Stages, run: impl Future<Output = Result<T>>) -> Result<T> {
        let Some(inner) = &self.inner else { return run.await };
        let mut run = std::pin::pin!(run);
        tokio::select! {
            result = &mut run => return result,
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(inner.at)) => {}
        }
        if self.committing() {
            return run.await;
        }
        Err(Error::DeadlinePassed(self.message(&stages.current(), "")))
    }

    /// Starts the watchdog: [`WATCHDOG_GRACE`] after the deadline it prints the deadline's
    /// message and ends the process with exit code 5, unless the returned guard was dropped
    /// first (the run is over). For a run blocked in a way no asynchronous timeout reaches.
    pub fn watchdog(&self, stages: Stages) -> Watchdog {
        self.watchdog_after(WATCHDOG_GRACE, stages, |message| {
            eprintln!("error: {message}");
            std::process::exit(i32::from(EXIT_DEADLINE));
        })
    }

    fn watchdog_after(
        &self,
        grace: Duration,
        stages: Stages,
        on_expiry: impl FnOnce(String) + Send + 'static,
    ) -> Watchdog {
        let Some(inner) = &self.inner else { return Watchdog { disarm: None } };
        let (disarm, disarmed) = mpsc::channel::<()>();
        let fire_at = inner.at + grace;
        let deadline = self.clone();
        let spawned = std::thread::Builder::new().name("deadline-watchdog".into()).spawn(move || {
            loop {
                let now = Instant::now();
                if now >= fire_at {
                    break;
                }
                match disarmed.recv_timeout(fire_at - now) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            let extra = format!(
                " and had not stopped {} after it (blocked in a call that cannot be interrupted), so the process \
                 stops here",
                show(grace)
            );
            on_expiry(deadline.message(&stages.current(), &extra));
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the deadline's watchdog thread: {e}");
        }
        Watchdog { disarm: Some(disarm) }
    }

    /// `the run passed its deadline of 3s (source) while <stage><extra>. <what was committed>`.
    fn message(&self, stage: &str, extra: &str) -> String {
        let Some(inner) = &self.inner else { return String::new() };
        format!(
            "the run passed its deadline of {} ({}) while {stage}{extra}. {}",
            show(inner.limit),
            inner.source,
            inner.commits.lock().map(|c| c.state()).unwrap_or_default()
        )
    }
}

impl Commits {
    /// What was committed, for the deadline's message.
    fn state(&self) -> String {
        if !self.started || (self.done.is_empty() && self.current.is_none()) {
            return "Nothing was committed: the output tables are unchanged".to_string();
        }
        let in_flight = self.current.as_deref().map_or_else(String::new, |name| {
            format!("; `{name}` was being committed (it is either fully written or unchanged)")
        });
        let rest: Vec<&str> = self
            .planned
            .iter()
            .map(String::as_str)
            .filter(|name| !self.done.iter().any(|d| d == name) && self.current.as_deref() != Some(name))
            .collect();
        let list = |names: &[&str]| if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let done: Vec<&str> = self.done.iter().map(String::as_str).collect();
        format!(
            "Committed with the new window: {}{in_flight}; not committed (previous versions kept): {}. Rerun the \
             window to bring them in line",
            list(&done),
            list(&rest)
        )
    }
}

/// Disarms the watchdog when dropped.
#[derive(Debug)]
pub struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(disarm) = self.disarm.take() {
            let _ = disarm.send(());
        }
    }
}

/// A duration as `2h 50m` or `3s`: to the second, or to the millisecond below one second.
fn show(duration: Duration) -> String {
    let shown = if duration >= Duration::from_secs(1) {
        Duration::from_secs(duration.as_secs())
    } else {
        Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(0))
    };
    humantime::format_duration(shown).to_string()
}

/// Parses `run --deadline`: minutes (`170`) or a duration with units (`2h 50m`, `90s`).
pub fn parse_duration_arg(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(minutes) => Duration::from_secs(minutes.saturating_mul(60)),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("`{text}` is neither minutes (170) nor a duration (2h 50m, 90s): {e}"))?,
    };
    if duration.is_zero() {
        return Err("the deadline must be longer than zero".to_string());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(stage: &str) -> Stages {
        let progress = crate::progress::Progress::hidden();
        progress.stage(stage);
        progress.stages()
    }

    #[test]
    fn the_flag_overrides_the_job_file() {
        let mut engine = EngineSettings::default();
        assert!(Deadline::for_run(None, &engine).limit().is_none());
        engine.deadline_minutes = Some(170);
        assert_eq!(Deadline::for_run(None, &engine).limit(), Some(Duration::from_secs(170 * 60)));
        assert_eq!(Deadline::for_run(None, &engine).commit_reserve(), Some(MAX_COMMIT_RESERVE));
        let flag = Deadline::for_run(Some(Duration::from_secs(30)), &engine);
        assert_eq!(flag.limit(), Some(Duration::from_secs(30)));
        assert_eq!(flag.commit_reserve(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn parses_minutes_or_durations() {
        assert_eq!(parse_duration_arg("170"), Ok(Duration::from_secs(170 * 60)));
        assert_eq!(parse_duration_arg("2h 50m"), Ok(Duration::from_secs(170 * 60)));
        assert_eq!(parse_duration_arg("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration_arg("0").unwrap_err().contains("longer than zero"));
        assert!(parse_duration_arg("soon").unwrap_err().contains("neither minutes"));
    }

    #[test]
    fn no_deadline_never_stops_anything() {
        let deadline = Deadline::none();
        deadline.check("anything").unwrap();
        deadline.begin_commits(["daily_spend"]).unwrap();
        deadline.before_commit("daily_spend").unwrap();
        assert!(deadline.remaining().is_none());
    }

    #[test]
    fn a_passed_deadline_names_the_stage_and_that_nothing_was_committed() {
        let deadline = Deadline::after(Duration::ZERO, "`run --deadline`");
        let err = deadline.check("computing hourly_errors for 2026-11-01").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_DEADLINE);
        let message = err.to_string();
        assert!(message.contains("while computing hourly_errors for 2026-11-01"), "{message}");
        assert!(message.contains("`run --deadline`") && message.contains("Nothing was committed"), "{message}");
        let err = deadline.begin_commits(["daily_spend"]).unwrap_err().to_string();
        assert!(err.contains("Nothing was committed"), "{err}");
    }

    #[test]
    fn commits_do_not_start_without_the_reserve() {
        // A minute's reserve, and nearly all of the 10 minutes left.
        let roomy = Deadline::after(Duration::from_secs(600), "`run --deadline`");
        roomy.begin_commits(["daily_spend", "alerts"]).unwrap();
        // A 2 ms reserve, and at most 1 ms left.
        let tight = Deadline::after(Duration::from_millis(20), "`run --deadline`");
        std::thread::sleep(Duration::from_millis(19));
        let err = tight.begin_commits(["daily_spend"]).unwrap_err().to_string();
        assert!(err.contains("before the first commit") || err.contains("Nothing was committed"), "{err}");
    }

    #[test]
    fn a_deadline_passing_during_commits_names_what_was_committed() {
        let deadline = Deadline::after(Duration::from_millis(300), "`[engine] deadline_minutes`");
        deadline.begin_commits(["daily_spend", "hourly_errors", "alerts", "recommendations"]).unwrap();
        deadline.before_commit("daily_spend").unwrap();
        deadline.before_commit("hourly_errors").unwrap();
        std::thread::sleep(Duration::from_millis(320));
        let err = deadline.before_commit("alerts").unwrap_err().to_string();
        assert!(err.contains("while writing the outputs before writing `alerts`"), "{err}");
        assert!(err.contains("Committed with the new window: daily_spend, hourly_errors;"), "{err}");
        assert!(err.contains("not committed (previous versions kept): alerts, recommendations"), "{err}");
    }

    #[tokio::test]
    async fn bound_stops_a_run_that_does_not_finish_in_time() {
        let deadline = Deadline::after(Duration::from_millis(50), "`run --deadline`");
        let started = Instant::now();
        let never = std::future::pending::<Result<()>>();
        let err = deadline.bound(&stages("checking inputs"), never).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("while checking inputs. Nothing was committed"), "{err}");
        // A run that finishes in time is untouched.
        let quick = Deadline::after(Duration::from_secs(60), "`run --deadline`");
        assert_eq!(quick.bound(&stages("x"), async { Ok(7) }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn bound_lets_the_commit_in_flight_finish() {
        let deadline = Deadline::after(Duration::from_millis(100), "`run --deadline`");
        let run = async {
            deadline.begin_commits(["daily_spend", "alerts"])?;
            deadline.before_commit("daily_spend")?;
            tokio::time::sleep(Duration::from_millis(200)).await; // the commit, past the deadline
            deadline.before_commit("alerts")?;
            Ok(())
        };
        let err = deadline.bound(&stages("writing daily_spend"), run).await.unwrap_err().to_string();
        assert!(err.contains("before writing `alerts`") && err.contains("new window: daily_spend;"), "{err}");
    }

    #[test]
    fn the_watchdog_fires_after_the_grace_unless_disarmed() {
        let (sender, fired) = mpsc::channel();
        let deadline = Deadline::after(Duration::from_millis(10), "`run --deadline`");
        let _armed = deadline.watchdog_after(Duration::from_millis(10), stages("checking inputs"), move |message| {
            let _ = sender.send(message);
        });
        let message = fired.recv_timeout(Duration::from_secs(5)).expect("the watchdog fires");
        assert!(message.contains("while checking inputs and had not stopped"), "{message}");

        let (sender, fired) = mpsc::channel();
        let deadline = Deadline::after(Duration::from_millis(50), "`run --deadline`");
        let armed = deadline.watchdog_after(Duration::ZERO, stages("x"), move |message| {
            let _ = sender.send(message);
        });
        drop(armed);
        assert!(fired.recv_timeout(Duration::from_millis(200)).is_err(), "a disarmed watchdog stays quiet");
    }
}
