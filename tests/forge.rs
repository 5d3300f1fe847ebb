//! The forge against a recording fake of the GitHub API (wiremock), driven by the real webhook
//! payloads in `tests/fixtures/github-webhooks`: the living comment, statuses, check runs and
//! their annotations, splitting and escaping, commands and their permission checks, team memberships, forks,
//! retries and rate limits.

#[path = "forge/checks.rs"]
mod checks;
#[path = "forge/commands.rs"]
mod commands;
#[path = "forge/comments.rs"]
mod comments;
#[path = "forge/retries.rs"]
mod retries;
#[path = "forge/statuses.rs"]
mod statuses;
#[path = "forge/support.rs"]
mod support;
#[path = "forge/teams.rs"]
mod teams;
