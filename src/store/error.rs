//! The store's error type. Every message names the database and says what to do next. It
//! carries database errors as text, so that no driver type leaks to callers and one failed
//! commit can be reported to every caller whose write was in it.

use crate::model::RunId;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the directory {directory} for the store database {database}: {message}; \
         check the path and its permissions"
    )]
    CreateDirectory {
        database: String,
        directory: String,
        message: String,
    },

    #[error(
        "cannot open the store database {database}: {message}; check that the path is a \
         writable SQLite file (or does not exist yet)"
    )]
    Open { database: String, message: String },

    #[error(
        "cannot bring the store database {database} to schema version {version}: {message}; \
         restore a backup or move the file away to start empty"
    )]
    Migrate {
        database: String,
        version: i64,
        message: String,
    },

    #[error(
        "the store database {database} has schema version {found}, newer than the {supported} \
         this sluice understands; upgrade sluice or point it at another database"
    )]
    NewerSchema {
        database: String,
        found: i64,
        supported: i64,
    },

    #[error("store database {database}: {operation} failed: {message}; check the disk and retry")]
    Database {
        database: String,
        operation: &'static str,
        message: String,
    },

    #[error(
        "store database {database}: no delivery `{delivery}`; store the delivery before \
         completing it"
    )]
    UnknownDelivery { database: String, delivery: String },

    #[error("store database {database}: no run {run}; list the runs to find its id")]
    UnknownRun { database: String, run: RunId },

    #[error(
        "store database {database}: run {run} has no job `{job}`; use a job name the run was \
         created with"
    )]
    UnknownJob {
        database: String,
        run: RunId,
        job: String,
    },

    #[error(
        "the store writer for {database} has stopped, so nothing more can be written; \
         restart sluice and look for an earlier error"
    )]
    WriterStopped { database: String },
}

/// What an operation inside the store can run into, before it is told which database and which
/// operation it belongs to.
#[derive(Debug)]
pub enum Failure {
    Sql(super::sql::SqlError),
    UnknownDelivery(String),
    UnknownRun(RunId),
    UnknownJob(RunId, String),
}

impl From<super::sql::SqlError> for Failure {
    fn from(error: super::sql::SqlError) -> Failure {
        Failure::Sql(error)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Failure {
        Failure::Sql(error.into())
    }
}

impl Failure {
    pub(crate) fn into_store_error(self, database: &str, operation: &'static str) -> StoreError {
        let database = database.to_string();
        match self {
            Failure::Sql(error) => StoreError::Database {
                database,
                operation,
                message: error.to_string(),
            },
            Failure::UnknownDelivery(delivery) => {
                StoreError::UnknownDelivery { database, delivery }
            }
            Failure::UnknownRun(run) => StoreError::UnknownRun { database, run },
            Failure::UnknownJob(run, job) => StoreError::UnknownJob { database, run, job },
        }
    }
}

pub type FailureResult<T> = Result<T, Failure>;
