//! gateway-analytics: reads the Databricks AI Gateway's Delta tables (usage, served entities,
//! payload) and writes daily spend and hourly error tables as Delta tables.
//!
//! The flow is described in `docs/ARCHITECTURE.md`: [`config`] reads the job file,
//! [`inputs`] opens and checks the tables and scopes them to the [`window`], [`queries`] holds
//! the SQL from `queries/`, [`outputs`] computes and commits each output table, and [`run`]
//! ties them together. [`generate`] writes the demo and benchmark data sets.

pub mod alert_tables;
pub mod alerts;
pub mod cli;
pub mod columns;
pub mod config;
pub mod deadline;
pub mod error;
pub mod generate;
pub mod grace_aggregate;
pub mod grace_buckets;
pub mod grace_join;
pub mod heartbeat;
pub mod history;
pub mod input_contract;
pub mod inputs;
pub mod json_functions;
pub mod location;
pub mod logging;
pub mod outputs;
pub mod prices;
pub mod progress;
pub mod queries;
pub mod rate_limits;
pub mod recommend;
pub mod reference_data;
pub mod remote;
pub mod request_id_buckets;
pub mod run;
pub mod scan_log;
pub mod scratch;
pub mod settings;
pub mod spark_sql;
pub mod sql_params;
pub mod storage;
pub mod summary;
pub mod unity_catalog;
pub mod window;
