//! A run never hangs: an S3 endpoint that never answers, answers slowly or drops the connection
//! mid-answer makes the run fail within its configured timeouts, naming the input and its
//! location; `run --deadline` stops a run waiting on such an endpoint with exit code 5, naming
//! the stage. (The Unity Catalog stand-ins are cases of scripts/object-store-tests.sh.)

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the stand-in endpoint misbehaves once it has read a request.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Never answers; keeps the connection open.
    Silent,
    /// Sends a status and headers, then the body one byte per second.
    Slow,
    /// Sends a status, headers announcing 64 KiB and a few bytes, then closes the connection.
    Drop,
}

/// Starts the stand-in on a free loopback port; returns its URL.
async fn misbehaving_endpoint(mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(misbehave(socket, mode));
        }
    });
    url
}

async fn misbehave(mut socket: TcpStream, mode: Mode) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 8192];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 65536\r\n\r\n";
    match mode {
        Mode::Silent => {
            // Read until the client gives up, answering nothing.
            while let Ok(n) = socket.read(&mut buffer).await {
                if n == 0 {
                    return;
                }
            }
        }
        Mode::Slow => {
            if socket.write_all(head).await.is_err() {
                return;
            }
            loop {
                if socket.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Mode::Drop => {
            let _ = socket.write_all(head).await;
            let _ = socket.write_all(b"<?xml version=").await;
            // Dropping the socket closes the connection mid-body.
        }
    }
}

/// A job reading `usage` and `served_entities` from bucket `lake` at `endpoint`, with the
/// given extra storage options, writing into `output`.
fn job_file(dir: &Path, endpoint: &str, options: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = format!(
        "[inputs]\nusage = \"s3://lake/gateway/usage\"\nserved_entities = \"s3://lake/gateway/served_entities\"\n\
         [output]\nlocation = {:?}\n[storage_options]\nAWS_ENDPOINT_URL = \"{endpoint}\"\nAWS_ALLOW_HTTP = \"true\"\n\
         AWS_REGION = \"us-east-1\"\naws_skip_signature = \"true\"\n",
        dir.join("out").display().to_string()
    );
    for (key, value) in options {
        text.push_str(&format!("{key} = \"{value}\"\n"));
    }
    let path = dir.join("job.toml");
    std::fs::write(&path, text).expect("job file");
    path
}

/// Runs the binary on `job` for one day (plus `extra` arguments) with no cloud credentials or
/// settings from the environment; returns its output and how long it took.
async fn run_binary(job: &Path, extra: &[&str]) -> (Output, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"));
    command.args(["run", "--config"]).arg(job).args(["--from", "2026-11-01", "--format", "none"]).args(extra);
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name.starts_with("AZURE_") || name.starts_with("GOOGLE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output().expect("run the binary")).await.expect("join");
    (output, started.elapsed())
}

/// Short timeouts: one attempt and one retry of at most 2 s each, no retry after 3 s.
const SHORT: [(&str, &str); 4] =
    [("timeout", "2s"), ("connect_timeout", "1s"), ("max_retries", "1"), ("retry_timeout", "3s")];

async fn fails_within_the_timeouts(mode: Mode, what: &str) {
    let endpoint = misbehaving_endpoint(mode).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let job = job_file(dir.path(), &endpoint, &SHORT);
    let (output, elapsed) = run_binary(&job, &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{mode:?}: a store that does not answer is a runtime failure: {stderr}");
    // Two attempts of 2 s and a backoff, plus the process's own start: far below a minute.
    assert!(elapsed < Duration::from_secs(30), "{mode:?}: took {elapsed:?}: {stderr}");
    assert!(stderr.contains("input `usage` at s3://lake/gateway/usage could not be read"), "{mode:?}: {stderr}");
    assert!(stderr.contains(what), "{mode:?}: expected {what:?} in: {stderr}");
    assert!(
        stderr.contains("timeout = 2s, max_retries = 1, retry_timeout = 3s: `[storage_options]`"),
        "{mode:?}: the message names the settings: {stderr}"
    );
    assert!(!dir.path().join("out").exists(), "{mode:?}: nothing may be written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_endpoint_that_never_answers_fails_within_the_timeouts() {
    fails_within_the_timeouts(Mode::Silent, "timed out").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_endpoint_that_answers_slowly_fails_within_the_timeouts() {
    fails_within_the_timeouts(Mode::Slow, "timed out").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_endpoint_that_drops_the_connection_fails_at_once() {
    fails_within_the_timeouts(Mode::Drop, "the connection closed before the answer was complete").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_a_run_waiting_on_a_store() {
    let endpoint = misbehaving_endpoint(Mode::Silent).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // The store's own budget (a minute per attempt) would keep the run waiting for minutes.
    let job = job_file(dir.path(), &endpoint, &[("timeout", "60s")]);
    let (output, elapsed) = run_binary(&job, &["--deadline", "3s", "-v"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}: {stderr}");
    assert!(
        stderr.contains(
            "error: the run passed its deadline of 3s (`run --deadline`) while checking inputs. \
                         Nothing was committed: the output tables are unchanged"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing may be written");
}

#[test]
fn the_deadline_and_timeouts_are_checked_with_the_job_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (setting, expected) in [
        ("[engine]\ndeadline_minutes = 0\n", "engine.deadline_minutes"),
        ("[engine]\nunity_catalog_timeout_seconds = 0\n", "unity_catalog_timeout_seconds"),
        ("[storage_options]\ntimeout = \"a while\"\n", "storage_options.timeout"),
    ] {
        let job = dir.path().join("job.toml");
        let text = format!("[inputs]\nusage = \"u\"\nserved_entities = \"s\"\n[output]\nlocation = \"out\"\n{setting}");
        std::fs::write(&job, text).expect("job file");
        let output = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
            .args(["run", "--config"])
            .arg(&job)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{setting}: {stderr}");
        assert!(stderr.contains(expected), "{setting}: {stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_gateway-analytics"))
        .args(["run", "--config", "job.toml", "--deadline", "soon"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "a bad --deadline is a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("neither minutes"));
}
