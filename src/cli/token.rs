//! `sluice token create|list|revoke`: personal API tokens, made on the data directory. A new
//! token is printed once and only its sha256 is kept; a list shows who holds what, never a token.

use crate::model::access::{Role, parse_lifetime, token_sha256, token_text};
use crate::store::{Database, NewApiToken, TokenInsert};
use chrono::{TimeZone, Utc};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for a person and print it once.
    Create(CreateArgs),
    /// Every token: name, role, created, expires, revoked, last used (never the token).
    List(DataDir),
    /// Revoke a person's token; requests with it are refused from now on.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct DataDir {
    /// Where the server keeps its data (as given to `sluice serve`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The person's GitHub login: approvals and history name them by it.
    pub name: String,
    /// viewer (read), approver (approve, promote, roll back), admin (also force and unlock).
    #[arg(long)]
    pub role: String,
    /// How long the token lasts, e.g. 90d, 12h, 2w; default: until revoked.
    #[arg(long)]
    pub expires: Option<String>,
    #[command(flatten)]
    pub data: DataDir,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub name: String,
    #[command(flatten)]
    pub data: DataDir,
}

fn open(data: &DataDir) -> anyhow::Result<Arc<dyn Database>> {
    let data_dir = data
        .data_dir
        .clone()
        .unwrap_or_else(super::default_data_dir);
    std::fs::create_dir_all(&data_dir).map_err(|error| {
        anyhow::anyhow!(
            "cannot create the data directory {}: {error}; pass --data-dir as given to `sluice serve`",
            data_dir.display()
        )
    })?;
    Ok(crate::store::open(&data_dir.join("sluice.db"))?)
}

fn when(seconds: Option<i64>) -> String {
    seconds
        .and_then(|seconds| Utc.timestamp_opt(seconds, 0).single())
        .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

pub fn run(command: TokenCommand) -> anyhow::Result<bool> {
    match command {
        TokenCommand::Create(args) => create(args),
        TokenCommand::List(data) => {
            let store = open(&data)?;
            print!(
                "{}",
                render_list(&store.api_tokens()?, Utc::now().timestamp())
            );
            Ok(true)
        }
        TokenCommand::Revoke(args) => {
            let store = open(&args.data)?;
            if !store.revoke_api_token(&args.name, Utc::now().timestamp())? {
                anyhow::bail!(
                    "`{}` has no token that is not revoked; `sluice token list` shows the tokens",
                    args.name
                );
            }
            println!("revoked the token of {}", args.name);
            Ok(true)
        }
    }
}

fn create(args: CreateArgs) -> anyhow::Result<bool> {
    let Some(role) = Role::parse(&args.role) else {
        anyhow::bail!(
            "`{}` is not a role; use viewer, approver or admin",
            args.role
        );
    };
    let name = args.name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        anyhow::bail!(
            "`{}` is not a login; name the person as GitHub does, e.g. alice",
            args.name
        );
    }
    let now = Utc::now().timestamp();
    let expires_at = match &args.expires {
        Some(lifetime) => Some(now + parse_lifetime(lifetime).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let store = open(&args.data)?;
    let token = token_text(&rand::random::<[u8; 32]>());
    let inserted = store.insert_api_token(&NewApiToken {
        name: name.to_owned(),
        role,
        sha256: token_sha256(&token),
        created_at: now,
        expires_at,
    })?;
    if let TokenInsert::NameTaken(existing) = inserted {
        anyhow::bail!(
            "`{name}` already has a token ({}, created {}); revoke it first with `sluice token revoke {name}`",
            existing.role,
            when(Some(existing.created_at))
        );
    }
    eprintln!(
        "token for {name} ({role}, expires {}); it is shown only this once, keep it secret:",
        when(expires_at)
    );
    println!("{token}");
    Ok(true)
}

/// The token table for people: one line per token, never the token itself.
pub fn render_list(tokens: &[crate::store::ApiTokenRecord], now: i64) -> String {
    let mut text = format!(
        "{:<16} {:<9} {:<16} {:<16} {:<16} {}\n",
        "NAME", "ROLE", "CREATED", "EXPIRES", "REVOKED", "LAST USED"
    );
    for token in tokens {
        let expires = match token.expires_at {
            Some(at) if at <= now => format!("{} (expired)", when(Some(at))),
            other => when(other),
        };
        text.push_str(&format!(
            "{:<16} {:<9} {:<16} {:<16} {:<16} {}\n",
            token.name,
            token.role.as_str(),
            when(Some(token.created_at)),
            expires,
            when(token.revoked_at),
            when(token.last_used_at)
        ));
    }
    text
}
