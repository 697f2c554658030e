"""The Spark runner's own logic that runs without a Spark session.

    python3 -m unittest discover -s jobs/src -p 'test_*.py'
"""

import unittest

import spark_runner


class ContiguousRangesTest(unittest.TestCase):
    def test_unfinished_dates_group_into_consecutive_windows(self):
        dates = ["2026-11-03", "2026-10-30", "2026-11-01", "2026-10-31", "2026-11-03"]
        self.assertEqual(
            spark_runner.contiguous_ranges(dates),
            [("2026-10-30", "2026-11-01"), ("2026-11-03", "2026-11-03")],
        )

    def test_no_dates_no_windows(self):
        self.assertEqual(spark_runner.contiguous_ranges([]), [])


class PreviousDayTest(unittest.TestCase):
    def test_the_day_before_crosses_months_and_years(self):
        self.assertEqual(spark_runner.previous_day("2026-11-01"), "2026-10-31")
        self.assertEqual(spark_runner.previous_day("2027-01-01"), "2026-12-31")


if __name__ == "__main__":
    unittest.main()
