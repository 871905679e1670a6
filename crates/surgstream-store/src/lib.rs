//! The event store: PostgreSQL.
//!
//! - [`Store::connect`] and [`Store::migrate`] — the schema lives in `migrations/` at the
//!   repository root and is embedded in the binary.
//! - [`apply_event`] — applies one event inside a transaction, enforcing the procedure and robot
//!   lifecycles; an event that must not be applied is rolled back to a savepoint and reported as
//!   a [`Rejection`] (the caller dead-letters it) while the rest of the batch goes on.
//! - [`offsets`] — `ingest_offsets` with compare-and-set, and the `lake_files` manifest.
//! - [`compaction`] — the manifest's side of compaction: swaps, and the files they retired.
//! - [`raw`] — the raw archive's manifest, `raw_files`.

mod apply;
pub mod compaction;
pub mod lifecycle;
pub mod offsets;
pub mod raw;

use std::future::Future;
use std::time::{Duration, SystemTime};

pub use apply::{Applied, Outcome, Rejection, Source, apply_event, apply_events};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgPool};

/// The schema's migrations (migrations/), embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Why PostgreSQL could not be used. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DATABASE_URL could not be parsed.
    #[error("invalid DATABASE_URL: {0}")]
    Url(String),
    /// The server did not accept a connection.
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        /// host:port/database (no credentials).
        target: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate PostgreSQL at {target}: {source}{}", if *.denied {
        " (this role may not create tables: run `surgstream migrate` once as the schema's \
         owner, and start the ingestor with --skip-migrate: docs/security.md)"
    } else { "" })]
    Migrate {
        /// host:port/database (no credentials).
        target: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
        /// Whether PostgreSQL refused the privilege (SQLSTATE 42501).
        denied: bool,
    },
    /// `--skip-migrate`, and the schema lacks a migration this build needs.
    #[error(
        "PostgreSQL at {target} lacks migration {version} ({description}): run `surgstream \
         migrate` as the schema's owner before starting the ingestor with --skip-migrate"
    )]
    NotMigrated {
        /// host:port/database (no credentials).
        target: String,
        /// The first migration missing.
        version: i64,
        /// Its description.
        description: String,
    },
    /// A statement failed.
    #[error("PostgreSQL {what}: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A row this program wrote cannot be read back (a bug, or a hand edit).
    #[error("{0}")]
    Invalid(String),
    /// Another consumer advanced the offsets of this partition: this one was fenced.
    #[error(
        "offset compare-and-set failed for {group}/{topic}/{partition}: expected next offset {expected:?}, another consumer moved it"
    )]
    Fenced {
        /// Consumer group.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The next offset this consumer expected to find.
        expected: Option<i64>,
    },
}

impl StoreError {
    /// Whether trying again later may succeed: the connection was lost or refused, the server is
    /// shutting down or starting up (a PostgreSQL restart), the pool timed out. Not: bad data,
    /// a fenced consumer, a failed migration.
    pub fn is_transient(&self) -> bool {
        let driver = match self {
            Self::Connect { .. } => return true,
            Self::Query { source, .. } => source,
            _ => return false,
        };
        match driver {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                // 08: connection exception; 57P01–57P03: admin shutdown, crash shutdown,
                // cannot connect now (starting up).
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        }
    }

    /// Wraps a driver error with what was being done.
    pub fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Query { what, source }
    }
}

/// A pool of connections to the event store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    target: String,
}

/// `host:port/database` of a URL, without user or password, for messages.
pub fn redacted_target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432),
            if u.path().is_empty() { "/" } else { u.path() }
        ),
        Err(_) => "<unparseable DATABASE_URL>".to_owned(),
    }
}

/// A password made anew for each new connection (an RDS IAM authentication token): the
/// password and when it stops being accepted.
pub type PasswordSource = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(String, SystemTime), String>> + Send>>
        + Send
        + Sync,
>;

