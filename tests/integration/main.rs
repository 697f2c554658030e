//! Integration tests, in one binary so DataFusion is linked once.

mod common;
mod conformance;
mod deletion_vectors;
mod errors;
mod generator;
mod oracle;
mod outputs;
