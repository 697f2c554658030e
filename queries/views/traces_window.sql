-- traces_window: MLflow traces (trace_logs_<experiment_id>) started in the run window, with the
-- fields the trace outputs use. A trace belongs to the gateway request whose
-- databricks_request_id equals its client_request_id (never its trace_id).
-- * endpoint_named: the serving endpoint the trace metadata names
--   (mlflow.databricks.modelServingEndpointName), NULL when it names none.
-- * token_usage: mlflow.trace.tokenUsage read once by trace_token_usage() (this project's
--   function), NULL when absent or unreadable.
SELECT
  trace_id,
  client_request_id,
  request_time,
  CAST(request_time AS DATE) AS usage_date,
  state,
  execution_duration_ms,
  trace_location.mlflow_experiment.experiment_id AS experiment_id,
  trace_metadata['mlflow.databricks.modelServingEndpointName'] AS endpoint_named,
  trace_token_usage(trace_metadata['mlflow.trace.tokenUsage']) AS token_usage
FROM traces
WHERE request_time >= ${window_start} AND request_time < ${window_end}
