//! Comment commands on pull requests: `/sluice plan [ENV]`, `/sluice apply [ENV]`,
//! `/sluice approve ENV`, `/sluice unlock [ENV]`, `/sluice help`. The commenter must have write
//! permission (asked of GitHub); `apply` is refused on a fork's pull request and, when the
//! environment's `terraform.apply_requirements` say so, unless the pull request is approved and
//! mergeable. sluice acknowledges with a reaction and answers with a comment. The work itself is
//! done by a `CommandHandler` the server provides (locks, approvals and plans live elsewhere).

use super::comment::escape;
use super::error::ForgeError;
use super::publish::Forge;
use crate::config::environment::Environment;
use serde_json::Value;
use std::future::Future;

/// A command sluice understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Plan { environment: Option<String> },
    Apply { environment: Option<String> },
    Approve { environment: String },
    Unlock { environment: Option<String> },
    Help,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plan { .. } => "plan",
            Command::Apply { .. } => "apply",
            Command::Approve { .. } => "approve",
            Command::Unlock { .. } => "unlock",
            Command::Help => "help",
        }
    }
}

/// What a comment's text asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No line starts with `/sluice`: an ordinary comment.
    NotACommand,
    Command(Command),
    /// A `/sluice` line sluice does not understand; the text says what was wrong.
    Unknown(String),
}

pub const HELP: &str = "\
**sluice commands** (comment on the pull request; write permission needed):

| Command | What it does |
| --- | --- |
| `/sluice plan [ENV]` | plan again, for every environment or only `ENV` |
| `/sluice apply [ENV]` | apply the plan of this pull request (never from a fork) |
| `/sluice approve ENV` | approve the change for `ENV` |
| `/sluice unlock [ENV]` | release the lock this pull request holds |
| `/sluice help` | show this text |
";

/// Reads the first line that starts with `/sluice`.
pub fn parse(body: &str) -> Parsed {
    let Some(line) = body
        .lines()
        .map(str::trim)
        .find(|line| *line == "/sluice" || line.starts_with("/sluice "))
    else {
        return Parsed::NotACommand;
    };
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let environment = |words: &[&str]| -> Result<Option<String>, String> {
        match words {
            [] => Ok(None),
            [name] if valid_environment_name(name) => Ok(Some((*name).to_owned())),
            [name] => Err(format!(
                "`{}` is not an environment name",
                name.replace('`', "'")
            )),
            _ => Err("too many words: give at most one environment".to_owned()),
        }
    };
    let result = match words.split_first() {
        None => return Parsed::Command(Command::Help),
        Some((&"help", [])) => Ok(Command::Help),
        Some((&"plan", rest)) => environment(rest).map(|environment| Command::Plan { environment }),
        Some((&"apply", rest)) => {
            environment(rest).map(|environment| Command::Apply { environment })
        }
        Some((&"unlock", rest)) => {
            environment(rest).map(|environment| Command::Unlock { environment })
        }
        Some((&"approve", rest)) => match environment(rest) {
            Ok(Some(environment)) => Ok(Command::Approve { environment }),
            Ok(None) => Err("`approve` needs an environment: `/sluice approve ENV`".to_owned()),
            Err(error) => Err(error),
        },
        Some((other, _)) => Err(format!(
            "`{}` is not a sluice command",
            other.replace('`', "'")
        )),
    };
    match result {
        Ok(command) => Parsed::Command(command),
        Err(message) => Parsed::Unknown(message),
    }
}

fn valid_environment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
}

/// What an environment demands before `apply` (Atlantis' `apply_requirements`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyRequirement {
    Approved,
    Mergeable,
}

/// Reads `terraform.apply_requirements: [approved, mergeable]` from an environment; unknown
/// words are returned as errors so configuration checks can report them.
pub fn apply_requirements(environment: &Environment) -> Result<Vec<ApplyRequirement>, String> {
    let Some(list) = environment
        .terraform
        .as_ref()
        .and_then(|terraform| terraform.get("apply_requirements"))
    else {
        return Ok(Vec::new());
    };
    let Some(items) = list.as_array() else {
        return Err(format!(
            "environment `{}`: terraform.apply_requirements must be a list such as [approved, mergeable]",
            environment.name
        ));
    };
    items
        .iter()
        .map(|item| match item.as_str() {
            Some("approved") => Ok(ApplyRequirement::Approved),
            Some("mergeable") => Ok(ApplyRequirement::Mergeable),
            other => Err(format!(
                "environment `{}`: apply requirement {} is unknown; use approved or mergeable",
                environment.name,
                other.map(str::to_owned).unwrap_or_else(|| item.to_string())
            )),
        })
        .collect()
}

