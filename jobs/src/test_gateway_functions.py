"""Spark's built-in JSON expressions for the two functions (gateway_functions.py) give the results
in crates/gateway-json/tests/cases.jsonl (the Rust crate is tested against the same file), plus
the cases where Spark's JSON reading differs from serde_json's. No Python UDF: the expressions
run in Spark's JVM on local pyspark.

    python3 -m unittest discover -s jobs/src -p 'test_*.py'

Needs pyspark (scripts/spark-parity.sh runs it in its virtualenv); without it the Spark test is
skipped and only the SQL rewriting is checked.
"""

import json
import os
import unittest

import gateway_functions

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "gateway-json", "tests", "cases.jsonl")

try:
    import pyspark  # noqa: F401

    HAVE_SPARK = True
except ImportError:
    HAVE_SPARK = False

INVALID = ["invalid_json", None, None, None, None, None, None, None]
# Where Spark's JSON reading differs from serde_json's (gateway_functions.py's docstring): the
# expressions must still give serde_json's result.
SPARK_DIFFERENCES = [
    ("gateway_usage", '{"usage": {"prompt_tokens": 1}} trailing', INVALID),
    ("gateway_usage", '{"usage": {"prompt_tokens": 1}}{"a": 2}', INVALID),
    ("gateway_usage", '{"usage": {"prompt_tokens": 1}}]', INVALID),
    ("gateway_usage", "{'usage': {'prompt_tokens': 1}}", INVALID),
    ("gateway_usage", '{"usage": {"prompt_tokens": 1}, "usage": {"prompt_tokens": 2}}', INVALID),
    ("gateway_usage", '{"error_code": "A", "message": "x", "message": "y"}', INVALID),
    ("gateway_usage", '{"\\u0075sage": {"prompt_tokens": 1}, "usage": null}', INVALID),
    ("gateway_usage", '{"usage": {"prompt_tokens": 1, "prompt_tokens": 2}}', ["openai", 2, 0, 0, 0, 0, None, None]),
    ("gateway_usage", '{"usage": "{\\"prompt_tokens\\": 5}"}', ["no_usage", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"usage": "{\\"prompt_tokens\\": 5}", "error_code": "E"}', ["error", None, None, None, None, None, "E", None]),
    ("gateway_usage", '{"\\u0075s\\u0061ge": "{\\"prompt_tokens\\": 5}"}', ["no_usage", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"us\\u0061ge" : "{\\"prompt_tokens\\":5}", "x": {"usage": {"prompt_tokens": 1}}}',
     ["no_usage", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"usage": {"prompt_tokens": 3}, "x": {"usage": 1, "usage": 2, "error_code": "A"}}',
     ["openai", 3, 0, 0, 0, 0, None, None]),
    ("gateway_usage", '{"usage": {"prompt_tokens": "10"}}', ["invalid_usage", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"usage": {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": "3"}}}',
     ["invalid_usage", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"usage": {"prompt_tokens": 10, "prompt_tokens_details": "{\\"cached_tokens\\": 3}"}}',
     ["openai", 10, 0, 0, 0, 0, None, None]),
    ("gateway_usage", '{"usage": {"prompt_tokens": 10, "input_tokens": "x"}}', ["openai", 10, 0, 0, 0, 0, None, None]),
    ("gateway_usage", '{"error_code": "500"}', ["error", None, None, None, None, None, "500", None]),
    ("gateway_usage", '{"error_code": "INF"}', ["error", None, None, None, None, None, "INF", None]),
    ("gateway_usage", '{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": {"m": "User defined rate limit"}}',
     ["error", None, None, None, None, None, "REQUEST_LIMIT_EXCEEDED", "workspace_or_provider"]),
    ("gateway_usage", '{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": ["User defined rate limit"]}',
     ["error", None, None, None, None, None, "REQUEST_LIMIT_EXCEEDED", "workspace_or_provider"]),
    ("gateway_usage", '{"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "{User defined rate limit}"}',
     ["error", None, None, None, None, None, "REQUEST_LIMIT_EXCEEDED", "user_defined"]),
    ("gateway_usage", '{"a": "' + "[" * 200 + '"}', ["no_usage", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"a": ' + "[" * 126 + "]" * 126 + "}", ["no_usage", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"a": ' + "[" * 127 + "]" * 127 + "}", INVALID),
    ("gateway_usage", '{"a": ' + "[" * 1200 + "]" * 1200 + "}", INVALID),
    ("gateway_usage", "\u00a0\u2003\n", ["empty", None, None, None, None, None, None, None]),
    ("gateway_usage", '{"a": 1, // note\n}', INVALID),
    ("gateway_usage", '{"a": 01}', INVALID),
    ("gateway_usage", '{"a": "raw\ttab"}', INVALID),
    ("trace_token_usage", '{"input_tokens": 1} x', None),
    ("trace_token_usage", "{'input_tokens': 1}", None),
    ("trace_token_usage", '{"input_tokens": "1"}', None),
    ("trace_token_usage", '{"input_tokens": null}', [0, 0]),
    ("trace_token_usage", '{"input_tokens": 1, "input_tokens": 2}', [2, 0]),
]


def load_cases():
    with open(CASES) as f:
        return [json.loads(line) for line in f]


class InlineTest(unittest.TestCase):
    def test_calls_are_rewritten_on_one_line_and_comments_keep_theirs(self):
        sql = "SELECT gateway_usage(response) AS b -- read by gateway_usage() here\nFROM payload"
        text = gateway_functions.inline(sql)
        self.assertNotIn("gateway_usage(response", text)
        self.assertIn("-- read by gateway_usage() here\nFROM payload", text)
        self.assertEqual(text.count("\n"), 1)
        text = gateway_functions.inline("trace_token_usage(trace_metadata['mlflow.trace.tokenUsage'])")
        self.assertIn("transform(array(trace_metadata['mlflow.trace.tokenUsage'])", text)
        self.assertNotIn("${", text, "Spark's variable substitution must leave the expressions alone")


@unittest.skipUnless(HAVE_SPARK, "pyspark is not installed (scripts/spark-parity.sh runs this test)")
class BuiltinsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from pyspark.sql import SparkSession

        cls.spark = (
            SparkSession.builder.master("local[1]")
            .appName("gateway-functions test")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        cls.spark.sparkContext.setLogLevel("ERROR")

    def results(self, cases):
        rows = [(i, c["function"], c["input"]) for i, c in enumerate(cases)]
        self.spark.createDataFrame(rows, "i INT, function STRING, input STRING").createOrReplaceTempView("cases")
        sql = gateway_functions.inline(
            "SELECT i, CASE WHEN function = 'gateway_usage' THEN to_json(gateway_usage(input)) "
            "ELSE to_json(trace_token_usage(input)) END AS result FROM cases"
        )
        got = {}
        for row in self.spark.sql(sql).collect():
            value = None if row["result"] is None else list(json.loads(row["result"]).values())
            got[row["i"]] = value
        return got

    def check(self, cases):
        got = self.results(cases)
        for i, case in enumerate(cases):
            with self.subTest(input=case["input"][:120]):
                expected = case["expected"]
                if expected is not None and case["function"] == "gateway_usage":
                    # to_json leaves out NULL fields: compare the non-NULL ones in order.
                    expected = [v for v in expected if v is not None]
                self.assertEqual(got[i], expected)

    def test_every_case_of_the_rust_crate(self):
        cases = load_cases()
        self.assertGreater(len(cases), 50)
        self.check(cases)

    def test_where_spark_reads_json_differently(self):
        self.check([{"function": f, "input": i, "expected": e} for f, i, e in SPARK_DIFFERENCES])

    def test_null_input_is_null(self):
        row = self.spark.sql(
            gateway_functions.inline("SELECT gateway_usage(CAST(NULL AS STRING)) AS g, trace_token_usage(CAST(NULL AS STRING)) AS t")
        ).collect()[0]
        self.assertIsNone(row["g"])
        self.assertIsNone(row["t"])


if __name__ == "__main__":
    unittest.main()
