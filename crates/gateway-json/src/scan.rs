//! The fast reader of a response body: one pass over the bytes that validates the JSON and
//! keeps only the top-level `usage` object's counts, `error_code` and `message` (the
//! [`Fields`] both readers fill, and make a [`ParsedBody`] of by the same rules), without
//! building a `serde_json::Value` or decoding a string it does not need.
//!
//! It decides only the bodies it is sure of. Anything unusual — a string with a `\u` escape of
//! a surrogate, a key with an escape, a duplicate top-level field, nesting deeper than
//! [`MAX_DEPTH`], a number whose magnitude could leave `f64`'s range, or any syntax error —
//! makes it return `None`, and [`crate::parse_body`] asks the reference reader
//! ([`crate::parse_body_with_serde`]) instead. So the grammar it accepts is a subset of what
//! serde_json accepts, and on that subset both give the same [`ParsedBody`] (checked against
//! each other by this crate's tests on every case, on mutated bodies, and by the fuzz target).
//!
//! This holds for serde_json without its `raw_value` and `arbitrary_precision` features (off in
//! this workspace): with either, its `Value` reads the private keys `$serde_json::private::*`
//! specially; a test fails if one gets enabled.

use crate::fields::{Count, Fields, Text, Usage};
use crate::{BodyKind, ParsedBody};

/// Deepest nesting decided here (the top-level object is depth 1); serde_json accepts 127
/// levels, so everything decided here is within its limit.
const MAX_DEPTH: usize = 100;

/// Longest run of integer digits (and of exponent digits: 2) decided here, so that every
/// number decided here is finite as an `f64` (serde_json rejects a number out of its range).
const MAX_INTEGER_DIGITS: usize = 100;

