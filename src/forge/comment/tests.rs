//! Tests of the comment: markers, sections, staleness, escaping and splitting, with small inputs.

use super::*;
use chrono::TimeZone;

fn input(sections: Vec<Section>) -> CommentInput {
    CommentInput {
        pipeline: "platform".to_owned(),
        commit: "0123456789abcdef0123".to_owned(),
        at: Utc.with_ymd_and_hms(2026, 11, 28, 15, 0, 0).unwrap(),
        status: Status::Succeeded,
        run_id: Some(7),
        run_url: Some("https://ci.example.com/runs/7".to_owned()),
        jobs: vec![JobLine {
            name: "plan".to_owned(),
            status: Status::Succeeded,
            summary: Some("2 to add".to_owned()),
        }],
        sections,
        policies: vec![],
    }
}

#[test]
fn markers_are_found_again_for_each_part() {
    assert_eq!(
        parse_marker(&marker("platform")),
        Some(("platform".to_owned(), 1))
    );
    assert_eq!(
        parse_marker(&format!("{}\nbody", part_marker("platform", 3))),
        Some(("platform".to_owned(), 3))
    );
    assert_eq!(parse_marker("a comment by a person"), None);
    assert_eq!(marker_name("my pipeline -->"), "my-pipeline----");
}

#[test]
fn the_header_names_commit_time_and_run() {
    let parts = render(&input(vec![]));
    assert_eq!(parts.len(), 1);
    let body = &parts[0];
    assert!(body.starts_with(&marker("platform")), "{body}");
    assert!(
        body.contains("Commit `0123456789ab` · 2026-11-28 15:00 UTC"),
        "{body}"
    );
    assert!(
        body.contains("[run 7](https://ci.example.com/runs/7)"),
        "{body}"
    );
}

#[test]
fn marking_stale_twice_keeps_one_warning() {
    let body = render(&input(vec![])).remove(0);
    let once = mark_stale(&body, "feedfacefeedface");
    let twice = mark_stale(&once, "beefbeefbeefbeef");
    assert_eq!(twice.matches("**Stale:**").count(), 1, "{twice}");
    assert!(twice.contains("`beefbeefbeef`"), "{twice}");
    assert!(twice.starts_with(&marker("platform")));
    assert!(twice.contains("Commit `0123456789ab`"));
}

#[test]
fn sections_are_grouped_by_environment_and_ordered_by_kind() {
    let section = |environment: &str, kind: SectionKind| Section {
        environment: environment.to_owned(),
        kind,
        title: "t".to_owned(),
        body_markdown: "b\n".to_owned(),
    };
    let body = render(&input(vec![
        section("dev", SectionKind::Models),
        section("staging", SectionKind::Terraform),
        section("dev", SectionKind::Terraform),
    ]))
    .remove(0);
    let dev = body.find("Environment dev").unwrap();
    let staging = body.find("Environment staging").unwrap();
    let dev_terraform = body.find("<summary>Terraform").unwrap();
    let dev_models = body.find("<summary>Models").unwrap();
    assert!(dev < dev_terraform && dev_terraform < dev_models && dev_models < staging);
}
