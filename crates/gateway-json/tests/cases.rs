//! `cases.jsonl`: bodies with the results both implementations of these readers must give,
//! this crate and its Spark SQL built-in expressions (`jobs/src/gateway_functions.py`, tested
//! against the same file on local pyspark by `jobs/src/test_gateway_functions.py`). Counts are shown as the SQL
//! functions return them: BIGINT, saturating at i64::MAX. The fast scanner is also compared with the
//! reference reader here, on these cases, on edge cases and on mutated bodies.

use gateway_json::{parse_body, parse_body_with_serde, parse_trace_token_usage, scan_body};
use serde_json::{Value, json};

fn bigint(value: u64) -> Value {
    json!(i64::try_from(value).unwrap_or(i64::MAX))
}

#[test]
fn every_case_gives_its_expected_result() {
    let cases = include_str!("cases.jsonl");
    let mut checked = 0;
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).expect("a JSON line");
        let input = case["input"].as_str().expect("input");
        let got = match case["function"].as_str() {
            Some("gateway_usage") => {
                let parsed = parse_body(input);
                let usage = parsed.usage;
                let count = |pick: fn(&gateway_json::TokenUsage) -> u64| usage.as_ref().map(|u| bigint(pick(u)));
                json!([
                    parsed.kind.as_str(),
                    count(|u| u.input_tokens),
                    count(|u| u.output_tokens),
                    count(|u| u.cache_read_tokens),
                    count(|u| u.cache_write_tokens),
                    count(|u| u.reasoning_tokens),
                    parsed.error_code,
                    parsed.limit_source.map(|s| s.as_str()),
                ])
            }
            Some("trace_token_usage") => parse_trace_token_usage(input)
                .map_or(Value::Null, |u| json!([bigint(u.input_tokens), bigint(u.output_tokens)])),
            other => panic!("unknown function {other:?}"),
        };
        assert_eq!(got, case["expected"], "{input:?}");
        checked += 1;
    }
    assert!(checked > 50, "only {checked} cases");
}

/// Every body the fast scanner decides must get the reference reader's result, and
/// `parse_body` (scanner, then reference) must always equal the reference. Returns whether the
/// scanner decided `body`.
fn agrees_with_the_reference(body: &str) -> bool {
    let reference = parse_body_with_serde(body);
    assert_eq!(parse_body(body), reference, "{body:?}");
    match scan_body(body) {
        Some(scanned) => {
            assert_eq!(scanned, reference, "the scanner decided {body:?} differently");
            true
        }
        None => false,
    }
}

fn case_bodies() -> Vec<String> {
    include_str!("cases.jsonl")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .filter(|case| case["function"] == "gateway_usage")
        .map(|case| case["input"].as_str().expect("input").to_string())
        .collect()
}

#[test]
fn the_fast_scanner_agrees_with_serde_on_every_case() {
    let bodies = case_bodies();
    let decided = bodies.iter().filter(|body| agrees_with_the_reference(body)).count();
    // Most cases are well-formed bodies, which the scanner must decide itself.
    assert!(decided * 4 > bodies.len() * 3, "the scanner decided only {decided} of {} cases", bodies.len());
}

