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
* Spark's nesting limit is 1000, serde_json's 128: a text with 128 or more `[`/`{` characters has
  its depth counted outside strings (a fold over its brackets, only for such texts).
* Spark reads a JSON string into a STRING field unquoted, so "10" and 10 look alike: a count is
  an integer only if it also reads as a DOUBLE (a JSON string does not) and its text is digits
  (a float is written with a point); an error code of digits is a string only if it does not
  read as a DOUBLE; `usage` is an object only if it reads as a STRUCT (checked when the text has
  a string-valued "usage" key or a \\u escape anywhere), a message that looks like an object or
  array only if it reads as neither a MAP nor an ARRAY.
* Duplicate keys: serde_json refuses a repeated `usage`, `error_code` or `message` at the top of
  a response body (invalid_json) and keeps the last of other repeated keys; Spark keeps the last
  of any. The expression counts the top-level keys (`json_object_keys`) when one of the three
  quoted names occurs twice in the text (or a \\u escape does), and keeps Spark's last-wins
  elsewhere, which is serde_json's.
* Whitespace-only is `empty` by the Unicode White_Space property, as Rust's `str::trim`.

Known differences left, on texts no JSON encoder writes: a lone UTF-16 surrogate escape
(`"\\ud800"`) is invalid_json in Rust and read by Spark (Jackson accepts it); a number beyond a
double's range (`1e400`) is invalid_json in Rust and an invalid count (or ignored) on Spark; an
invalid text forged to close the wrapping array itself (`{"a":1},{}]x`) reads as its first
object.

Cost: one full parse of each body (the wrapped `from_json`) and a few substring searches; the
small `usage` object is parsed again by field, and the stricter checks (a DOUBLE read, the keys,
the depth fold) run only for the rare texts that need them.
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
# A JSON string literal (possessive, so long strings cannot overflow Java's regex stack).
STRING_RE = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'


def _json(text, schema):
    return f"from_json({text}, '{schema}', {STRICT})"


def _wrapped(text, schema):
    """The strict parse of `text` as the first element of `[<text>,{}]`: an array of two
    structs of `schema` when `text` is one JSON value (any text after it breaks the array or
    changes its size), NULL when malformed."""
    return f"from_json(concat('[', {text}, ',{{}}]'), 'ARRAY<STRUCT<{schema}>>', {STRICT})"


def _has_escape(text):
    return f"instr({text}, r'\\u') > 0"


def _twice(text, needle):
    """`needle` occurs at least twice in `text` (no copy of the text, unlike split)."""
    return f"(instr({text}, '{needle}') > 0 AND locate('{needle}', {text}, instr({text}, '{needle}') + 1) > 0)"


def _too_deep(text):
    """Nested MAX_DEPTH deep or more outside strings: counted only for a text that has at least
    MAX_DEPTH `[`/`{` characters (a fold over its brackets)."""
    brackets = f"regexp_replace(regexp_replace({text}, r'{STRING_RE}', ''), r'[^\\[\\]{{}}]', '')"
    fold = (
        f"aggregate(split({brackets}, ''), named_struct('d', 0, 'm', 0), (gw_acc, gw_c) -> "
        "CASE WHEN gw_c IN ('[', '{') THEN named_struct('d', gw_acc.d + 1, 'm', greatest(gw_acc.m, gw_acc.d + 1)) "
        "WHEN gw_c IN (']', '}') THEN named_struct('d', gw_acc.d - 1, 'm', gw_acc.m) ELSE gw_acc END, "
        "gw_acc -> gw_acc.m)"
    )
    return (
        f"(length({text}) >= {2 * MAX_DEPTH} AND length({text}) - length(translate({text}, '[{{', '')) >= {MAX_DEPTH} "
        f"AND {fold} >= {MAX_DEPTH})"
    )


def _one_object(text, wrapped):
    """`text` (parsed as `wrapped`) is one JSON object within serde_json's limits; never NULL."""
    return f"COALESCE({text} RLIKE r'^[ \\t\\n\\r]*[{{]' AND size({wrapped}) = 2 AND NOT {_too_deep(text)}, false)"


def _count_ok(text, number, container=None):
    """A token count: its text (NULL: absent or null) from `container`, an object's compact JSON
    (as Spark writes a STRING field holding an object), and `number`, the same field read as a
    DOUBLE: a non-negative JSON integer that fits u64. The DOUBLE read, which a JSON string
    fails, is only needed when the object holds a string value at all (`:"`); without a
    `container` (a text as logged, not compact), always."""
    is_number = f"{number} IS NOT NULL" if container is None else f"(instr({container}, ':\"') = 0 OR {number} IS NOT NULL)"
    return (
        f"({text} IS NULL OR ({text} RLIKE r'^[0-9]+$' AND {is_number} "
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
    f = f"{a}[0]"
    repeated = " OR ".join(_twice(t, f'"{key}"') for key in ["usage", "error_code", "message"])
    duplicated = (
        f"(({repeated} OR {_has_escape(t)}) "
        f"AND exists(array('usage', 'error_code', 'message'), gw_k -> "
        f"size(filter(json_object_keys({t}), gw_j -> gw_j = gw_k)) > 1))"
    )
    usage = f"{f}.usage"
    string_usage = f"({t} RLIKE r'\"usage\"[ \\t\\n\\r]*:[ \\t\\n\\r]*\"' OR {_has_escape(t)})"
    usage_object = (
        f"({usage} LIKE '{{%' AND (NOT {string_usage} "
        f"OR {_json(t, 'usage STRUCT<prompt_tokens: STRING>')}.usage IS NOT NULL))"
    )
    parsed = (
        f"CASE WHEN NOT {_one_object(t, a)} OR {duplicated} THEN {_usage_row(repr('invalid_json'))} "
        f"ELSE COALESCE(CASE WHEN {usage_object} THEN {_usage_of(usage)} END, "
        f"CASE WHEN {f}.error_code IS NULL THEN {_usage_row(repr('no_usage'))} ELSE {_error_row(t, f)} END) END"
    )
    wrapped = _wrapped(t, "usage: STRING, error_code: STRING, message: STRING")
    body = (
        f"CASE WHEN {t} RLIKE r'(?U)^\\s*$' THEN {_usage_row(repr('empty'))} "
        f"ELSE transform(array({wrapped}), {a} -> {parsed})[0] END"
    )
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

    ok = " AND ".join(_count_ok(f"{f}.{k}", number(k)) for k in keys)
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
