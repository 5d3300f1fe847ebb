//! Comment commands on pull requests: `/sluice plan [ENV]`, `/sluice apply [ENV]`,
//! `/sluice approve ENV [RELEASE]`, `/sluice unlock [ENV]`, `/sluice run`, `/sluice help`. The
//! commenter is the GitHub login of the signed delivery; GitHub is asked for their permission on
//! the repository, and everything but `help` needs write permission. `apply` is refused on a
//! fork's pull request and unless the environment's `apply_requirements` hold. sluice
//! acknowledges each command at once with a reaction and answers it with one reply. The work
//! itself is done by a `CommandHandler` the server provides (plans, locks, approvals live
//! elsewhere).

use super::comment::escape;
use super::error::ForgeError;
use super::publish::{Forge, PullRequestState};
use crate::terraform::ApplyRequirement;
use serde_json::Value;
use std::future::Future;

/// A command sluice understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Plan {
        environment: Option<String>,
    },
    Apply {
        environment: Option<String>,
    },
    Approve {
        environment: String,
        release: Option<String>,
    },
    Unlock {
        environment: Option<String>,
    },
    /// Lets the waiting runs of a fork's pull request start.
    Run,
    Help,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plan { .. } => "plan",
            Command::Apply { .. } => "apply",
            Command::Approve { .. } => "approve",
            Command::Unlock { .. } => "unlock",
            Command::Run => "run",
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
**sluice commands** (comment on the pull request; write permission on the repository needed):

| Command | What it does |
| --- | --- |
| `/sluice plan [ENV]` | plan again at the pull request's head, every environment or only `ENV` |
| `/sluice apply [ENV]` | apply this pull request's reviewed plan where the environment says `apply: on-comment` (never from a fork) |
| `/sluice approve ENV [RELEASE]` | approve the release of this pull request (or `RELEASE`) for `ENV` |
| `/sluice unlock [ENV]` | release the Terraform locks this pull request holds |
| `/sluice run` | let the waiting runs of a pull request from a fork start |
| `/sluice help` | show this text |
";

/// The marker of sluice's own answers, so they are never read as commands.
pub const ANSWER_MARKER: &str = "<!-- sluice:command-answer -->";

/// Every comment sluice writes carries a marker starting so; such a comment is never a command,
/// even when sluice posts as a user (a personal token) rather than as a bot.
const OWN_MARKER: &str = "<!-- sluice:";