/// A position in a body's text.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// The fast reader alone: the body's [`ParsedBody`] when it is sure of it, `None` when only
/// the reference reader can decide (see the module's documentation).
pub fn scan_body(text: &str) -> Option<ParsedBody> {
    let mut scanner = Scanner { text, bytes: text.as_bytes(), at: 0 };
    scanner.skip_whitespace();
    if scanner.peek() != Some(b'{') {
        // Blank (Unicode whitespace included, as `parse_body_with_serde` trims), or not an
        // object: a bare value, an array, not JSON, which serde_json's map visitor refuses.
        return Some(ParsedBody::only(if text.trim().is_empty() { BodyKind::Empty } else { BodyKind::InvalidJson }));
    }
    let fields = scanner.top_level()?;
    scanner.skip_whitespace();
    if scanner.at != scanner.bytes.len() {
        return None;
    }
    Some(fields.parsed())
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `byte` (after whitespace) or gives up.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// The top-level object: its `usage` (when an object), `error_code` and `message`.
    fn top_level(&mut self) -> Option<Fields<'a>> {
        self.expect(b'{')?;
        let (mut usage, mut usage_seen) = (None, false);
        let (mut error_code, mut message) = (Text::Absent, Text::Absent);
        self.members(|scanner, key| {
            match key {
                "usage" => {
                    // A repeated field is an error for the reference reader: let it decide.
                    if std::mem::replace(&mut usage_seen, true) {
                        return None;
                    }
                    usage = scanner.usage_value()?;
                }
                "error_code" | "message" => {
                    let slot = if key == "error_code" { &mut error_code } else { &mut message };
                    if *slot != Text::Absent {
                        return None;
                    }
                    *slot = scanner.text_value(1)?;
                }
                _ => scanner.skip_value(1)?,
            }
            Some(())
        })?;
        Some(Fields { usage, error_code, message })
    }

    /// The members of the object whose `{` was just consumed, each handed to
    /// `member` with its key (a key with an escape gives up), through the closing `}`.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.expect(b'"')?;
            let key = self.plain_string()?;
            self.expect(b':')?;
            self.skip_whitespace();
            member(self, key)?;
            if self.closed_after_item(b'}')? {
                return Some(());
            }
        }
    }

    /// After an item of an object or array: consumes `,` (`false`: more items) or `close`
    /// (`true`: the container ends); anything else gives up.
    fn closed_after_item(&mut self, close: u8) -> Option<bool> {
        self.skip_whitespace();
        let byte = self.peek()?;
        if byte != b',' && byte != close {
            return None;
        }
        self.at += 1;
        Some(byte == close)
    }

    /// The value of `usage`: its counts when an object, `None` (no usage) for any other value.
    fn usage_value(&mut self) -> Option<Option<Usage>> {
        if self.peek()? != b'{' {
            self.skip_value(1)?;
            return Some(None);
        }
        self.at += 1;
        let mut usage = Usage::default();
        self.members(|scanner, key| {
            match key {
                "prompt_tokens" => usage.prompt_tokens = scanner.count(2)?,
                "completion_tokens" => usage.completion_tokens = scanner.count(2)?,
                "input_tokens" => usage.input_tokens = scanner.count(2)?,
                "output_tokens" => usage.output_tokens = scanner.count(2)?,
                "cache_read_input_tokens" => usage.cache_read_input_tokens = scanner.count(2)?,
                "cache_creation_input_tokens" => usage.cache_creation_input_tokens = scanner.count(2)?,
                "prompt_tokens_details" => usage.cached_tokens = scanner.detail(2, "cached_tokens")?,
                "completion_tokens_details" => usage.reasoning_tokens = scanner.detail(2, "reasoning_tokens")?,
                _ => scanner.skip_value(2)?,
            }
            Some(())
        })?;
        Some(Some(usage))
    }

    /// `wanted` inside a details object (absent when the value is not an object, as
    /// `Value::get` on a non-object is `None`).
    fn detail(&mut self, depth: usize, wanted: &str) -> Option<Count> {
        if self.peek()? != b'{' {
            self.skip_value(depth)?;
            return Some(Count::Absent);
        }
        self.at += 1;
        let mut found = Count::Absent;
        self.members(|scanner, key| {
            if key == wanted {
                found = scanner.count(depth + 1)?;
            } else {
                scanner.skip_value(depth + 1)?;
            }
            Some(())
        })?;
        Some(found)
    }

    /// A value read as a count.
    fn count(&mut self, depth: usize) -> Option<Count> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| Count::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.skip_value(depth).map(|()| Count::Other),
        }
    }

    /// A value read as a string field (`error_code`, `message`).
    fn text_value(&mut self, depth: usize) -> Option<Text<'a>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| Text::Null),
            b'"' => {
                self.at += 1;
                // A string with an escape would have to be decoded: let the reference decide.
                self.plain_string().map(Text::Str)
            }
            _ => self.skip_value(depth).map(|()| Text::Other),
        }
    }

    /// Skips one value whose container is at `depth`, validating it.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.skip_string()
            }
            b'{' => {
                if depth + 1 > MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                self.members(|scanner, _| scanner.skip_value(depth + 1))
            }
            b'[' => {
                if depth + 1 > MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                self.skip_whitespace();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_whitespace();
                    self.skip_value(depth + 1)?;
                    if self.closed_after_item(b']')? {
                        return Some(());
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A JSON number: a count when it is a plain integer that fits a `u64`, else `Other`;
    /// `None` for bad syntax or a magnitude that might leave `f64`'s range.
    fn number(&mut self) -> Option<Count> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = self.digits();
        if digits == 0 || digits > MAX_INTEGER_DIGITS {
            return None;
        }
        let integer = &self.bytes[self.at - digits..self.at];
        if digits > 1 && integer[0] == b'0' {
            return None;
        }
        let mut plain = !negative;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
            plain = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            let exponent_digits = self.digits();
            if exponent_digits == 0 || exponent_digits > 2 {
                return None;
            }
            plain = false;
        }
        if !plain {
            return Some(Count::Other);
        }
        let value = integer.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
        Some(value.map_or(Count::Other, Count::Number))
    }

    /// Consumes ASCII digits; how many.
    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    /// The rest of a string whose opening quote was consumed, when it has no escape: its text.
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at;
        let end = start + find_special(&self.bytes[start..]);
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quote positions, so this is a char boundary.
        self.text.get(start..end)
    }

    /// Skips the rest of a string whose opening quote was consumed, validating its escapes.
    fn skip_string(&mut self) -> Option<()> {
        loop {
            self.at += find_special(&self.bytes[self.at..]);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            let hex = self.text.get(self.at + 1..self.at + 5)?;
                            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return None;
                            }
                            let unit = u16::from_str_radix(hex, 16).ok()?;
                            // Surrogates must pair up: the reference reader checks that.
                            if (0xD800..=0xDFFF).contains(&unit) {
                                return None;
                            }
                            self.at += 5;
                        }
                        _ => return None,
                    }
                }
                // A control character: invalid inside a string.
                _ => return None,
            }
        }
    }
}

/// The offset of the first `"`, `\` or control character in `bytes` (or its length): 32 bytes
/// at a time, without branches inside a chunk, which the compiler turns into vector compares.
fn find_special(bytes: &[u8]) -> usize {
    let special = |b: u8| u8::from(b == b'"') | u8::from(b == b'\\') | u8::from(b < 0x20);
    let mut at = 0;
    for chunk in bytes.chunks_exact(32) {
        if chunk.iter().fold(0u8, |hits, &b| hits | special(b)) != 0 {
            break;
        }
        at += 32;
    }
    at + bytes[at..].iter().position(|&b| special(b) != 0).unwrap_or(bytes.len() - at)
}