/// A comment command as read from an `issue_comment` delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentEvent {
    pub repository: String,
    pub pull_request: u64,
    pub comment_id: u64,
    pub commenter: String,
    pub body: String,
}

/// The command in a newly created comment on a pull request; `None` for anything else (an
/// edit, a deletion, a comment on an issue, a comment by a bot).
pub fn comment_event(payload: &Value) -> Option<CommentEvent> {
    if payload.get("action").and_then(Value::as_str) != Some("created") {
        return None;
    }
    payload
        .pointer("/issue/pull_request")
        .filter(|value| !value.is_null())?;
    if payload
        .pointer("/comment/user/type")
        .and_then(Value::as_str)
        == Some("Bot")
    {
        return None;
    }
    Some(CommentEvent {
        repository: payload
            .pointer("/repository/full_name")
            .and_then(Value::as_str)?
            .to_owned(),
        pull_request: payload.pointer("/issue/number").and_then(Value::as_u64)?,
        comment_id: payload.pointer("/comment/id").and_then(Value::as_u64)?,
        commenter: payload
            .pointer("/comment/user/login")
            .and_then(Value::as_str)?
            .to_owned(),
        body: payload
            .pointer("/comment/body")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Who asks, about which pull request, at which commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRequest {
    pub repository: String,
    pub pull_request: u64,
    pub commenter: String,
    pub head_sha: String,
    pub from_fork: bool,
}

/// The answer of a handler: Markdown shown to people (built with `comment::escape` for
/// anything untrusted), or why the command was refused.
pub type CommandResult = Result<String, String>;

/// The layers that do the work of a command; the server wires the real ones.
pub trait CommandHandler: Send + Sync {
    fn plan(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
    ) -> impl Future<Output = CommandResult> + Send;
    fn apply(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
    ) -> impl Future<Output = CommandResult> + Send;
    fn approve(
        &self,
        request: &CommandRequest,
        environment: &str,
    ) -> impl Future<Output = CommandResult> + Send;
    fn unlock(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
    ) -> impl Future<Output = CommandResult> + Send;
    /// What the environment (or, for `None`, any environment the pull request touches)
    /// requires before `apply`.
    fn apply_requirements(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
    ) -> impl Future<Output = Vec<ApplyRequirement>> + Send;
}

/// What became of a comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Not a command: nothing was done.
    Ignored,
    /// The help text was posted (asked for, or the command was not understood).
    Help,
    /// Refused before the handler was called; the text was posted.
    Refused(String),
    /// The handler ran; its answer (or refusal) was posted.
    Done(CommandResult),
}

/// Acts on one comment: reaction, checks, handler, answer. GitHub errors are returned; the
/// caller logs them (a command is never retried blindly, since it may have had an effect).
pub async fn handle_comment<H: CommandHandler>(
    forge: &Forge,
    handler: &H,
    event: &CommentEvent,
) -> Result<CommandOutcome, ForgeError> {
    let command = match parse(&event.body) {
        Parsed::NotACommand => return Ok(CommandOutcome::Ignored),
        Parsed::Unknown(problem) => {
            forge
                .react(&event.repository, event.comment_id, "confused")
                .await?;
            answer(forge, event, &format!("{problem}.\n\n{HELP}")).await?;
            return Ok(CommandOutcome::Help);
        }
        Parsed::Command(command) => command,
    };
    forge
        .react(&event.repository, event.comment_id, "eyes")
        .await?;
    if command == Command::Help {
        answer(forge, event, HELP).await?;
        return Ok(CommandOutcome::Help);
    }
    let permission = forge
        .permission(&event.repository, &event.commenter)
        .await?;
    if !matches!(permission.as_str(), "admin" | "maintain" | "write") {
        let message = format!(
            "`/sluice {}` refused: {} has `{}` permission on this repository; write permission is needed.",
            command.name(),
            escape::inline(&event.commenter),
            escape::inline(&permission)
        );
        return refuse(forge, event, message).await;
    }
    let pull_request = forge
        .pull_request(&event.repository, event.pull_request)
        .await?;
    let request = CommandRequest {
        repository: event.repository.clone(),
        pull_request: event.pull_request,
        commenter: event.commenter.clone(),
        head_sha: pull_request.head_sha.clone(),
        from_fork: pull_request.from_fork,
    };
    let result = match &command {
        Command::Plan { environment } => handler.plan(&request, environment.as_deref()).await,
        Command::Apply { environment } => {
            if pull_request.from_fork {
                return refuse(
                    forge,
                    event,
                    "`/sluice apply` refused: this pull request comes from a fork, and a fork's changes are never applied. Push the branch to this repository to apply it.".to_owned(),
                )
                .await;
            }
            let requirements = handler
                .apply_requirements(&request, environment.as_deref())
                .await;
            let mut unmet = Vec::new();
            if requirements.contains(&ApplyRequirement::Approved)
                && !forge
                    .is_approved(&event.repository, event.pull_request)
                    .await?
            {
                unmet.push("approved");
            }
            if requirements.contains(&ApplyRequirement::Mergeable)
                && pull_request.mergeable != Some(true)
            {
                unmet.push("mergeable");
            }
            if !unmet.is_empty() {
                return refuse(
                    forge,
                    event,
                    format!(
                        "`/sluice apply` refused: the environment requires the pull request to be {} first.",
                        unmet.join(" and ")
                    ),
                )
                .await;
            }
            handler.apply(&request, environment.as_deref()).await
        }
        Command::Approve { environment } => handler.approve(&request, environment).await,
        Command::Unlock { environment } => handler.unlock(&request, environment.as_deref()).await,
        Command::Help => unreachable!("help is answered above"),
    };
    let text = match &result {
        Ok(text) => format!("`/sluice {}`: {text}", command.name()),
        Err(why) => format!("`/sluice {}` failed: {why}", command.name()),
    };
    answer(forge, event, &text).await?;
    Ok(CommandOutcome::Done(result))
}

async fn refuse(
    forge: &Forge,
    event: &CommentEvent,
    message: String,
) -> Result<CommandOutcome, ForgeError> {
    forge
        .react(&event.repository, event.comment_id, "-1")
        .await?;
    answer(forge, event, &message).await?;
    Ok(CommandOutcome::Refused(message))
}

async fn answer(forge: &Forge, event: &CommentEvent, text: &str) -> Result<(), ForgeError> {
    let body = format!("<!-- sluice:command-answer -->\n{text}\n");
    forge
        .reply(&event.repository, event.pull_request, &body)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expect: Parsed) {
        assert_eq!(parse(body), expect, "{body:?}");
    }

    fn command(command: Command) -> Parsed {
        Parsed::Command(command)
    }

    #[test]
    fn commands_are_read_from_the_first_sluice_line() {
        check("looks good", Parsed::NotACommand);
        check("/sluicey plan", Parsed::NotACommand);
        check("/sluice", command(Command::Help));
        check("/sluice help", command(Command::Help));
        check("/sluice plan", command(Command::Plan { environment: None }));
        check(
            "thanks!\n  /sluice plan staging  \nmore",
            command(Command::Plan {
                environment: Some("staging".into()),
            }),
        );
        check(
            "/sluice apply",
            command(Command::Apply { environment: None }),
        );
        check(
            "/sluice apply dev",
            command(Command::Apply {
                environment: Some("dev".into()),
            }),
        );
        check(
            "/sluice approve production",
            command(Command::Approve {
                environment: "production".into(),
            }),
        );
        check(
            "/sluice unlock",
            command(Command::Unlock { environment: None }),
        );
        check(
            "/sluice approve",
            Parsed::Unknown("`approve` needs an environment: `/sluice approve ENV`".into()),
        );
        check(
            "/sluice destroy",
            Parsed::Unknown("`destroy` is not a sluice command".into()),
        );
        check(
            "/sluice apply dev staging",
            Parsed::Unknown("too many words: give at most one environment".into()),
        );
        check(
            "/sluice plan <b>",
            Parsed::Unknown("`<b>` is not an environment name".into()),
        );
    }

    #[test]
    fn apply_requirements_are_read_from_the_terraform_section() {
        let environment = |terraform: Value| Environment {
            name: "production".into(),
            after: None,
            branch: None,
            description: None,
            gates: Default::default(),
            terraform: Some(terraform),
            kubernetes: None,
            airflow: None,
            mlflow: None,
            vars: Default::default(),
        };
        let both =
            environment(serde_json::json!({"apply_requirements": ["approved", "mergeable"]}));
        assert_eq!(
            apply_requirements(&both),
            Ok(vec![
                ApplyRequirement::Approved,
                ApplyRequirement::Mergeable
            ])
        );
        assert_eq!(
            apply_requirements(&environment(serde_json::json!({}))),
            Ok(vec![])
        );
        let wrong = environment(serde_json::json!({"apply_requirements": ["green"]}));
        assert!(apply_requirements(&wrong).unwrap_err().contains("green"));
    }
}
