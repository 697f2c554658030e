//! The payload fixture with Databricks' inference-table features (deletion vectors, v2
//! checkpoint) gives the same results as the plain table minus the deleted rows.

use std::path::Path;

use gateway_analytics::engine::session;
use gateway_analytics::generate::read_manifest;
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;

use super::common::{demo, demo_window, job_with_payload, run_job, table_text, write_delta};

#[test]
fn fixture_carries_deletion_vectors_and_a_v2_checkpoint() {
    let log = demo().join("gateway_payload_dv/_delta_log");
    let mut protocol = None;
    let mut deletion_vectors = 0;
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let action: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(p) = action.get("protocol") {
                    protocol = Some(p.clone());
                }
                if action.pointer("/add/deletionVector/storageType").is_some() {
                    deletion_vectors += 1;
                }
            }
        }
    }
    let protocol = protocol.expect("a protocol action");
    let reader_features = protocol["readerFeatures"].as_array().unwrap();
    assert!(reader_features.contains(&"deletionVectors".into()), "{protocol}");
    assert!(reader_features.contains(&"v2Checkpoint".into()), "{protocol}");
    assert!(deletion_vectors > 0, "no add action carries a deletion vector");
    let checkpoint = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".checkpoint."))
        .expect("a checkpoint file");
    let bytes = std::fs::read(checkpoint).unwrap();
    assert!(bytes.windows(18).any(|w| w == b"checkpointMetadata"), "the checkpoint is not a v2 checkpoint");
}

/// Writes the plain payload table minus the deleted requester's rows to `target`.
async fn plain_minus_deleted(target: &Path, requester: &str) {
    let ctx = session().unwrap();
    let source = Location::resolve(&demo().join("gateway_payload").display().to_string(), Path::new("/")).unwrap();
    ctx.register_table("payload", delta_provider(&ctx, "payload", &source, &Default::default()).await.unwrap())
        .unwrap();
    let sql = format!("SELECT * FROM payload WHERE requester IS NULL OR requester <> '{requester}'");
    write_delta(target, ctx.sql(&sql).await.unwrap().collect().await.unwrap()).await;
}

#[tokio::test]
async fn same_results_as_the_plain_table_minus_deleted_rows() {
    let manifest = read_manifest(&demo()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let expected_payload = dir.path().join("payload_minus_deleted");
    plain_minus_deleted(&expected_payload, &manifest.deleted_requester).await;

    let ctx = session().unwrap();
    let dv = Location::resolve(&demo().join("gateway_payload_dv").display().to_string(), Path::new("/")).unwrap();
    ctx.register_table("dv", delta_provider(&ctx, "payload", &dv, &Default::default()).await.unwrap()).unwrap();
    let count_sql = format!(
        "SELECT COUNT(*) AS n, SUM(CASE WHEN requester = '{}' THEN 1 ELSE 0 END) AS deleted FROM dv",
        manifest.deleted_requester
    );
    let counts = super::common::csv_text(&ctx.sql(&count_sql).await.unwrap().collect().await.unwrap());
    let expected_rows = manifest.payload_rows - manifest.deleted_payload_rows;
    assert_eq!(counts, format!("n,deleted\n{expected_rows},0\n"));

    let out_dv = dir.path().join("out_dv");
    let out_plain = dir.path().join("out_plain");
    run_job(&job_with_payload(Some(&demo().join("gateway_payload_dv")), &out_dv), demo_window()).await.unwrap();
    run_job(&job_with_payload(Some(&expected_payload), &out_plain), demo_window()).await.unwrap();
    for table in ["daily_spend", "hourly_errors"] {
        assert_eq!(table_text(&out_dv.join(table)).await, table_text(&out_plain.join(table)).await, "{table} differs");
    }
}
