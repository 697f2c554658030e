//! How fast `parse_body` reads real bodies: one JSON string literal per line of FILE (a body,
//! encoded), decoded first, then every body parsed and timed with `parse_body` and with the
//! reference reader `parse_body_with_serde`: wall time and, on Linux, the process's CPU time (what
//! a loaded machine does not inflate); then how many bodies the fast scanner decided alone, and
//! whether the two readers gave the same result for every body (an error if not).
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

/// A body reader of the crate.
type Reader = fn(&str) -> gateway_json::ParsedBody;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_speed FILE (one JSON string per line)")?;
    let text = std::fs::read_to_string(path)?;
    let bodies: Vec<String> = text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let bytes: usize = bodies.iter().map(String::len).sum();
    let readers: [(&str, Reader); 2] =
        [("parse_body", gateway_json::parse_body), ("parse_body_with_serde", gateway_json::parse_body_with_serde)];
    for (name, read) in readers.iter().chain(&readers) {
        let (started, cpu_started) = (Instant::now(), cpu_seconds());
        let with_usage = bodies.iter().filter(|body| read(body).usage.is_some()).count();
        let (seconds, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_started);
        println!(
            "{name}: {} bodies, {:.0} MB, {with_usage} with usage: {seconds:.2} s wall, {cpu:.2} s CPU, \
             {:.0} MB/s of CPU, {:.2} us of CPU a body",
            bodies.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / cpu,
            cpu * 1e6 / bodies.len() as f64
        );
    }
    let decided = bodies.iter().filter(|body| gateway_json::scan_body(body).is_some()).count();
    let differ =
        bodies.iter().filter(|body| readers.map(|(_, read)| read(body)).windows(2).any(|w| w[0] != w[1])).count();
    println!("the fast scanner decided {decided} of {} bodies; the two readers differ on {differ}", bodies.len());
    if differ > 0 {
        return Err("the readers disagree".into());
    }
    Ok(())
}
