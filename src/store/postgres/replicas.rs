//! What only PostgreSQL can do for several replicas: the leader's lock (a session advisory lock
//! on a connection of its own, released by PostgreSQL the moment that connection ends, so a
//! replica killed with -9 gives leadership up at once) and messages between replicas
//! (`NOTIFY` on a connection kept for it, `LISTEN` on one per subscription that reconnects).

use super::Postgres;
use super::session::{PgSession, postgres_error};
use crate::store::StoreResult;
use crate::store::error::Failure;
use crate::store::replicas::{Leadership, ReplicaBackend};
use crate::store::sql::{Connection, params};
use std::time::Duration;

/// The key of the session advisory lock the leading replica holds.
const LEADER_LOCK: i64 = 0x736c_7569_6365_0002;

/// How long a lost `LISTEN` connection waits before connecting again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

struct HeldLock {
    session: std::sync::Mutex<PgSession>,
}

impl Leadership for HeldLock {
    fn still_held(&self) -> bool {
        let session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let connection: &Connection = &*session;
        connection.execute_batch("SELECT 1").is_ok()
    }
}

impl Postgres {
    fn store_error(
        &self,
        operation: &'static str,
        error: crate::store::sql::SqlError,
    ) -> crate::store::StoreError {
        Failure::Sql(error).into_store_error(&self.database, operation)
    }

    /// Runs `work` outside any transaction on the connection kept in `slot`, connecting again
    /// when there is none yet or the server closed it.
    fn on_own_connection<T>(
        &self,
        slot: &std::sync::Mutex<Option<PgSession>>,
        operation: &'static str,
        work: impl FnOnce(&Connection) -> crate::store::sql::SqlResult<T>,
    ) -> StoreResult<T> {
        let mut kept = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept
            .as_ref()
            .is_none_or(|session| session.client.is_closed())
        {
            *kept = Some(
                self.connect()
                    .map_err(|error| self.store_error(operation, error))?,
            );
        }
        let connection: &Connection = kept.as_ref().expect("connected above");
        work(connection).map_err(|error| self.store_error(operation, error))
    }
}

impl ReplicaBackend for Postgres {
    /// On a connection of its own, outside any transaction: one `UPDATE` of the replica's row,
    /// which no serializable transaction of a claim can make fail or wait behind the pool.
    fn renew_lease(&self, replica: &str, lease_until: String) -> StoreResult<bool> {
        self.on_own_connection(&self.leases, "renewing a replica's lease", |connection| {
            let renewed =
                connection.execute(crate::store::replicas::RENEW, params![replica, lease_until])?;
            Ok(renewed == 1)
        })
    }

    fn try_lead(&self) -> StoreResult<Option<Box<dyn Leadership>>> {
        let operation = "taking the leader's lock";
        let session = self
            .connect()
            .map_err(|error| self.store_error(operation, error))?;
        let connection: &Connection = &session;
        let taken: bool = connection
            .query_row("SELECT pg_try_advisory_lock(?1)", [LEADER_LOCK], |row| {
                row.get(0)
            })
            .map_err(|error| self.store_error(operation, error))?;
        Ok(taken.then(|| {
            Box::new(HeldLock {
                session: std::sync::Mutex::new(session),
            }) as Box<dyn Leadership>
        }))
    }

    fn publish(&self, channel: &str, payloads: &[String]) -> StoreResult<()> {
        self.on_own_connection(
            &self.publisher,
            "notifying the other replicas",
            |connection| {
                for payload in payloads {
                    connection.execute("SELECT pg_notify(?1, ?2)", params![channel, payload])?;
                }
                Ok(())
            },
        )
    }

    fn subscribe(
        &self,
        channel: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let url = self.url.clone();
        let listen = format!("LISTEN \"{}\"", channel.replace('"', ""));
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        runtime.spawn(async move {
            while !sender.is_closed() {
                match listen_once(&url, &listen, &sender).await {
                    Ok(()) => {}
                    Err(error) => {
                        tracing::warn!(error = %postgres_error(error), "listening for other replicas failed; connecting again");
                    }
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        });
        Ok(Some(receiver))
    }
}

/// Listens until the connection ends or nobody reads any more.
async fn listen_once(
    url: &str,
    listen: &str,
    sender: &tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (messages, mut received) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|context| connection.poll_message(context)).await;
            match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(notification))) => {
                    if messages.send(notification.payload().to_string()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    client.batch_execute(listen).await?;
    while let Some(payload) = received.recv().await {
        if sender.send(payload).is_err() {
            break;
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}
