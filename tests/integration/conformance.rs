//! Delta tables written by Databricks Runtime (tests/data/delta-conformance) read through the
//! project's own table reader: deletion vectors, column mapping, v2 checkpoints, liquid
//! clustering.

use std::path::PathBuf;

use deltalake::arrow::array::{Array, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use gateway_analytics::engine::session;
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;

fn conformance_dir() -> PathBuf {
    super::common::repo().join("tests/data/delta-conformance")
}

/// Runs `sql` over the table registered as `t`, returning the first column as strings.
async fn query(table: &str, sql: &str) -> Vec<String> {
    let ctx = session().unwrap();
    let location =
        Location::resolve(&conformance_dir().join(table).display().to_string(), &PathBuf::from("/")).unwrap();
    let provider = delta_provider(&ctx, table, &location, &Default::default()).await.unwrap();
    ctx.register_table("t", provider).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for batch in batches {
        let column = cast(batch.column(0), &DataType::Utf8).unwrap();
        let column = column.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend(
            (0..column.len()).map(|i| if column.is_null(i) { "NULL".into() } else { column.value(i).to_string() }),
        );
    }
    out
}

async fn count(table: &str) -> i64 {
    query(table, "SELECT COUNT(*) FROM t").await[0].parse().unwrap()
}

#[tokio::test]
async fn deletion_vectors_hide_deleted_rows() {
    let values = query("table-with-dv-small", "SELECT value FROM t ORDER BY value").await;
    assert_eq!(values, (1..=8).map(|v| v.to_string()).collect::<Vec<_>>());
    // Projection, filter and LIMIT must not bring deleted rows back.
    assert_eq!(query("table-with-dv-small", "SELECT COUNT(*) FROM t WHERE value >= 0").await, ["8"]);
    assert_eq!(query("table-with-dv-small", "SELECT value FROM t WHERE value IN (0, 9)").await, Vec::<String>::new());
    assert_eq!(query("table-with-dv-small", "SELECT COUNT(*) FROM (SELECT value FROM t LIMIT 100)").await, ["8"]);
}

#[tokio::test]
async fn column_mapping_gives_logical_names() {
    assert_eq!(count("table_with_column_mapping").await, 5);
    let names = query("table_with_column_mapping", "SELECT \"Super Name\" FROM t ORDER BY \"Super Name\"").await;
    for expected in ["Timothy Lamb", "Stephanie Mcgrath", "Anthony Johnson", "Nathan Bennett", "Mr. Daniel Ferguson MD"]
    {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
}

#[tokio::test]
async fn v2_checkpoint_with_sidecars() {
    assert_eq!(count("checkpoint-v2-table").await, 44);
}

#[tokio::test]
async fn liquid_clustering_with_deletion_vectors() {
    assert_eq!(count("table_with_liquid_clustering").await, 10);
}

#[tokio::test]
async fn renamed_partition_column_under_column_mapping() {
    assert_eq!(count("table_with_partitioning_mapping").await, 2);
    let ids = query("table_with_partitioning_mapping", "SELECT COUNT(newid) FROM t").await;
    assert_eq!(ids, ["2"]);
}
