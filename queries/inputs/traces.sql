-- traces: the MLflow trace table (trace_logs_<experiment_id>, read as traces_source) with a
-- day of slack either side of the run window, so a request near midnight finds its trace.
SELECT *
FROM traces_source
WHERE request_time >= ${traces_start} AND request_time < ${traces_end}