impl Store {
    /// Connects (and checks the connection) within `timeout`.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::connect_with(url, max_connections, timeout, None).await
    }

    /// [`Store::connect`]; with `password`, every connection's password comes from it (the URL
    /// holds none): the pool takes a new one when two thirds of the last one's life are over,
    /// so that connections opened later never present an expired token. Such a password is sent
    /// to the server as it is, so the URL must ask for TLS (`sslmode=require` or stricter).
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        timeout: Duration,
        password: Option<PasswordSource>,
    ) -> Result<Self, StoreError> {
        let target = redacted_target(url);
        let mut opts: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|e| StoreError::Url(redact_error(&e.to_string(), url)))?
            .application_name("surgstream")
            .log_statements(tracing::log::LevelFilter::Trace);
        let mut expires = None;
        if let Some(source) = &password {
            if url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
                return Err(StoreError::Url(
                    "the URL holds a password, and IAM authentication makes its own: remove it"
                        .into(),
                ));
            }
            if !matches!(
                opts.get_ssl_mode(),
                PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
            ) {
                return Err(StoreError::Url(
                    "IAM authentication sends its token as the password, so the URL must ask for \
                     TLS: sslmode=verify-full with sslrootcert=<the RDS CA bundle> (or at least \
                     sslmode=require)"
                        .into(),
                ));
            }
            let (token, until) = source().await.map_err(|e| StoreError::Connect {
                target: target.clone(),
                source: sqlx::Error::Configuration(e.into()),
            })?;
            opts = opts.password(&token);
            expires = Some((SystemTime::now(), until));
        }
        // One direct connection first: a pool only reports "timed out", this says why.
        let probe = tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&opts)).await;
        match probe {
            Ok(Ok(conn)) => drop(conn),
            Ok(Err(source)) => return Err(StoreError::Connect { target, source }),
            Err(_) => {
                return Err(StoreError::Connect {
                    target,
                    source: sqlx::Error::PoolTimedOut,
                });
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .connect_with(opts.clone())
            .await
            .map_err(|source| StoreError::Connect {
                target: target.clone(),
                source,
            })?;
        if let (Some(source), Some(life)) = (password, expires) {
            tokio::spawn(renew_passwords(pool.clone(), opts, source, life));
        }
        Ok(Self { pool, target })
    }

    /// Applies the embedded migrations; safe to run any number of times.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|source| StoreError::Migrate {
                target: self.target.clone(),
                denied: matches!(&source, sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some("42501")),
                source,
            })
    }

    /// Checks, without changing anything, that every migration of this build has been applied
    /// (`--skip-migrate`: a role without DDL rights reads `_sqlx_migrations` instead of running
    /// them).
    pub async fn check_migrated(&self) -> Result<(), StoreError> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .or_else(|e| match &e {
                    // No migration table: nothing applied.
                    sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(vec![]),
                    _ => Err(e),
                })
                .map_err(|source| StoreError::Query {
                    what: "read the applied migrations",
                    source,
                })?;
        match MIGRATOR
            .iter()
            .find(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        {
            Some(m) => Err(StoreError::NotMigrated {
                target: self.target.clone(),
                version: m.version,
                description: m.description.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One round trip (`SELECT 1`): whether the database answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::query("ping"))
    }

    /// `host:port/database`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Rows in each table of the data model, for summaries.
    pub async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in [
            "surgical_robots",
            "surgical_procedures",
            "procedure_outcomes",
            "robot_maintenance_logs",
        ] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await
                .map_err(StoreError::query("count rows"))?;
            out.push((table, n));
        }
        Ok(out)
    }
}

/// Gives the pool a new password when two thirds of the last one's life are over (at least a
/// second apart; ten seconds after a failure, while connections opened meanwhile still use the
/// last one), until the pool is closed.
async fn renew_passwords(
    pool: PgPool,
    opts: PgConnectOptions,
    source: PasswordSource,
    (mut signed, mut until): (SystemTime, SystemTime),
) {
    loop {
        let life = until.duration_since(signed).unwrap_or_default();
        let renew_at = signed + life * 2 / 3;
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .max(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        if pool.is_closed() {
            return;
        }
        match source().await {
            Ok((token, next)) => {
                pool.set_connect_options(opts.clone().password(&token));
                (signed, until) = (SystemTime::now(), next);
                tracing::debug!(
                    valid_for_s = until
                        .duration_since(signed)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                    "new IAM authentication token for PostgreSQL connections"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a new IAM authentication token for PostgreSQL; trying again in 10 s");
                (signed, until) = (
                    SystemTime::now(),
                    SystemTime::now() + Duration::from_secs(15),
                );
            }
        }
    }
}

fn redact_error(msg: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(pw) if !pw.is_empty() => msg.replace(&pw, "***"),
        _ => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_never_show_credentials() {
        assert_eq!(
            redacted_target("postgres://u:secret@db.example:6543/prod"),
            "db.example:6543/prod"
        );
        assert_eq!(
            redacted_target("postgres://127.0.0.1/x"),
            "127.0.0.1:5432/x"
        );
        assert_eq!(
            redact_error("bad secret here", "postgres://u:secret@h/d"),
            "bad *** here"
        );
    }
}
