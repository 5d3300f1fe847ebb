//! Personal API tokens as SQL: one row per token with its owner's login, role, when it was made,
//! when it expires, when it was revoked and last used. Only the token's sha256 is stored; the
//! token itself is shown once by `sluice token create` and never again. Knows nothing of HTTP or
//! of what a role may do.

use super::error::{FailureResult, StoreResult};
use super::sql::{Connection, OptionalExtension, params};
use super::sql_store::{Backend, SqlStore};
use crate::model::access::Role;

/// A token about to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiToken {
    /// The owner's login (`alice`): approvals and history name them.
    pub name: String,
    pub role: Role,
    /// Hex sha256 of the token.
    pub sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A stored token, without the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiTokenRecord {
    /// Why the token no longer opens anything at `now`, if it does not.
    pub fn refusal(&self, now: i64) -> Option<String> {
        if self.revoked_at.is_some() {
            return Some(format!(
                "the token of `{}` was revoked; ask an admin for a new one (`sluice token create {} --role ...`)",
                self.name, self.name
            ));
        }
        match self.expires_at {
            Some(expires_at) if expires_at <= now => Some(format!(
                "the token of `{}` expired; ask an admin to revoke it and create a new one",
                self.name
            )),
            _ => None,
        }
    }
}

/// What storing a token did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenInsert {
    Created,
    /// The name already has a token that is not revoked; nothing was written.
    NameTaken(ApiTokenRecord),
}

/// The personal-token part of the store. Methods may block on IO.
pub trait ApiTokens: Send + Sync {
    /// Durable when it returns. Refuses a name that has a token not revoked.
    fn insert_api_token(&self, token: &NewApiToken) -> StoreResult<TokenInsert>;
    /// The token with this sha256, revoked or expired or not.
    fn api_token_by_sha256(&self, sha256: &str) -> StoreResult<Option<ApiTokenRecord>>;
    /// Every token ever made, oldest first.
    fn api_tokens(&self) -> StoreResult<Vec<ApiTokenRecord>>;
    /// Revokes the name's token; `false` when it has none that is not revoked.
    fn revoke_api_token(&self, name: &str, at: i64) -> StoreResult<bool>;
    /// Records that the token with this sha256 was used at `at`.
    fn touch_api_token(&self, sha256: &str, at: i64) -> StoreResult<()>;
}

const COLUMNS: &str = "name, role, created_at, expires_at, revoked_at, last_used_at";

fn record_from_row(row: &super::sql::Row) -> super::sql::SqlResult<ApiTokenRecord> {
    let role: String = row.get(1)?;
    Ok(ApiTokenRecord {
        name: row.get(0)?,
        // A role this sluice does not know opens no more than reading.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: row.get(2)?,
        expires_at: row.get(3)?,
        revoked_at: row.get(4)?,
        last_used_at: row.get(5)?,
    })
}

fn insert(connection: &Connection, token: &NewApiToken) -> FailureResult<TokenInsert> {
    let existing = connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL"),
            [&token.name],
            record_from_row,
        )
        .optional()?;
    if let Some(existing) = existing {
        return Ok(TokenInsert::NameTaken(existing));
    }
    connection.execute(
        "INSERT INTO api_tokens (name, role, sha256, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.name,
            token.role.as_str(),
            token.sha256,
            token.created_at,
            token.expires_at
        ],
    )?;
    Ok(TokenInsert::Created)
}

impl<B: Backend> ApiTokens for SqlStore<B> {
    fn insert_api_token(&self, token: &NewApiToken) -> StoreResult<TokenInsert> {
        let token = token.clone();
        self.backend
            .write("storing an api token", move |connection| {
                insert(connection, &token)
            })
    }

    fn api_token_by_sha256(&self, sha256: &str) -> StoreResult<Option<ApiTokenRecord>> {
        self.backend.read("reading an api token", |connection| {
            Ok(connection
                .query_row(
                    &format!("SELECT {COLUMNS} FROM api_tokens WHERE sha256 = ?1"),
                    [sha256],
                    record_from_row,
                )
                .optional()?)
        })
    }

    fn api_tokens(&self) -> StoreResult<Vec<ApiTokenRecord>> {
        self.backend.read("listing api tokens", |connection| {
            let mut statement = connection
                .prepare_cached(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id"))?;
            let rows = statement
                .query_map(params![], record_from_row)?
                .collect::<super::sql::SqlResult<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn revoke_api_token(&self, name: &str, at: i64) -> StoreResult<bool> {
        let name = name.to_owned();
        self.backend
            .write("revoking an api token", move |connection| {
                let changed = connection.execute(
                    "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                    params![name, at],
                )?;
                Ok(changed > 0)
            })
    }

    fn touch_api_token(&self, sha256: &str, at: i64) -> StoreResult<()> {
        let sha256 = sha256.to_owned();
        self.backend
            .write("recording an api token's use", move |connection| {
                connection.execute(
                    "UPDATE api_tokens SET last_used_at = ?2 WHERE sha256 = ?1",
                    params![sha256, at],
                )?;
                Ok(())
            })
    }
}

/// The migration that creates the token table and gives requests a forced promotion's reason.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE api_tokens (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL,
        sha256       TEXT NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER,
        last_used_at INTEGER
    );
    CREATE UNIQUE INDEX api_tokens_one_live_per_name ON api_tokens (name) WHERE revoked_at IS NULL;

    ALTER TABLE deploy_requests ADD COLUMN force_reason TEXT;
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, sha256: &str) -> NewApiToken {
        NewApiToken {
            name: name.into(),
            role: Role::Approver,
            sha256: sha256.into(),
            created_at: 100,
            expires_at: Some(200),
        }
    }

    #[test]
    fn a_name_holds_one_live_token_until_it_is_revoked_and_lookups_go_by_hash() {
        let directory = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&directory.path().join("sluice.db")).unwrap();
        assert_eq!(
            store.insert_api_token(&token("alice", "aa")).unwrap(),
            TokenInsert::Created
        );
        assert!(matches!(
            store.insert_api_token(&token("alice", "bb")).unwrap(),
            TokenInsert::NameTaken(existing) if existing.name == "alice"
        ));
        let found = store.api_token_by_sha256("aa").unwrap().unwrap();
        assert_eq!((found.name.as_str(), found.role), ("alice", Role::Approver));
        assert_eq!(found.refusal(150), None);
        assert!(found.refusal(200).unwrap().contains("expired"));
        assert!(store.api_token_by_sha256("bb").unwrap().is_none());

        store.touch_api_token("aa", 160).unwrap();
        assert!(store.revoke_api_token("alice", 170).unwrap());
        assert!(!store.revoke_api_token("alice", 171).unwrap());
        let revoked = store.api_token_by_sha256("aa").unwrap().unwrap();
        assert_eq!(revoked.last_used_at, Some(160));
        assert!(revoked.refusal(150).unwrap().contains("revoked"));
        assert_eq!(
            store.insert_api_token(&token("alice", "bb")).unwrap(),
            TokenInsert::Created
        );
        assert_eq!(store.api_tokens().unwrap().len(), 2);
    }
}
