"""The Python port of the gateway-json readers gives the results in
crates/gateway-json/tests/cases.jsonl (the Rust crate is tested against the same file).

    python3 -m unittest discover -s jobs/src -p 'test_*.py'
"""

import json
import os
import unittest

import gateway_functions

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "gateway-json", "tests", "cases.jsonl")


class CasesTest(unittest.TestCase):
    def test_every_case(self):
        with open(CASES) as f:
            cases = [json.loads(line) for line in f]
        self.assertGreater(len(cases), 50)
        for case in cases:
            got = getattr(gateway_functions, case["function"])(case["input"])
            got = None if got is None else list(got)
            self.assertEqual(got, case["expected"], case["input"][:200])

    def test_null_input_is_null(self):
        self.assertIsNone(gateway_functions.gateway_usage(None))
        self.assertIsNone(gateway_functions.trace_token_usage(None))


if __name__ == "__main__":
    unittest.main()
