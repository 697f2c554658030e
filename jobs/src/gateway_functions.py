"""The project's two SQL functions for Spark: a line-for-line port of crates/gateway-json.

`gateway_usage(response)` and `trace_token_usage(json)` return the same structs as the Rust
functions the DataFusion session registers (src/json_functions.rs), so the queries in
`queries/` give the same rows on both engines. The Spark parity test
(scripts/spark-parity.sh) checks that on the demo data. Known differences, on bodies that do
not occur in gateway logs: JSON nested 128 levels deep or more is `invalid_json` in Rust and
here (by a depth check before parsing); lone UTF-16 surrogates in escapes and duplicate keys
are accepted by Python's json module. crates/gateway-json/tests/cases.jsonl holds bodies with
the results both implementations must give (tested on each side).
"""

import json

GATEWAY_USAGE_TYPE = (
    "kind STRING, input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, "
    "cache_write_tokens BIGINT, reasoning_tokens BIGINT, error_code STRING, limit_source STRING"
)
TRACE_TOKEN_USAGE_TYPE = "input_tokens BIGINT, output_tokens BIGINT"

MAX_ERROR_CODE_LEN = 64
_U64_MAX = 2**64 - 1
_I64_MAX = 2**63 - 1
# serde_json fails on documents nested 128 levels deep or more.
_MAX_DEPTH = 127


class _Invalid(Exception):
    pass


def _reject_constant(name):
    raise ValueError(name)


def _loads(text):
    """json.loads with serde_json's limits: no NaN/Infinity, fewer than 128 levels of nesting."""
    if _depth(text) > _MAX_DEPTH:
        raise ValueError("too deep")
    return json.loads(text, parse_constant=_reject_constant)


def _depth(text):
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _count(value):
    """A token count: absent or null is 0; else a non-negative integer that fits u64."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > _U64_MAX:
        raise _Invalid()
    return value


def _field(usage, path):
    value = usage
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _read_usage(usage):
    def get(*path):
        return _count(_field(usage, path))

    try:
        if "prompt_tokens" in usage:
            kind = "openai"
            counts = [
                get("prompt_tokens"),
                get("completion_tokens"),
                get("prompt_tokens_details", "cached_tokens"),
                0,
                get("completion_tokens_details", "reasoning_tokens"),
            ]
        elif "input_tokens" in usage:
            kind = "anthropic"
            uncached = get("input_tokens")
            cache_read = get("cache_read_input_tokens")
            cache_write = get("cache_creation_input_tokens")
            total = uncached + cache_read + cache_write
            if total > _U64_MAX:
                raise _Invalid()
            counts = [total, get("output_tokens"), cache_read, cache_write, 0]
        else:
            return "no_usage", None
    except _Invalid:
        return "invalid_usage", None
    inp, out, cache_read, cache_write, reasoning = counts
    if min(cache_read + cache_write, _U64_MAX) <= inp and reasoning <= out:
        return kind, counts
    return "invalid_usage", None


def _error_code(value):
    if (
        isinstance(value, str)
        and value
        and len(value.encode("utf-8")) <= MAX_ERROR_CODE_LEN
        and all(c.isascii() and (c.isupper() or c.isdigit() or c == "_") for c in value)
    ):
        return value
    return "OTHER"


def _bigint(value):
    return None if value is None else min(value, _I64_MAX)


def _usage_row(kind, counts=None, error_code=None, limit_source=None):
    counts = counts or [None] * 5
    return (kind, *[_bigint(c) for c in counts], error_code, limit_source)


def gateway_usage(text):
    """The kind, normalised token counts and error code of one response body."""
    if text is None:
        return None
    if not text.strip():
        return _usage_row("empty")
    try:
        body = _loads(text)
    except (ValueError, RecursionError):
        return _usage_row("invalid_json")
    if not isinstance(body, dict):
        return _usage_row("invalid_json")
    usage = body.get("usage")
    if isinstance(usage, dict):
        kind, counts = _read_usage(usage)
        if kind != "no_usage":
            return _usage_row(kind, counts)
    code = body.get("error_code")
    if code is None:
        return _usage_row("no_usage")
    code = _error_code(code)
    limit_source = None
    if code == "REQUEST_LIMIT_EXCEEDED":
        message = body.get("message")
        message = message if isinstance(message, str) else ""
        limit_source = "user_defined" if "User defined rate limit" in message else "workspace_or_provider"
    return _usage_row("error", error_code=code, limit_source=limit_source)


def trace_token_usage(text):
    """Input and output tokens from MLflow's mlflow.trace.tokenUsage trace metadata."""
    if text is None:
        return None
    try:
        value = _loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or ("input_tokens" not in value and "output_tokens" not in value):
        return None
    try:
        cache_read = _count(value.get("cache_read_input_tokens"))
        cache_write = _count(value.get("cache_creation_input_tokens"))
        total = _count(value.get("input_tokens")) + cache_read + cache_write
        output = _count(value.get("output_tokens"))
    except _Invalid:
        return None
    if total > _U64_MAX:
        return None
    return (_bigint(total), _bigint(output))


def register(spark):
    """Registers both functions on a Spark session under their SQL names. The functions travel
    to the Python workers by value, so the workers need no copy of this module."""
    import sys

    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spark.udf.register("gateway_usage", gateway_usage, GATEWAY_USAGE_TYPE)
    spark.udf.register("trace_token_usage", trace_token_usage, TRACE_TOKEN_USAGE_TYPE)
