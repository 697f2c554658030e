"""The project's two SQL functions for Spark, as Spark SQL built-in expressions (no Python UDF).

`gateway_usage(response)` and `trace_token_usage(json)` are functions of the DataFusion session
(src/json_functions.rs, over crates/gateway-json). Spark 3.5 cannot define SQL functions, so the
Spark runner rewrites each call in the manifest's SQL into the expression built here (`inline`):
`from_json` with a schema, `json_object_keys` and `json_array_length`, evaluated in the JVM, with
no row sent to a Python worker. They return the same structs as the Rust functions, so the
queries in `queries/` give the same rows on both engines; test_gateway_functions.py holds them to
crates/gateway-json/tests/cases.jsonl on local pyspark, and scripts/spark-parity.sh to DataFusion.

Where Spark's JSON reading differs from serde_json's, and what the expressions do about it:

* Spark reads the first JSON value and ignores what follows (`{"a":1} x`, `{}{}`): the text is
  parsed as the first element of `[<text>,{}]`, which must be an array of exactly two elements;
  text after the value breaks the array or changes its size.
* Spark accepts single quotes and NaN/Infinity unless told not to: `from_json` runs with
  `allowSingleQuotes` and `allowNonNumericNumbers` off (Jackson's other defaults are strict:
  no comments, trailing commas, leading zeros or raw control characters).
* Spark's nesting limit is 1000, serde_json's 128: the wrapped parse runs with Jackson's
  `maxNestingDepth` at 128 (an option since Spark 3.5), which the wrapping array's own level
  makes serde_json's limit.
* Spark reads a JSON string into a STRING field unquoted, so "10" and 10 look alike: a count is
  an integer only if its text is digits (a float is written with a point) and, when its object
  holds a string value at all, it also reads as a DOUBLE (a JSON string does not); an error code
  of digits is a string only if it does not read as a DOUBLE; `usage` is an object only if it
  reads as a STRUCT (checked when the text has a "usage" name, plain or escaped, holding a
  string), a message that looks like an object or array only if it reads as neither a MAP nor
  an ARRAY.
* Duplicate keys: serde_json refuses a repeated `usage`, `error_code` or `message` at the top of
  a response body (invalid_json) and keeps the last of other repeated keys; Spark keeps the last
  of any. The expression reads the top-level names (`json_object_keys`, which decodes escapes)
  and refuses a repeat of those three; elsewhere Spark's last-wins is serde_json's.
* Whitespace-only is `empty` by the Unicode White_Space property, as Rust's `str::trim`.

Known differences left, on texts no JSON encoder writes: a lone UTF-16 surrogate escape
(`"\\ud800"`) is invalid_json in Rust and read by Spark (Jackson accepts it); a number beyond a
double's range (`1e400`) is invalid_json in Rust and an invalid count (or ignored) on Spark; an
invalid text forged to close the wrapping array itself (`{"a":1},{}]x`) reads as its first
object.

Cost (docs/PERFORMANCE.md, "The Spark mode's JSON readers"): per body, one full parse (the
wrapped `from_json`), one read of its top-level names (`json_object_keys`, which skips what is
below them) and, for a body with a `usage` object, one pattern search and a parse of that small
object; the stricter checks (a DOUBLE read, a STRUCT read) run only for the rare texts that need
them. No search of a whole body for each name (Spark's `instr` walks the text character by
character) and no count of its brackets. The parse results are bound with
`transform(array(x), v -> ...)`: `from_json` has no generated code in Spark 3.5 (it is
evaluated as an interpreted node even inside whole-stage code generation), so a `from_json`
over a field of another one would evaluate, and parse the body, again for each use; the binding
parses it once.
"""

import re

GATEWAY_USAGE_TYPE = (
    "kind STRING, input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, "
    "cache_write_tokens BIGINT, reasoning_tokens BIGINT, error_code STRING, limit_source STRING"
)
TRACE_TOKEN_USAGE_TYPE = "input_tokens BIGINT, output_tokens BIGINT"

MAX_ERROR_CODE_LEN = 64
U64_MAX = "18446744073709551615"
I64_MAX = "9223372036854775807"
MAX_DEPTH = 128  # serde_json refuses documents nested this deep or deeper

