//! How fast `parse_body` reads real bodies: one JSON string literal per line of FILE (a body,
//! encoded), decoded first, then every body parsed and timed: wall time and, on Linux, the
//! process's CPU time (what a loaded machine does not inflate).
//!
//! ```sh
//! cargo run --release -p gateway-json --example parse_speed -- bodies.jsonl
//! ```

use std::time::Instant;

/// The process's user + system CPU seconds (Linux `/proc/self/stat`, 100 ticks a second); 0
/// elsewhere.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_speed FILE (one JSON string per line)")?;
    let text = std::fs::read_to_string(path)?;
    let bodies: Vec<String> = text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let bytes: usize = bodies.iter().map(String::len).sum();
    let (started, cpu_started) = (Instant::now(), cpu_seconds());
    let mut with_usage = 0usize;
    for body in &bodies {
        with_usage += usize::from(gateway_json::parse_body(body).usage.is_some());
    }
    let (seconds, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_started);
    println!(
        "{} bodies, {:.0} MB, {with_usage} with usage: {seconds:.2} s wall, {cpu:.2} s CPU, {:.0} MB/s of CPU, \
         {:.2} us of CPU a body",
        bodies.len(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / cpu,
        cpu * 1e6 / bodies.len() as f64
    );
    Ok(())
}
