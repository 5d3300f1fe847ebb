//! A throwaway PostgreSQL cluster in a temporary directory, for the test suite and the
//! benchmarks: `initdb`, then `pg_ctl start -w` on a free loopback port, stopped and deleted on
//! drop. PostgreSQL refuses to run as root, so when sluice's tests run as root the cluster runs
//! as `nobody`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where PostgreSQL's programs are: `SLUICE_POSTGRES_BIN`, then `PATH`, then Debian's
/// `/usr/lib/postgresql/VERSION/bin` (the newest).
pub fn binaries() -> Option<PathBuf> {
    if let Some(directory) = std::env::var_os("SLUICE_POSTGRES_BIN") {
        return Some(PathBuf::from(directory));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|directory| directory.join("initdb").is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|directory| directory.join("initdb").is_file())
        .collect();
    debian.sort();
    debian.pop()
}

/// A running cluster. Each caller makes its own databases in it with `database`.
pub struct ThrowawayCluster {
    binaries: PathBuf,
    directory: tempfile::TempDir,
    port: u16,
    user: Option<(u32, u32)>,
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|error| format!("cannot run {what}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("cannot find a free port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| error.to_string())
}

impl ThrowawayCluster {
    /// Starts a cluster with PostgreSQL's programs in `binaries`.
    pub fn start(binaries: &Path) -> Result<ThrowawayCluster, String> {
        let directory = tempfile::Builder::new()
            .prefix("sluice-postgres-")
            .tempdir()
            .map_err(|error| format!("cannot make a directory for the cluster: {error}"))?;
        let user = crate::ownership::running_as_root().then_some((65534, 65534));
        if let Some(user) = user {
            crate::ownership::hand_over(directory.path(), user)
                .map_err(|error| format!("cannot hand the cluster directory to nobody: {error}"))?;
        }
        let mut cluster = ThrowawayCluster {
            binaries: binaries.to_path_buf(),
            directory,
            port: free_port()?,
            user,
        };
        let data = cluster.data();
        let mut initdb = cluster.command("initdb");
        initdb
            .args([
                "-U",
                "sluice",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
                "-D",
            ])
            .arg(&data);
        run(initdb, "initdb")?;
        // Another process may take the free port between looking and binding: try another.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match run(cluster.start_command(), "pg_ctl start") {
                Ok(()) => break,
                Err(_) if attempts < 5 && cluster.log().contains("Address already in use") => {
                    cluster.port = free_port()?;
                }
                Err(error) => return Err(format!("{error}\n{}", cluster.log())),
            }
        }
        Ok(cluster)
    }

    fn start_command(&self) -> Command {
        let options = format!(
            "-p {} -h 127.0.0.1 -k {} -F -c max_connections=300",
            self.port,
            self.directory.path().display()
        );
        let mut start = self.command("pg_ctl");
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.directory.path().join("server.log"))
            .args(["-o", &options]);
        start
    }

    fn data(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.binaries.join(program));
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command.current_dir(self.directory.path());
        command
    }

    /// The URL of a new, empty database `name` in this cluster.
    pub fn database(&self, name: &str) -> Result<String, String> {
        let url = |database: &str| format!("postgres://sluice@127.0.0.1:{}/{database}", self.port);
        let maintenance = url("postgres");
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', ""));
        // Its own thread and runtime, so that this works from async tests too.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&maintenance, tokio_postgres::NoTls)
                        .await
                        .map_err(|error| format!("cannot connect to {maintenance}: {error}"))?;
                let driver = tokio::spawn(connection);
                let created = client
                    .batch_execute(&statement)
                    .await
                    .map_err(|error| format!("{statement} failed: {error}"));
                drop(client);
                let _ = driver.await;
                created
            })
        })
        .join()
        .map_err(|_| "creating the database panicked".to_string())??;
        Ok(url(name))
    }

    /// What the server logged, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data());
        let _ = stop.output();
    }
}