STRICT = "map('allowSingleQuotes', 'false', 'allowNonNumericNumbers', 'false')"
# The wrapped parse also refuses what serde_json refuses for depth: the text nested MAX_DEPTH deep
# is MAX_DEPTH + 1 deep inside the wrapping array, one more than Jackson then allows.
STRICT_WRAPPED = (
    "map('allowSingleQuotes', 'false', 'allowNonNumericNumbers', 'false', "
    f"'maxNestingDepth', '{MAX_DEPTH}')"
)

# A "usage" name holding a string, its letters plain or \u-escaped (JSON's only two spellings of
# a letter); one search of the body.
STRING_USAGE = r'"(?:u|\\u0075)(?:s|\\u0073)(?:a|\\u0061)(?:g|\\u0067)(?:e|\\u0065)"[ \t\n\r]*:[ \t\n\r]*"'
# A text holding a string value anywhere (a count read as STRING cannot tell "10" from 10).
STRING_VALUE = r':[ \t\n\r]*"'


def _json(text, schema):
    return f"from_json({text}, '{schema}', {STRICT})"


def _wrapped(text, schema):
    """The strict parse of `text` as the first element of `[<text>,{}]`: an array of two
    structs of `schema` when `text` is one JSON value (any text after it breaks the array or
    changes its size) nested less than MAX_DEPTH deep, NULL when malformed or deeper."""
    return f"from_json(concat('[', {text}, ',{{}}]'), 'ARRAY<STRUCT<{schema}>>', {STRICT_WRAPPED})"


def _has_escape(text):
    return f"instr({text}, r'\\u') > 0"


def _one_object(text, wrapped):
    """`text` (parsed as `wrapped`) is one JSON object within serde_json's limits; never NULL.
    The size is checked first: the anchored pattern then matches at once on an object."""
    return f"COALESCE(size({wrapped}) = 2 AND {text} RLIKE r'^[ \\t\\n\\r]*[{{]', false)"


def _count_ok(text, number, container, compact=True):
    """A token count: its text (NULL: absent or null) from `container`, and `number`, the same
    field read as a DOUBLE: a non-negative JSON integer that fits u64. The DOUBLE read, which a
    JSON string fails, is only needed when `container` holds a string value at all: `:"` in a
    `compact` object's JSON (as Spark writes a STRING field holding an object), `:` then
    whitespace then `"` in a text as logged."""
    holds_string = f"instr({container}, ':\"') > 0" if compact else f"{container} RLIKE r'{STRING_VALUE}'"
    return (
        f"({text} IS NULL OR ({text} RLIKE r'^[0-9]+$' AND (NOT {holds_string} OR {number} IS NOT NULL) "
        f"AND (length({text}) < 20 OR (length({text}) = 20 AND {text} <= '{U64_MAX}'))))"
    )


def _dec(text):
    return f"COALESCE(CAST({text} AS DECIMAL(20, 0)), 0)"


def _bigint(value):
    return f"CAST(LEAST({value}, CAST({I64_MAX} AS DECIMAL(21, 0))) AS BIGINT)"


def _usage_row(kind, counts=None, error_code="CAST(NULL AS STRING)", limit_source="CAST(NULL AS STRING)"):
    names = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"]
    counts = counts or ["CAST(NULL AS BIGINT)"] * 5
    fields = ", ".join(f"'{n}', {c}" for n, c in zip(names, counts))
    return f"named_struct('kind', {kind}, {fields}, 'error_code', {error_code}, 'limit_source', {limit_source})"


def _checked(kind, ok, counts, extra="true"):
    inp, out, cache_read, cache_write, reasoning = counts
    valid = (
        f"{ok} AND {extra} AND LEAST({cache_read} + {cache_write}, CAST({U64_MAX} AS DECIMAL(21, 0))) <= {inp} "
        f"AND {reasoning} <= {out}"
    )
    return (
        f"CASE WHEN {valid} THEN {_usage_row(repr(kind), [_bigint(c) for c in counts])} "
        f"ELSE {_usage_row(repr('invalid_usage'))} END"
    )