#[test]
fn the_fast_scanner_decides_plain_bodies_and_defers_the_doubtful_ones() {
    let decided = [
        r#"{"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        r#" {"choices":[{"message":{"content":"a \"quoted\" line\nand \u00e9 \/ \\ \t"}}],"usage":{"prompt_tokens":3}} "#,
        r#"{"data":[{"embedding":[0.0123,-4.5e-3,1E+2,-0,0]}],"usage":{"prompt_tokens":12,"total_tokens":12}}"#,
        r#"{"usage":{"input_tokens":1,"cache_read_input_tokens":null,"output_tokens":2,"input_tokens":5}}"#,
        r#"{"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":4},"prompt_tokens_details":{}}}"#,
        r#"{"usage":{"prompt_tokens":9,"prompt_tokens_details":7,"completion_tokens_details":null}}"#,
        r#"{"usage":{"prompt_tokens":-0}}"#,
        r#"{"usage":{"prompt_tokens":1.0}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551615}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
        r#"{"usage":{"prompt_tokens":"12"}}"#,
        r#"{"usage":{"prompt_tokens":true}}"#,
        r#"{"usage":[1,2]}"#,
        r#"{"usage":null,"error_code":"BAD_REQUEST"}"#,
        r#"{"usage":{},"error_code":"REQUEST_LIMIT_EXCEEDED","message":"User defined rate limit(s) exceeded"}"#,
        r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":42}"#,
        r#"{"error_code":7}"#,
        r#"{"error_code":null,"message":"x"}"#,
        r#"{"error_code":"lower case"}"#,
        "{}",
        // serde_json's `Value` reads these keys specially when its `raw_value` or
        // `arbitrary_precision` feature is on; the scanner assumes both are off.
        r#"{"usage":{"$serde_json::private::RawValue":"{\"prompt_tokens\":5}"}}"#,
        r#"{"usage":{"prompt_tokens":{"$serde_json::private::Number":"7"}}}"#,
        r#"{"usage":{"$serde_json::private::Number":"x"}}"#,
        "[]",
        "42",
        "",
        " \u{a0} ",
        "nope",
    ];
    for body in decided {
        assert!(agrees_with_the_reference(body), "the scanner deferred {body:?}");
    }
    let nested = |depth: usize| format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
    let deferred = [
        r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#.to_string(),
        r#"{"error_code":null,"error_code":"X"}"#.to_string(),
        r#"{"a":"\ud83d\ude00","usage":{"prompt_tokens":1}}"#.to_string(),
        r#"{"a":"\ud83d","usage":{"prompt_tokens":1}}"#.to_string(),
        r#"{"a":"\x","usage":{"prompt_tokens":1}}"#.to_string(),
        r#"{"a":"\u12g4"}"#.to_string(),
        r#"{"us\u0061ge":{"prompt_tokens":1}}"#.to_string(),
        r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"User defined rate \u006cimit"}"#.to_string(),
        r#"{"a":1e400,"usage":{"prompt_tokens":1}}"#.to_string(),
        r#"{"a":1e100}"#.to_string(),
        format!(r#"{{"usage":{{"prompt_tokens":{}}}}}"#, "9".repeat(400)),
        r#"{"a":01}"#.to_string(),
        r#"{"a":1.}"#.to_string(),
        r#"{"a":.5}"#.to_string(),
        r#"{"a":-}"#.to_string(),
        r#"{"a":1,}"#.to_string(),
        r#"{"a":[1,]}"#.to_string(),
        r#"{"a":tru}"#.to_string(),
        "{\"a\":\"line\nbreak\"}".to_string(),
        r#"{"usage":{"prompt_tokens":1}} x"#.to_string(),
        r#"{"usage":{"prompt_tokens":1}"#.to_string(),
        nested(100),
        nested(127),
        nested(128),
        nested(100_000),
    ];
    for body in &deferred {
        assert!(!agrees_with_the_reference(body), "the scanner decided {body:?}");
    }
    // The top-level object and 99 arrays: the deepest nesting the scanner decides.
    assert!(agrees_with_the_reference(&nested(99)));
}

/// A small deterministic random source (xorshift), so the mutated bodies are the same in
/// every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Bodies with one to three edits — a character replaced by, or an insertion of, one of JSON's
/// structural or numeric characters; a deletion; a span repeated — so that most are near-misses
/// of valid JSON that exercise each rule of the scanner.
#[test]
fn the_fast_scanner_agrees_with_serde_on_mutated_bodies() {
    const ALPHABET: &[char] = &[
        '{', '}', '[', ']', '"', ':', ',', '\\', ' ', '\n', '0', '1', '9', '-', '+', '.', 'e', 'E', 't', 'f', 'n', 'u',
        'l', 'd', '\u{1}', 'é',
    ];
    let mut seeds = case_bodies();
    seeds.extend(
        [
            r#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"a b\nc \"d\" \u00e9"},"finish_reason":"stop"}],"usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":12}}}"#,
            r#"{"id":"m","type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":70,"cache_creation_input_tokens":20}}"#,
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0123,-0.0456,1.5e-3,-2E+1]}],"usage":{"prompt_tokens":89,"total_tokens":89}}"#,
            r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"User defined rate limit(s) exceeded for endpoint: e"}"#,
        ]
        .map(String::from),
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut checked, mut decided) = (0usize, 0usize);
    for _ in 0..4_000 {
        for seed in &seeds {
            let mut chars: Vec<char> = seed.chars().collect();
            for _ in 0..=rng.below(3) {
                let at = rng.below(chars.len() + 1);
                match rng.below(4) {
                    0 if at < chars.len() => chars[at] = ALPHABET[rng.below(ALPHABET.len())],
                    1 => chars.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                    2 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => {
                        let end = (at + rng.below(12)).min(chars.len());
                        let span: Vec<char> = chars[at..end].to_vec();
                        chars.splice(at..at, span);
                    }
                }
            }
            let body: String = chars.into_iter().collect();
            decided += usize::from(agrees_with_the_reference(&body));
            checked += 1;
        }
    }
    // Enough of the mutants stay well-formed for the scanner's decisions to be tested too.
    assert!(decided * 5 > checked, "the scanner decided only {decided} of {checked} mutated bodies");
}
