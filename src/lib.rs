//! gateway-analytics: reads the Databricks AI Gateway's Delta tables (usage, served entities,
//! payload) and writes daily spend and hourly error tables as Delta tables.
//!
//! The flow is described in `docs/ARCHITECTURE.md`: [`config`] reads the job file, [`plan`]
//! decides everything a run does (the dates, from the [`ledger`] and the inputs' changes,
//! [`input_changes`]), [`inputs`] opens and checks the tables, [`queries`] holds the SQL from
//! `queries/`, [`outputs`] computes and commits each output table, [`lease`] keeps two runs
//! apart, [`segment`] computes one segment of the plan on a session of [`engine`] (DataFusion
//! with the memory budget and the operators that keep within it), and [`run`] ties them
//! together. [`generate`] writes the demo and benchmark data sets.

pub mod ai_gateway;
pub mod alert_events;
pub mod alert_tables;
pub mod alerts;
pub mod cli;
pub mod columns;
pub mod config;
pub mod databricks_auth;
pub mod deadline;
pub mod engine;
pub mod error;
pub mod focus;
pub mod focus_tags;
pub mod forecast;
pub mod generate;
pub mod heartbeat;
pub mod history;
pub mod input_changes;
pub mod input_contract;
pub mod inputs;
pub mod lease;
pub mod ledger;
pub mod location;
pub mod logging;
pub mod outputs;
pub mod patches;
pub mod plan;
pub mod prices;
pub mod progress;
pub mod queries;
pub mod query;
pub mod rate_limits;
pub mod recommend;
pub mod reference_data;
pub mod remote;
pub mod report;
pub mod run;
pub mod segment;
pub mod served_entity_changes;
pub mod settings;
pub mod spark_sql;
pub mod sql_params;
pub mod storage;
pub mod summary;
pub mod unity_catalog;
pub mod vended_store;
pub mod window;
