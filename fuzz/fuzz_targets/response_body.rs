//! Fuzzes the response-body reader: any bytes must give a classification, never a panic, the
//! normalised counts must respect the convention (categories within their totals), and the fast
//! scanner must give the reference reader's result on every body it decides.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = gateway_json::parse_body(text);
    assert_eq!(parsed, gateway_json::parse_body_with_serde(text));
    if let Some(usage) = parsed.usage {
        assert!(usage.cache_read_tokens + usage.cache_write_tokens <= usage.input_tokens);
        assert!(usage.reasoning_tokens <= usage.output_tokens);
    }
    if let Some(code) = parsed.error_code {
        assert!(code.len() <= gateway_json::MAX_ERROR_CODE_LEN);
    }
    let _ = gateway_json::parse_trace_token_usage(text);
});
