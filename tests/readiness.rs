//! `/readyz` as a load balancer or a Kubernetes readiness probe reads it: ready while the
//! database answers and holds the schema this build writes, `503` with the reason otherwise,
//! while `/healthz` (liveness) keeps answering.

#[path = "support/ui.rs"]
mod ui;

use axum::http::StatusCode;

#[tokio::test]
async fn ready_with_the_current_schema_and_not_with_another_or_none() {
    let ui = ui::Ui::open();
    let ready = ui.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert!(
        ready.body.starts_with("ready: schema version "),
        "{}",
        ready.body
    );
    let current: i64 = ready
        .body
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let connection = rusqlite::Connection::open(ui.database_path()).unwrap();
    connection
        .execute("UPDATE schema_version SET version = ?1", [current - 1])
        .unwrap();
    let behind = ui.get("/readyz", None).await;
    assert_eq!(behind.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        behind.body,
        format!(
            "not ready: the database holds schema version {}, this build writes {current}; restart to migrate\n",
            current - 1
        )
    );

    connection.execute("DROP TABLE schema_version", []).unwrap();
    let broken = ui.get("/readyz", None).await;
    assert_eq!(broken.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        broken
            .body
            .starts_with("not ready: the database does not answer: "),
        "{}",
        broken.body
    );
    assert!(broken.body.contains("schema_version"), "{}", broken.body);
    assert_eq!(ui.get("/healthz", None).await.status, StatusCode::OK);
}
