//! Integration tests, in one binary so DataFusion is linked once.

mod ai_gateway;
mod ai_gateway_oracle;
mod alert_events;
mod alert_lifecycle;
mod alert_quality;
mod alerting;
mod bad_inputs;
mod common;
mod conformance;
mod deletion_vectors;
mod edge_cases;
mod errors;
mod focus;
mod focus_rules;
mod forecast_backtest;
mod generator;
mod guardrails;
mod history;
mod operations;
mod oracle;
mod outputs;
mod report;
mod spend_forecast;
mod timeouts;
mod traces_and_costs;
mod what_if;
