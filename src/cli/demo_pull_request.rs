//! The pull-request part of `sluice demo`: a change on a branch, GitHub's `pull_request` payload for
//! it, the runs it starts (tests, DAG checks, Terraform plans of every environment with the policy
//! checks, stored encrypted), the comment sluice keeps on the pull request, and the merge.

use crate::model::Run;
use std::path::Path;
use std::process::Command;

/// GitHub's own `pull_request` `closed` payload.
const CLOSED_PAYLOAD: &str =
    include_str!("../../tests/fixtures/github-webhooks/pull_request/closed.payload.json");

/// GitHub's own `pull_request` `opened` payload; the demo points it at its repository.
const OPENED_PAYLOAD: &str =
    include_str!("../../tests/fixtures/github-webhooks/pull_request/opened.payload.json");

fn git(directory: &Path, args: &[&str]) -> anyhow::Result<String> {
    git_at(directory, args, None)
}

/// `git` with its author and committer dates set to `at` when given.
fn git_at(
    directory: &Path,
    args: &[&str],
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<String> {
    let mut command = Command::new("git");
    if let Some(at) = at {
        let date = format!("{} +0000", at.timestamp());
        command
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date);
    }
    let output = command
        .arg("-C")
        .arg(directory)
        .args([
            "-c",
            "user.name=Ada Data",
            "-c",
            "user.email=ada@example.com",
        ])
        .args(args)
        .output()
        .map_err(|error| anyhow::anyhow!("cannot run git: {error}; install git"))?;
    if !output.status.success() {
        anyhow::bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A branch off main with one change committed; returns (base, head). Main stays checked out.
pub fn open_branch(
    directory: &Path,
    branch: &str,
    relative: &str,
    note: &str,
    message: &str,
) -> anyhow::Result<(String, String)> {
    let base = git(directory, &["rev-parse", "main"])?;
    git(directory, &["checkout", "-q", "-b", branch])?;
    let target = directory.join(relative);
    let mut text = std::fs::read_to_string(&target).unwrap_or_default();
    text.push_str(note);
    std::fs::write(&target, text)?;
    git(directory, &["commit", "-q", "-am", message])?;
    let head = git(directory, &["rev-parse", "HEAD"])?;
    git(directory, &["checkout", "-q", "main"])?;
    Ok((base, head))
}

/// Merges the branch into main with a merge commit, as GitHub's merge button does, dated `at`
/// (the promotion's clock, so that lead times read as they would); returns it.
pub fn merge_branch(
    directory: &Path,
    branch: &str,
    number: u64,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let message = format!("Merge pull request #{number} from example/{branch}");
    git_at(
        directory,
        &["merge", "-q", "--no-ff", branch, "-m", &message],
        Some(at),
    )?;
    git(directory, &["rev-parse", "HEAD"])
}

pub fn opened_payload(
    repository: &str,
    number: u64,
    branch: &str,
    base: &str,
    head: &str,
) -> anyhow::Result<Vec<u8>> {
    pull_request_payload(OPENED_PAYLOAD, repository, number, branch, base, head)
}

/// GitHub's `closed` payload for a merged pull request.
pub fn merged_payload(
    repository: &str,
    number: u64,
    branch: &str,
    base: &str,
    head: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut payload: serde_json::Value = serde_json::from_slice(&pull_request_payload(
        CLOSED_PAYLOAD,
        repository,
        number,
        branch,
        base,
        head,
    )?)?;
    payload["pull_request"]["merged"] = true.into();
    Ok(serde_json::to_vec(&payload)?)
}

fn pull_request_payload(
    template: &str,
    repository: &str,
    number: u64,
    branch: &str,
    base: &str,
    head: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut payload: serde_json::Value = serde_json::from_str(template)?;
    payload["number"] = number.into();
    payload["repository"]["full_name"] = repository.into();
    let pull_request = &mut payload["pull_request"];
    pull_request["number"] = number.into();
    pull_request["head"]["sha"] = head.into();
    pull_request["head"]["ref"] = branch.into();
    pull_request["head"]["repo"]["full_name"] = repository.into();
    pull_request["base"]["sha"] = base.into();
    pull_request["base"]["ref"] = "main".into();
    pull_request["base"]["repo"]["full_name"] = repository.into();
    Ok(serde_json::to_vec(&payload)?)
}

/// Prints the comment sluice posts on the pull request for these runs (the same rendering the
/// server sends to GitHub), part by part.
pub fn show_comment(store: &dyn crate::store::Store, runs: &[Run]) {
    for run in runs
        .iter()
        .filter(|run| run.status != crate::model::Status::Skipped)
    {
        let full = store
            .get_run(run.id)
            .ok()
            .flatten()
            .unwrap_or_else(|| run.clone());
        let (sections, policies) = crate::scheduler::contributions::contributions_of(&full);
        let parts = crate::forge::report::render_run_comment(&full, sections, policies, None);
        println!(
            "==> the comment sluice keeps on the pull request for `{}` ({} part(s); edited in place on every new commit):",
            full.pipeline,
            parts.len()
        );
        for part in parts {
            for line in part.lines() {
                println!("    | {line}");
            }
        }
    }
}
