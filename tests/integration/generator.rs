//! The generator is deterministic and the committed demo fixtures are what it makes.

use gateway_analytics::generate::{generate, read_manifest};
use gateway_analytics::progress::Progress;

use super::common::{assert_same_lines, demo, table_text};

#[tokio::test]
async fn the_generator_reproduces_the_committed_fixtures() {
    let committed = read_manifest(&demo()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("demo");
    generate(&committed.options, &fresh, &Progress::hidden()).await.unwrap();

    let regenerated = read_manifest(&fresh).unwrap();
    assert_eq!(serde_json::to_value(&regenerated).unwrap(), serde_json::to_value(&committed).unwrap());
    for file in ["prices.csv", "teams.csv", "rate_limits.json", "incidents.json"] {
        assert_eq!(std::fs::read(fresh.join(file)).unwrap(), std::fs::read(demo().join(file)).unwrap(), "{file}");
    }
    for table in ["endpoint_usage", "served_entities", "gateway_payload", "gateway_payload_dv"] {
        assert_same_lines(&table_text(&fresh.join(table)).await, &table_text(&demo().join(table)).await, table);
    }
}

#[tokio::test]
async fn generate_refuses_a_folder_that_is_not_a_data_set() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
    let options = read_manifest(&demo()).unwrap().options;
    let err = generate(&options, dir.path(), &Progress::hidden()).await.unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert!(dir.path().join("notes.txt").exists());
}