def _usage_of(usage):
    """The row of a `usage` object's compact JSON text, NULL when it has neither prompt_tokens
    nor input_tokens."""
    v, d = "gw_v", "gw_d"
    texts = _json(
        usage,
        "prompt_tokens STRING, completion_tokens STRING, input_tokens STRING, output_tokens STRING, "
        "cache_read_input_tokens STRING, cache_creation_input_tokens STRING, prompt_tokens_details STRING, "
        "completion_tokens_details STRING",
    )

    def has(key):  # a key with a null value reads as NULL: then look at the keys
        return (
            f"({v}.{key} IS NOT NULL OR (instr({usage}, '\"{key}\"') > 0 "
            f"AND array_contains(json_object_keys({usage}), '{key}')))"
        )

    def number(key):
        return f"{_json(usage, key + ' DOUBLE')}.{key}"

    def detail(parent, child):
        # usage.parent.child's text when parent is an object (a string holding JSON is not).
        is_object = (
            f"({v}.{parent} LIKE '{{%' AND (instr({usage}, '\"{parent}\":\"') = 0 "
            f"OR {_json(usage, parent + ' STRUCT<' + child + ': STRING>')}.{parent} IS NOT NULL))"
        )
        return f"CASE WHEN {is_object} THEN {_json(f'{v}.{parent}', child + ' STRING')}.{child} END"

    openai_ok = " AND ".join(
        [
            _count_ok(f"{v}.prompt_tokens", number("prompt_tokens"), usage),
            _count_ok(f"{v}.completion_tokens", number("completion_tokens"), usage),
            _count_ok(f"{d}.cached", f"{_json(f'{v}.prompt_tokens_details', 'cached_tokens DOUBLE')}.cached_tokens",
                      f"{v}.prompt_tokens_details"),
            _count_ok(f"{d}.reasoning",
                      f"{_json(f'{v}.completion_tokens_details', 'reasoning_tokens DOUBLE')}.reasoning_tokens",
                      f"{v}.completion_tokens_details"),
        ]
    )
    openai_counts = [_dec(f"{v}.prompt_tokens"), _dec(f"{v}.completion_tokens"), _dec(f"{d}.cached"), "0",
                     _dec(f"{d}.reasoning")]
    openai = (
        f"transform(array(named_struct('cached', {detail('prompt_tokens_details', 'cached_tokens')}, "
        f"'reasoning', {detail('completion_tokens_details', 'reasoning_tokens')})), "
        f"{d} -> {_checked('openai', openai_ok, openai_counts)})[0]"
    )
    anthropic_keys = ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
    anthropic_ok = " AND ".join(_count_ok(f"{v}.{k}", number(k), usage) for k in anthropic_keys)
    total = f"({_dec(f'{v}.input_tokens')} + {_dec(f'{v}.cache_read_input_tokens')} + {_dec(f'{v}.cache_creation_input_tokens')})"
    anthropic_counts = [total, _dec(f"{v}.output_tokens"), _dec(f"{v}.cache_read_input_tokens"),
                        _dec(f"{v}.cache_creation_input_tokens"), "0"]
    anthropic = _checked("anthropic", anthropic_ok, anthropic_counts, f"{total} <= CAST({U64_MAX} AS DECIMAL(21, 0))")
    body = f"CASE WHEN {has('prompt_tokens')} THEN {openai} WHEN {has('input_tokens')} THEN {anthropic} END"
    return f"transform(array({texts}), {v} -> {body})[0]"


def _error_row(body, fields):
    code = f"{fields}.error_code"
    number = f"{_json(body, 'error_code DOUBLE')}.error_code"
    clean = (
        f"({code} RLIKE r'^[A-Z0-9_]{{1,{MAX_ERROR_CODE_LEN}}}$' "
        f"AND NOT ({code} RLIKE r'^[0-9]+$' AND {number} IS NOT NULL))"
    )
    message = f"{fields}.message"
    not_a_string = (
        f"(({message} LIKE '{{%' OR {message} LIKE '[%') AND ({_json(body, 'message MAP<STRING, STRING>')}.message IS NOT NULL "
        f"OR {_json(body, 'message ARRAY<STRING>')}.message IS NOT NULL))"
    )
    user_defined = f"(COALESCE({message} LIKE '%User defined rate limit%', false) AND NOT {not_a_string})"
    code_value = f"CASE WHEN {clean} THEN {code} ELSE 'OTHER' END"
    limit = (
        f"CASE WHEN {code_value} = 'REQUEST_LIMIT_EXCEEDED' THEN "
        f"CASE WHEN {user_defined} THEN 'user_defined' ELSE 'workspace_or_provider' END END"
    )
    return _usage_row("'error'", error_code=code_value, limit_source=limit)