/// Reads the first line that starts with `/sluice`, outside quotes (`> /sluice apply` is a
/// quoted reply, not a command) and code blocks.
pub fn parse(body: &str) -> Parsed {
    if body.contains(OWN_MARKER) {
        return Parsed::NotACommand;
    }
    let mut in_fence = false;
    let mut command_line = None;
    for line in body.lines().map(str::trim) {
        if line.starts_with("```") || line.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence && (line == "/sluice" || line.starts_with("/sluice ")) {
            command_line = Some(line);
            break;
        }
    }
    let Some(line) = command_line else {
        return Parsed::NotACommand;
    };
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let name = |word: &str, what: &str| -> Result<String, String> {
        if valid_name(word) {
            Ok(word.to_owned())
        } else {
            Err(format!("`{}` is not {what}", word.replace('`', "'")))
        }
    };
    let environment = |words: &[&str]| -> Result<Option<String>, String> {
        match words {
            [] => Ok(None),
            [word] => name(word, "an environment name").map(Some),
            _ => Err("too many words: give at most one environment".to_owned()),
        }
    };
    let result = match words.split_first() {
        None => return Parsed::Command(Command::Help),
        Some((&"help", [])) => Ok(Command::Help),
        Some((&"run", [])) => Ok(Command::Run),
        Some((&"run", _)) => Err("`run` takes no arguments: `/sluice run`".to_owned()),
        Some((&"plan", rest)) => environment(rest).map(|environment| Command::Plan { environment }),
        Some((&"apply", rest)) => {
            environment(rest).map(|environment| Command::Apply { environment })
        }
        Some((&"unlock", rest)) => {
            environment(rest).map(|environment| Command::Unlock { environment })
        }
        Some((&"approve", rest)) => match rest {
            [] => Err("`approve` needs an environment: `/sluice approve ENV [RELEASE]`".to_owned()),
            [environment] => {
                name(environment, "an environment name").map(|environment| Command::Approve {
                    environment,
                    release: None,
                })
            }
            [environment, release] => {
                name(environment, "an environment name").and_then(|environment| {
                    name(release, "a release id").map(|release| Command::Approve {
                        environment,
                        release: Some(release),
                    })
                })
            }
            _ => Err("too many words: `/sluice approve ENV [RELEASE]`".to_owned()),
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

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
}

/// A comment command as read from an `issue_comment` delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentEvent {
    pub repository: String,
    pub pull_request: u64,
    pub comment_id: u64,
    /// The GitHub login of the comment's author, from the signed delivery.
    pub commenter: String,
    pub body: String,
}

/// The comment in a newly created comment on a pull request; `None` for anything else (an
/// edit, a deletion, a comment on an issue, a comment by a bot).
pub fn comment_event(payload: &Value) -> Option<CommentEvent> {
    if payload.get("action").and_then(Value::as_str) != Some("created") {
        return None;
    }
    payload
        .pointer("/issue/pull_request")
        .filter(|value| !value.is_null())?;
    let user_type = payload
        .pointer("/comment/user/type")
        .and_then(Value::as_str);
    let login = payload
        .pointer("/comment/user/login")
        .and_then(Value::as_str)?;
    if user_type == Some("Bot") || login.ends_with("[bot]") {
        return None;
    }
    Some(CommentEvent {
        repository: payload
            .pointer("/repository/full_name")
            .and_then(Value::as_str)?
            .to_owned(),
        pull_request: payload.pointer("/issue/number").and_then(Value::as_u64)?,
        comment_id: payload.pointer("/comment/id").and_then(Value::as_u64)?,
        commenter: login.to_owned(),
        body: payload
            .pointer("/comment/body")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// The command of an `issue_comment` payload, if it holds one sluice must answer.
pub fn command_of(payload: &Value) -> Option<(CommentEvent, Parsed)> {
    let event = comment_event(payload)?;
    match parse(&event.body) {
        Parsed::NotACommand => None,
        parsed => Some((event, parsed)),
    }
}

/// Who asks, about which pull request, as GitHub describes it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRequest {
    pub repository: String,
    pub pull_request: u64,
    pub commenter: String,
    /// `admin`, `maintain` or `write`, as GitHub answered.
    pub permission: String,
    pub state: PullRequestState,
}

/// The answer of a handler: Markdown shown to people (built with `comment::escape` for
/// anything untrusted), or why the command was refused and what would make it pass.
pub type CommandResult = Result<String, String>;

/// The layers that do the work of a command; the server wires the real ones.
pub trait CommandHandler: Send + Sync {
    fn plan(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
    ) -> impl Future<Output = CommandResult> + Send;
    /// Checks the environment's apply mode and requirements itself (it knows the settings).
    fn apply(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
        approved: bool,
    ) -> impl Future<Output = CommandResult> + Send;
    fn approve(
        &self,
        request: &CommandRequest,
        environment: &str,
        release: Option<&str>,
    ) -> impl Future<Output = CommandResult> + Send;
    fn unlock(
        &self,
        request: &CommandRequest,
        environment: Option<&str>,
    ) -> impl Future<Output = CommandResult> + Send;
    fn run(&self, request: &CommandRequest) -> impl Future<Output = CommandResult> + Send;
    /// What the environments `apply` would touch require (to ask GitHub only what is needed).
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
    /// Refused before or by the handler; the text was posted.
    Refused(String),
    /// The handler did the work; its answer was posted.
    Done(String),
}

impl CommandOutcome {
    /// One line for the store and the log.
    pub fn summary(&self) -> String {
        let text = match self {
            CommandOutcome::Ignored => "ignored".to_owned(),
            CommandOutcome::Help => "answered with the help".to_owned(),
            CommandOutcome::Refused(why) => format!("refused: {why}"),
            CommandOutcome::Done(answer) => format!("done: {answer}"),
        };
        text.lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect()
    }
}

/// Acts on one comment: reaction, permission, handler, answer. GitHub errors are returned; the
/// caller records them (a command is never retried blindly, since it may have had an effect).
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
            "`/sluice {}` refused: GitHub says @{} has `{}` permission on this repository; sluice commands need write permission (ask a maintainer to grant it, or to comment the command).",
            command.name(),
            escape::inline(&event.commenter),
            escape::inline(&permission)
        );
        return refuse(forge, event, message).await;
    }
    let state = forge
        .pull_request(&event.repository, event.pull_request)
        .await?;
    let request = CommandRequest {
        repository: event.repository.clone(),
        pull_request: event.pull_request,
        commenter: event.commenter.clone(),
        permission,
        state,
    };
    let result = match &command {
        Command::Plan { environment } => handler.plan(&request, environment.as_deref()).await,
        Command::Apply { environment } => {
            if request.state.from_fork {
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
            let approved = if requirements.contains(&ApplyRequirement::Approved) {
                forge
                    .is_approved(&event.repository, event.pull_request)
                    .await?
            } else {
                true
            };
            handler
                .apply(&request, environment.as_deref(), approved)
                .await
        }
        Command::Approve {
            environment,
            release,
        } => {
            handler
                .approve(&request, environment, release.as_deref())
                .await
        }
        Command::Unlock { environment } => handler.unlock(&request, environment.as_deref()).await,
        Command::Run => handler.run(&request).await,
        Command::Help => unreachable!("help is answered above"),
    };
    match result {
        Ok(text) => {
            forge
                .react(&event.repository, event.comment_id, "rocket")
                .await?;
            answer(
                forge,
                event,
                &format!(
                    "`/sluice {}` by @{}: {text}",
                    command.name(),
                    escape::inline(&event.commenter)
                ),
            )
            .await?;
            Ok(CommandOutcome::Done(text))
        }
        Err(why) => {
            refuse(
                forge,
                event,
                format!("`/sluice {}` refused: {why}", command.name()),
            )
            .await
        }
    }
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

/// Posts one reply to the comment's pull request.
pub async fn answer(forge: &Forge, event: &CommentEvent, text: &str) -> Result<(), ForgeError> {
    let body = format!("{ANSWER_MARKER}\n{text}\n");
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
    fn commands_are_read_from_the_first_sluice_line_outside_quotes_and_code() {
        check("looks good", Parsed::NotACommand);
        check("/sluicey plan", Parsed::NotACommand);
        check("> /sluice apply", Parsed::NotACommand);
        check("```\n/sluice apply\n```", Parsed::NotACommand);
        check(
            &format!("{ANSWER_MARKER}\n/sluice plan"),
            Parsed::NotACommand,
        );
        check(
            "<!-- sluice:pr-comment pipeline=platform -->\n/sluice plan",
            Parsed::NotACommand,
        );
        check("/sluice", command(Command::Help));
        check("/sluice help", command(Command::Help));
        check("/sluice run", command(Command::Run));
        check("/sluice plan", command(Command::Plan { environment: None }));
        check(
            "> /sluice apply\nthanks!\n  /sluice plan staging  \nmore",
            command(Command::Plan {
                environment: Some("staging".into()),
            }),
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
                release: None,
            }),
        );
        check(
            "/sluice approve production r12-0123456789ab",
            command(Command::Approve {
                environment: "production".into(),
                release: Some("r12-0123456789ab".into()),
            }),
        );
        check(
            "/sluice unlock",
            command(Command::Unlock { environment: None }),
        );
        check(
            "/sluice approve",
            Parsed::Unknown(
                "`approve` needs an environment: `/sluice approve ENV [RELEASE]`".into(),
            ),
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
    fn only_new_comments_by_people_on_pull_requests_are_read() {
        let payload = |action: &str, user_type: &str, login: &str| {
            serde_json::json!({
                "action": action,
                "issue": { "number": 4, "pull_request": { "url": "x" } },
                "comment": { "id": 9, "body": "/sluice plan", "user": { "login": login, "type": user_type } },
                "repository": { "full_name": "acme/ml" },
            })
        };
        assert!(command_of(&payload("created", "User", "dana")).is_some());
        assert!(command_of(&payload("edited", "User", "dana")).is_none());
        assert!(command_of(&payload("deleted", "User", "dana")).is_none());
        assert!(command_of(&payload("created", "Bot", "sluice")).is_none());
        assert!(command_of(&payload("created", "User", "renovate[bot]")).is_none());
    }
}
