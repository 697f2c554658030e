//! The new AI Gateway's (Beta) rate-limit changes in `recommend` and in the run summary, on the
//! fixtures (fixtures/ai_gateway): shown under their own heading beside the serving endpoints'
//! (a job of both gateways) or alone (a job of the Beta tables only), with the same numbers as
//! `ai_gateway_rate_limit_recommendations` and the same patches as the files `run` writes.

use std::collections::BTreeSet;
use std::path::Path;

use gateway_analytics::recommend::{self, Review};
use gateway_analytics::summary::SummaryFormat;

use super::ai_gateway::{beta_only_job, job, window};
use super::common::{csv_text, run_job};

const SERVING: &str = "Serving endpoints (rate_limit_recommendations)";
const BETA: &str = "New AI Gateway (Beta) model services (ai_gateway_rate_limit_recommendations)";

/// The Beta rows that change a limit as of 2026-11-02, reviewed by hand against the
/// `ai_gateway_rate_limit_recommendations` snapshot: the service rows whose service limit is
/// lowered (chat_prod 200 -> 4: p99 3 x 1.25, rounded up; refusing 70 of its calls at the
/// 39-call peak) or added (no service limit configured), and the two principals' own limits of
/// chat_prod lowered; the per-user `add` rows are not changes (absent per-user limits stay absent).
const BETA_EVIDENCE: &str = "\
endpoint_name,requester,action,current,current_rule,recommended,p99,peak,refused_429,refused_at_current,refused_at_recommended
main.gateway.chat_prod,(service),lower,200,service,4,3,39,1,0,70
main.gateway.chat_prod,2ed779bf-a06c-4863-a69a-20189761ba4f,lower,1000,principal,2,1,1,0,0,0
main.gateway.chat_prod,5d304a8b-ff1b-4113-ad8d-45c7378e61b5,lower,60,principal,2,1,1,0,0,0
main.gateway.claude_agents,(service),add,,,4,3,3,2,0,0
main.gateway.embeddings,(service),add,,,3,2,2,1,0,0
main.gateway.gpt_reasoning,(service),lower,30,service,3,2,3,1,0,0
main.gateway.ranker,(service),lower,100,service,2,1,1,2,0,0
main.tools.github_mcp,(service),add,,,2,1,1,0,0,0
main.tools.jira,(service),add,,,2,1,1,1,0,0
main.tools.uc_functions,(service),add,,,2,1,1,0,0,0
";