def gateway_usage_sql(arg):
    """The Spark SQL expression of `gateway_usage(arg)`."""
    t, a = "gw_text", "gw_a"
    w, names = f"{a}.w", f"{a}.names"
    f = f"{w}[0]"
    duplicated = f"size({names}) > size(array_distinct({names}))"
    usage = f"{f}.usage"
    string_usage = f"{t} RLIKE r'{STRING_USAGE}'"
    usage_object = (
        f"({usage} LIKE '{{%' AND (NOT {string_usage} "
        f"OR {_json(t, 'usage STRUCT<prompt_tokens: STRING>')}.usage IS NOT NULL))"
    )
    parsed = (
        f"CASE WHEN {w} IS NULL AND {t} RLIKE r'(?U)^\\s*$' THEN {_usage_row(repr('empty'))} "
        f"WHEN NOT {_one_object(t, w)} OR {duplicated} THEN {_usage_row(repr('invalid_json'))} "
        f"ELSE COALESCE(CASE WHEN {usage_object} THEN {_usage_of(usage)} END, "
        f"CASE WHEN {f}.error_code IS NULL THEN {_usage_row(repr('no_usage'))} ELSE {_error_row(t, f)} END) END"
    )
    wrapped = _wrapped(t, "usage: STRING, error_code: STRING, message: STRING")
    # The top-level names serde_json refuses twice, as read (a \u escape can spell them): one
    # read of the names is cheaper than searching the text for each name twice.
    named = f"filter(json_object_keys({t}), gw_k -> gw_k IN ('usage', 'error_code', 'message'))"
    body = f"transform(array(named_struct('w', {wrapped}, 'names', {named})), {a} -> {parsed})[0]"
    return f"(CASE WHEN ({arg}) IS NULL THEN NULL ELSE transform(array({arg}), {t} -> {body})[0] END)"


def trace_token_usage_sql(arg):
    """The Spark SQL expression of `trace_token_usage(arg)`."""
    t, a = "gw_trace", "gw_ta"
    f = f"{a}[0]"
    keys = ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
    wrapped = _wrapped(t, ", ".join(k + ": STRING" for k in keys))

    def number(key):
        return f"{_json(t, key + ' DOUBLE')}.{key}"

    def has(key):
        return (
            f"({f}.{key} IS NOT NULL OR ((instr({t}, '\"{key}\"') > 0 OR {_has_escape(t)}) "
            f"AND array_contains(json_object_keys({t}), '{key}')))"
        )

    ok = " AND ".join(_count_ok(f"{f}.{k}", number(k), t, compact=False) for k in keys)
    total = " + ".join(_dec(f"{f}.{k}") for k in ["input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"])
    valid = (
        f"{_one_object(t, a)} AND ({has('input_tokens')} OR {has('output_tokens')}) "
        f"AND {ok} AND ({total}) <= CAST({U64_MAX} AS DECIMAL(21, 0))"
    )
    row = f"named_struct('input_tokens', {_bigint(f'({total})')}, 'output_tokens', {_bigint(_dec(f'{f}.output_tokens'))})"
    inner = f"transform(array({wrapped}), {a} -> CASE WHEN {valid} THEN {row} END)[0]"
    return f"(CASE WHEN ({arg}) IS NULL THEN NULL ELSE transform(array({arg}), {t} -> {inner})[0] END)"


FUNCTIONS = {"gateway_usage": gateway_usage_sql, "trace_token_usage": trace_token_usage_sql}
CALL = re.compile(r"\b(gateway_usage|trace_token_usage)\(((?:[^()]|\([^()]*\))+)\)")
LEFT = re.compile(r"\b(gateway_usage|trace_token_usage)\(\s*[^)\s]")


def inline(sql):
    """`sql` with each call of the two functions replaced by its expression, on one line (so a
    call in a `--` comment stays one). An argument may hold one level of parentheses; a call
    this cannot rewrite is an error, not a query Spark would refuse later."""
    text = CALL.sub(lambda m: FUNCTIONS[m.group(1)](m.group(2).strip()), sql)
    left = LEFT.search(text)
    if left:
        raise ValueError(f"cannot rewrite the call of {left.group(1)} at: {text[left.start():left.start() + 80]}")
    return text
