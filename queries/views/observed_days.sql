-- observed_days: the UTC days of the history and the window on which the gateway was logging
-- at all: days with at least one usage row (in payload-only mode, payload row), for any
-- endpoint. A day without rows is a day without data, not a day of zero spend: the rules with
-- a baseline (spend_spike, budget_burn's projection) count only observed days, and
-- logging_gap fires on a window day that is not observed after observed ones.
-- Read from team_daily_cost, which holds a row for every (day, team) with usage rows whether
-- the day came from the inputs or from the daily_spend rows of an earlier run (a day without
-- daily_spend rows had no usage rows), so both paths give the same days.
SELECT DISTINCT usage_date
FROM team_daily_cost
