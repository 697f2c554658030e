//! Progress display: a spinner naming the current stage when stderr is a terminal, nothing
//! otherwise (logs and pipes stay clean). The current stage is also kept for the run's
//! deadline and heartbeat messages ([`Progress::stages`]).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows which stage a long run is in.
pub struct Progress {
    bar: Option<ProgressBar>,
    stage: Stages,
}

/// The stage a run is in, readable from other threads (the deadline's watchdog, the heartbeat).
#[derive(Debug, Clone)]
pub struct Stages(Arc<Mutex<String>>);

impl Stages {
    /// The current stage (`starting` before the first).
    pub fn current(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, stage: &str) {
        if let Ok(mut current) = self.0.lock() {
            stage.clone_into(&mut current);
        }
    }
}

impl Default for Stages {
    fn default() -> Self {
        Stages(Arc::new(Mutex::new("starting".to_string())))
    }
}

impl Progress {
    /// A spinner on stderr if it is a terminal; silent otherwise.
    pub fn for_stderr() -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar), stage: Stages::default() }
    }

    /// A progress display that never prints.
    pub fn hidden() -> Self {
        Progress { bar: None, stage: Stages::default() }
    }

    /// The current stage, for other threads.
    pub fn stages(&self) -> Stages {
        self.stage.clone()
    }

    /// Announces a stage (also logged at info level).
    pub fn stage(&self, message: &str) {
        tracing::info!("{message}");
        self.stage.set(message);
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
