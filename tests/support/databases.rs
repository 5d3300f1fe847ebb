//! The store's two databases for tests that must hold on both: SQLite in a temporary file, and
//! PostgreSQL in a throwaway cluster (`initdb` and `pg_ctl` from `SLUICE_POSTGRES_BIN`, `PATH`
//! or Debian's package). Without PostgreSQL the PostgreSQL half is skipped with a message, unless
//! `SLUICE_REQUIRE_POSTGRES=1` (as `scripts/test.sh` sets), which fails it instead.
// Each test binary that includes this file uses the part it needs.
#![allow(dead_code)]

use sluice::store::{PostgresStore, SqliteStore, ThrowawayCluster};

/// A PostgreSQL cluster for this test, or `None` (with the reason printed) when the machine has
/// none and none is required.
pub fn postgres_cluster() -> Option<ThrowawayCluster> {
    let required = std::env::var("SLUICE_REQUIRE_POSTGRES").is_ok_and(|value| value == "1");
    let Some(binaries) = sluice::store::postgres_binaries() else {
        assert!(
            !required,
            "SLUICE_REQUIRE_POSTGRES=1 but no PostgreSQL was found: install Debian's `postgresql` \
             package or set SLUICE_POSTGRES_BIN to the directory holding initdb and pg_ctl"
        );
        eprintln!("skipping the PostgreSQL half: no initdb found (set SLUICE_POSTGRES_BIN)");
        return None;
    };
    Some(ThrowawayCluster::start(&binaries).unwrap_or_else(|error| panic!("{error}")))
}

/// Runs `test` on a new SQLite store, then on a new PostgreSQL store when there is one.
pub fn on_both_stores(test: impl Fn(&dyn sluice::store::Database)) {
    let directory = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&directory.path().join("sluice.db")).unwrap();
    test(&sqlite);
    drop(sqlite);
    if let Some(cluster) = postgres_cluster() {
        let url = cluster.database("store").unwrap();
        let postgres = PostgresStore::open(&url).unwrap();
        test(&postgres);
    }
}
