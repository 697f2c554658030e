//! What both readers take from a body — the `usage` object's counts, `error_code` and
//! `message` — and the one set of rules that makes a [`ParsedBody`] of them. The scanner
//! ([`crate::scan`]) fills [`Fields`] from the bytes, the reference reader from a
//! `serde_json::Value`; neither decides anything else.

use crate::{BodyKind, LimitSource, MAX_ERROR_CODE_LEN, ParsedBody, TokenUsage};

/// A count as `serde_json::Value::as_u64` sees it, or its absence.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Count {
    /// The key is not there.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A non-negative integer that fits a `u64`.
    Number(u64),
    /// Anything else (a string, a negative, fractional or huge number, an object...).
    Other,
}

impl Count {
    /// The count of a JSON value (`None`: the key is not there).
    pub(crate) fn of(value: Option<&serde_json::Value>) -> Count {
        match value {
            None => Count::Absent,
            Some(serde_json::Value::Null) => Count::Null,
            Some(value) => value.as_u64().map_or(Count::Other, Count::Number),
        }
    }

    /// Absent or null is 0, a `u64` is itself, anything else is invalid.
    pub(crate) fn value(self) -> Result<u64, ()> {
        match self {
            Count::Absent | Count::Null => Ok(0),
            Count::Number(n) => Ok(n),
            Count::Other => Err(()),
        }
    }
}

/// The counts of a `usage` object the crate reads (a key repeated: the last one, as in a
/// `serde_json::Value` map; a `*_details` value that is not an object: its count is absent).
#[derive(Default)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: Count,
    pub(crate) completion_tokens: Count,
    /// `prompt_tokens_details.cached_tokens`.
    pub(crate) cached_tokens: Count,
    /// `completion_tokens_details.reasoning_tokens`.
    pub(crate) reasoning_tokens: Count,
    pub(crate) input_tokens: Count,
    pub(crate) output_tokens: Count,
    pub(crate) cache_read_input_tokens: Count,
    pub(crate) cache_creation_input_tokens: Count,
}

impl Usage {
    /// The counts of a `usage` object read into a `serde_json::Value`.
    pub(crate) fn of(usage: &serde_json::Value) -> Usage {
        let count = |path: &[&str]| Count::of(path.iter().try_fold(usage, |value, key| value.get(key)));
        Usage {
            prompt_tokens: count(&["prompt_tokens"]),
            completion_tokens: count(&["completion_tokens"]),
            cached_tokens: count(&["prompt_tokens_details", "cached_tokens"]),
            reasoning_tokens: count(&["completion_tokens_details", "reasoning_tokens"]),
            input_tokens: count(&["input_tokens"]),
            output_tokens: count(&["output_tokens"]),
            cache_read_input_tokens: count(&["cache_read_input_tokens"]),
            cache_creation_input_tokens: count(&["cache_creation_input_tokens"]),
        }
    }

    /// The body's kind and normalised counts (the crate's convention), `NoUsage` when the
    /// object has neither shape's total, `InvalidUsage` when a count is not a `u64` or a
    /// category exceeds its total.
    fn read(&self) -> (BodyKind, Option<TokenUsage>) {
        let parsed = if self.prompt_tokens != Count::Absent {
            (|| {
                let usage = TokenUsage {
                    input_tokens: self.prompt_tokens.value()?,
                    output_tokens: self.completion_tokens.value()?,
                    cache_read_tokens: self.cached_tokens.value()?,
                    cache_write_tokens: 0,
                    reasoning_tokens: self.reasoning_tokens.value()?,
                };
                Ok::<_, ()>((BodyKind::OpenAi, usage))
            })()
        } else if self.input_tokens != Count::Absent {
            (|| {
                let uncached = self.input_tokens.value()?;
                let cache_read = self.cache_read_input_tokens.value()?;
                let cache_write = self.cache_creation_input_tokens.value()?;
                let input = uncached.checked_add(cache_read).and_then(|t| t.checked_add(cache_write)).ok_or(())?;
                let usage = TokenUsage {
                    input_tokens: input,
                    output_tokens: self.output_tokens.value()?,
                    cache_read_tokens: cache_read,
                    cache_write_tokens: cache_write,
                    reasoning_tokens: 0,
                };
                Ok::<_, ()>((BodyKind::Anthropic, usage))
            })()
        } else {
            return (BodyKind::NoUsage, None);
        };
        match parsed {
            Ok((kind, usage))
                if usage.cache_read_tokens.saturating_add(usage.cache_write_tokens) <= usage.input_tokens
                    && usage.reasoning_tokens <= usage.output_tokens =>
            {
                (kind, Some(usage))
            }
            _ => (BodyKind::InvalidUsage, None),
        }
    }
}

/// A top-level string field: not there, `null`, a string, or another value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text<'a> {
    Absent,
    Null,
    Str(&'a str),
    Other,
}

impl<'a> Text<'a> {
    /// The field read into a `serde_json::Value` (`None`: not there).
    pub(crate) fn of(value: Option<&'a serde_json::Value>) -> Text<'a> {
        match value {
            None => Text::Absent,
            Some(serde_json::Value::Null) => Text::Null,
            Some(serde_json::Value::String(text)) => Text::Str(text),
            Some(_) => Text::Other,
        }
    }
}

/// The three top-level fields a body is read for.
pub(crate) struct Fields<'a> {
    /// The `usage` value's counts when it is an object.
    pub(crate) usage: Option<Usage>,
    pub(crate) error_code: Text<'a>,
    pub(crate) message: Text<'a>,
}

impl Fields<'_> {
    /// The body they make: a usage shape when `usage` has one; else an error envelope when
    /// there is an `error_code` (its code kept when it is a short upper-case identifier, `OTHER`
    /// otherwise; for `REQUEST_LIMIT_EXCEEDED`, which limit refused the call, from `message`);
    /// else a body without usage.
    pub(crate) fn parsed(self) -> ParsedBody {
        if let Some(usage) = &self.usage {
            let (kind, usage) = usage.read();
            if kind != BodyKind::NoUsage {
                return ParsedBody { kind, usage, error_code: None, limit_source: None };
            }
        }
        let code = match self.error_code {
            Text::Absent | Text::Null => return ParsedBody::only(BodyKind::NoUsage),
            Text::Str(code)
                if !code.is_empty()
                    && code.len() <= MAX_ERROR_CODE_LEN
                    && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
            {
                code.to_string()
            }
            Text::Str(_) | Text::Other => "OTHER".to_string(),
        };
        let limit_source = (code == "REQUEST_LIMIT_EXCEEDED").then(|| match self.message {
            Text::Str(message) if message.contains("User defined rate limit") => LimitSource::UserDefined,
            _ => LimitSource::WorkspaceOrProvider,
        });
        ParsedBody { kind: BodyKind::Error, usage: None, error_code: Some(code), limit_source }
    }
}