fn printed(review: &Review) -> String {
    let mut out = Vec::new();
    review.print(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The Beta patch files `run` wrote as of 2026-11-02.
fn written_beta_files(output: &Path) -> BTreeSet<String> {
    let folder = output.join("ai_gateway_recommendations/2026-11-02");
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect()
}

#[tokio::test]
async fn recommend_shows_the_new_gateways_changes_beside_the_serving_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    // jobs/ai_gateway.toml with the serving endpoints' current limits too: both gateways' patches.
    let serving_limits = "rate_limits = \"../fixtures/ai_gateway/rate_limits.json\"\ngateway_rate_limits = ";
    let job = job(dir.path(), &[("gateway_rate_limits = ", serving_limits)]);
    assert!(job.rate_limits.is_some() && job.gateway_rate_limits.is_some());
    let as_of = gateway_analytics::window::RunWindow::new(window().to, window().to).unwrap();
    let review = recommend::review(&job, as_of).await.unwrap();
    let titles: Vec<&str> = review.sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, [SERVING, BETA]);
    let (serving, beta) = (&review.sections[0], &review.sections[1]);
    assert_eq!(csv_text(&beta.evidence), BETA_EVIDENCE);
    assert!(!serving.patches.is_empty());

    // One patch per service with a change; chat_prod's three changes as the rows above say.
    let chat = &beta.patches[0];
    assert_eq!((chat.name.as_str(), chat.file.as_str()), ("main.gateway.chat_prod", "main.gateway.chat_prod.json"));
    assert_eq!(
        chat.changes,
        [
            "the service limit: requests per minute 200 -> 4",
            "2ed779bf-a06c-4863-a69a-20189761ba4f's own limit: requests per minute 1000 -> 2",
            "5d304a8b-ff1b-4113-ad8d-45c7378e61b5's own limit: requests per minute 60 -> 2",
        ]
    );
    let others: Vec<(&str, &[String])> =
        beta.patches[1..].iter().map(|p| (p.name.as_str(), p.changes.as_slice())).collect();
    assert_eq!(others.len(), 7, "{others:?}");
    assert_eq!(
        others[0],
        ("main.gateway.claude_agents", &["the service limit: add a limit of 4 requests per minute".to_string()][..])
    );
    assert_eq!(
        others[2],
        ("main.gateway.gpt_reasoning", &["the service limit: requests per minute 30 -> 3".to_string()][..])
    );

    // The text: each gateway under its own heading, the Beta folder, the limits kept as they are.
    let text = printed(&review);
    let (serving_text, beta_text) = text.split_once(&format!("== {BETA} ==")).unwrap();
    assert!(serving_text.contains(&format!("== {SERVING} ==")), "{text}");
    assert!(serving_text.contains("/recommendations/2026-11-02"), "{serving_text}");
    assert!(!serving_text.contains("main.gateway."), "{serving_text}");
    assert!(
        beta_text.contains("| main.gateway.chat_prod     | (service) ") && beta_text.contains("| 200     | service "),
        "{beta_text}"
    );
    assert!(beta_text.contains("/ai_gateway_recommendations/2026-11-02 and, unless a later as-of date is there, to "));
    assert!(beta_text.contains("main.gateway.chat_prod: 3 change(s) (main.gateway.chat_prod.json)\n"), "{beta_text}");
    assert!(beta_text.contains("main.tools.uc_functions: 1 change(s) (main.tools.uc_functions.json)\n"));
    assert!(
        beta_text.contains("main.gateway.chat_prod analysts [user_group limit]: group limits are not evaluated"),
        "{beta_text}"
    );
    assert!(!dir.path().join("ai_gateway_recommendations").exists(), "recommend writes nothing");

    // `run` writes exactly these patches, and its summary lists them with both gateways'.
    let summary = run_job(&job, window()).await.unwrap();
    let files: BTreeSet<String> = beta.patches.iter().map(|p| p.file.clone()).collect();
    assert_eq!(written_beta_files(dir.path()), files);
    let listed: Vec<(&str, &[String])> =
        summary.gateway_patches.iter().map(|p| (p.service.as_str(), p.changes.as_slice())).collect();
    let reviewed: Vec<(&str, &[String])> =
        beta.patches.iter().map(|p| (p.name.as_str(), p.changes.as_slice())).collect();
    assert_eq!(listed, reviewed);
    let serving_listed: Vec<&str> = summary.patches.iter().map(|p| p.endpoint_name.as_str()).collect();
    let serving_reviewed: Vec<&str> = serving.patches.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(serving_listed, serving_reviewed);
    let mut out = Vec::new();
    summary.print(SummaryFormat::Table, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let first = &summary.patches[0].endpoint_name;
    assert!(text.contains(&format!("proposed for {first} (recommendations/2026-11-02/{first}.json)\n")), "{text}");
    assert!(text.contains(
        "rate limits (new AI Gateway): 3 change(s) proposed for main.gateway.chat_prod \
         (ai_gateway_recommendations/2026-11-02/main.gateway.chat_prod.json)\n"
    ));
}

#[tokio::test]
async fn recommend_on_a_job_of_the_beta_tables_alone() {
    let dir = tempfile::tempdir().unwrap();
    let job = beta_only_job(dir.path(), None);
    let as_of = gateway_analytics::window::RunWindow::new(window().to, window().to).unwrap();
    let review = recommend::review(&job, as_of).await.unwrap();
    let titles: Vec<&str> = review.sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, [BETA]);
    assert_eq!(csv_text(&review.sections[0].evidence), BETA_EVIDENCE);
    assert_eq!(review.sections[0].patches.len(), 8);
    let text = printed(&review);
    assert!(
        text.starts_with("Rate-limit recommendations as of 2026-11-02 (demand from 2026-10-20 to 2026-11-02"),
        "{text}"
    );
    assert!(!text.contains("Serving endpoints") && !text.contains("No inputs.gateway_rate_limits"), "{text}");

    // Without current limits: every limit absent, and `run` writes no patch file.
    let mut unlimited = job.clone();
    unlimited.gateway_rate_limits = None;
    let review = recommend::review(&unlimited, as_of).await.unwrap();
    let text = printed(&review);
    assert!(text.contains("No inputs.gateway_rate_limits in the job file: every limit is taken as absent."), "{text}");
    assert!(text.contains("`run` writes no patch files without inputs.gateway_rate_limits"), "{text}");
    assert!(text.contains("main.gateway.chat_prod: 1 change(s)"), "{text}");
}

#[tokio::test]
async fn the_run_summary_lists_the_new_gateways_patch_files() {
    let dir = tempfile::tempdir().unwrap();
    let summary = run_job(&beta_only_job(dir.path(), None), window()).await.unwrap();
    assert!(summary.patches.is_empty());
    let mut out = Vec::new();
    summary.print(SummaryFormat::Table, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("rate limits")).collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert_eq!(
        lines[..2],
        [
            "rate limits (new AI Gateway): 3 change(s) proposed for main.gateway.chat_prod \
             (ai_gateway_recommendations/2026-11-02/main.gateway.chat_prod.json)",
            "rate limits (new AI Gateway): 1 change(s) proposed for main.gateway.claude_agents \
             (ai_gateway_recommendations/2026-11-02/main.gateway.claude_agents.json)",
        ]
    );
    for line in &lines {
        let file = line.rsplit_once(" (").unwrap().1.trim_end_matches(')');
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    assert_eq!(lines.len(), written_beta_files(dir.path()).len());

    let mut out = Vec::new();
    summary.print(SummaryFormat::Json, &mut out).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["rate_limit_changes"], serde_json::json!([]));
    let changes = json["ai_gateway_rate_limit_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 8);
    assert_eq!(
        changes[5],
        serde_json::json!({
            "service": "main.tools.github_mcp",
            "file": "ai_gateway_recommendations/2026-11-02/main.tools.github_mcp.json",
            "changes": ["the service limit: add a limit of 2 requests per minute"],
        })
    );
}
