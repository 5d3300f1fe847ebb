//! The forge layer: what sluice tells GitHub about pull requests and commits, and the commands
//! people give it in pull-request comments. Owns the GitHub client (`client`: octocrab, retries,
//! Enterprise URLs, token or App auth), the living pull-request comment (`comment`), commit
//! statuses (`status`) or, as a GitHub App, check runs with annotations (`check_run`), comment
//! commands (`commands`), fork rules (`fork`) and the outbox that
//! keeps what GitHub did not take (`publish`). It must not know how runs are scheduled or stored:
//! the scheduler calls it with model types, and commands reach other layers through
//! `commands::CommandHandler`. With no GitHub configured, nothing here is built and nothing is
//! posted.

pub mod check_run;
pub mod client;
pub mod commands;
pub mod comment;
pub mod error;
pub mod fork;
pub mod publish;
mod publish_checks;
pub mod report;
pub mod status;
pub mod teams;

pub use check_run::{Annotation, CheckRun};
pub use client::{GithubAuth, GithubClient, Method, RetryPolicy};
pub use commands::{CommandHandler, CommandOutcome, CommandRequest};
pub use comment::{CommentInput, PolicyOutcome, PolicyResult, Section, SectionKind};
pub use error::ForgeError;
pub use publish::{Forge, OutboxItem};
pub use status::CommitStatus;

use crate::config::server::GithubConfig;
use crate::store::Outbox;
use std::sync::Arc;

/// Builds the forge from the server configuration's `github:` section; `Ok(None)` when there
/// is none. The token is read from the environment variable the configuration names.
pub fn from_config(
    config: Option<&GithubConfig>,
    outbox: Arc<dyn Outbox>,
) -> Result<Option<Forge>, ForgeError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let api_url = config
        .api_url
        .clone()
        .unwrap_or_else(|| "https://api.github.com".to_owned());
    let auth = match (&config.token_env, config.app_id, &config.private_key_path) {
        (Some(variable), None, None) => {
            let token = std::env::var(variable).map_err(|_| {
                ForgeError::Config(format!(
                    "github.token-env names `{variable}`, which is not set; export the token in it"
                ))
            })?;
            GithubAuth::Token(token)
        }
        (None, Some(app_id), Some(path)) => {
            let private_key_pem = std::fs::read(path).map_err(|error| {
                ForgeError::Config(format!(
                    "cannot read the github app private key {}: {error}; check github.private-key-path",
                    path.display()
                ))
            })?;
            GithubAuth::App {
                app_id,
                private_key_pem,
            }
        }
        _ => {
            return Err(ForgeError::Config(
                "github: give either token-env, or app-id with private-key-path".to_owned(),
            ));
        }
    };
    let client = GithubClient::new(&api_url, auth)?;
    Ok(Some(
        Forge::new(client, outbox).with_run_url_base(config.run_url.clone()),
    ))
}
