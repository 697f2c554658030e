//! A stalled run is visible: while a run is in progress, a line at info level (`-v`) once a
//! minute with its stage, how long it has run and how many bytes its scans have read so far.
//! A run whose byte count stops growing in a reading stage is waiting on something.
//!
//! A thread of its own rather than a task on the async runtime, so that it keeps reporting when
//! the runtime's threads are all busy or blocked.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::engine::scan_log::ScanLog;
use crate::progress::Stages;

/// How often the heartbeat reports.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Stops the heartbeat when dropped.
#[derive(Debug)]
pub struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts reporting every [`INTERVAL`] the stage of `stages` and the bytes `scans` has seen;
/// stops when the returned guard is dropped.
pub fn start(stages: Stages, scans: Option<Arc<ScanLog>>) -> Heartbeat {
    start_every(INTERVAL, stages, scans, |line| tracing::info!("{line}"))
}

fn start_every(
    interval: Duration,
    stages: Stages,
    scans: Option<Arc<ScanLog>>,
    emit: impl Fn(&str) + Send + 'static,
) -> Heartbeat {
    let (stop, stopped) = mpsc::channel::<()>();
    let started = Instant::now();
    let spawned = std::thread::Builder::new().name("heartbeat".into()).spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
            let bytes = scans.as_ref().map_or(0, |log| log.so_far());
            emit(&line(&stages.current(), started.elapsed(), bytes));
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the heartbeat thread: {e}");
    }
    Heartbeat { stop: Some(stop) }
}

/// `still running after 2m 0s, in stage "computing hourly_errors ...": 1.5 GiB read so far`.
pub fn line(stage: &str, elapsed: Duration, bytes: u64) -> String {
    let elapsed = humantime::format_duration(Duration::from_secs(elapsed.as_secs()));
    format!("still running after {elapsed}, in stage \"{stage}\": {} read so far", human_bytes(bytes))
}

/// Bytes in binary units with one decimal (`512 B`, `1.5 KiB`, `2.0 GiB`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_stage_the_time_and_the_bytes() {
        let shown = line("computing hourly_errors for 2026-11-01", Duration::from_millis(125_400), 1536 * 1024 * 1024);
        assert_eq!(
            shown,
            "still running after 2m 5s, in stage \"computing hourly_errors for 2026-11-01\": 1.5 GiB read so far"
        );
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn reports_on_every_interval_until_dropped() {
        let (sender, received) = mpsc::channel::<String>();
        let progress = crate::progress::Progress::hidden();
        progress.stage("checking inputs");
        let heartbeat = start_every(Duration::from_millis(20), progress.stages(), None, move |line| {
            let _ = sender.send(line.to_string());
        });
        let first = received.recv_timeout(Duration::from_secs(5)).expect("a heartbeat");
        assert!(first.contains("in stage \"checking inputs\": 0 B read so far"), "{first}");
        progress.stage("writing daily_spend");
        let later = received.iter().find(|line| line.contains("writing daily_spend"));
        assert!(later.is_some());
        drop(heartbeat);
        // Drain what was sent before the drop; then nothing more arrives.
        std::thread::sleep(Duration::from_millis(60));
        while received.try_recv().is_ok() {}
        assert!(received.recv_timeout(Duration::from_millis(100)).is_err());
    }
}
