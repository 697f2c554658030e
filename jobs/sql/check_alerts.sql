-- Fails this task (so the run fails and on_failure e-mails go out) when the run's window has
-- alerts at or over :fail_on (critical, or warning = warning and critical) in the registered
-- alerts table: firing records that no [alerts] mute entry silences, as run --fail-on counts. The window is the run task's: :from_date..:to_date, empty meaning the UTC day
-- before :run_date. Parameters are named parameter markers bound from the job parameters.

DECLARE OR REPLACE VARIABLE alerts_table STRING;
DECLARE OR REPLACE VARIABLE window_from DATE;
DECLARE OR REPLACE VARIABLE window_to DATE;

SELECT assert_true(:fail_on IN ('warning', 'critical'), 'fail_on must be warning or critical');
SET VAR alerts_table = :catalog || '.' || :schema || '.alerts';
SET VAR window_to = coalesce(
  CAST(nullif(:to_date, '') AS DATE), CAST(nullif(:from_date, '') AS DATE), date_sub(CAST(:run_date AS DATE), 1)
);
SET VAR window_from = coalesce(CAST(nullif(:from_date, '') AS DATE), window_to);

SELECT
  count(*) AS alerts,
  CASE WHEN count(*) > 0 THEN raise_error(format_string(
    '%d alert(s) at or over %s severity from %s to %s in %s',
    count(*), :fail_on, CAST(window_from AS STRING), CAST(window_to AS STRING), alerts_table
  )) END AS failed
FROM IDENTIFIER(alerts_table)
WHERE usage_date BETWEEN window_from AND window_to
  AND status = 'firing' AND NOT muted
  AND (severity = 'critical' OR (:fail_on = 'warning' AND severity = 'warning'));
