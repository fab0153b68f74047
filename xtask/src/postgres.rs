//! A throwaway PostgreSQL server for the sync server's storage tests.
//!
//! `cargo xtask test` calls [`with_test_postgres`] around `cargo test`: it finds the server
//! binaries (`/usr/lib/postgresql/<version>/bin`, installing the Debian package `postgresql`
//! when running as root and they are missing), creates a fresh cluster in a temporary
//! directory, starts it on 127.0.0.1 on a free port (unix sockets in that directory too, fsync
//! off: the data is thrown away), creates a database and hands its URL to the tests in
//! `CRDT_TEST_POSTGRES_URL`. The server is stopped and its directory removed afterwards, whether
//! the tests passed or not. When no server can be had, the reason is printed and the PostgreSQL
//! tests skip themselves. If `CRDT_TEST_POSTGRES_URL` is already set, that server is used and
//! nothing is started.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// The environment variable the storage tests read.
pub const URL_VARIABLE: &str = "CRDT_TEST_POSTGRES_URL";

/// Where Debian installs the server binaries, one directory per major version.
const DEBIAN_PREFIX: &str = "/usr/lib/postgresql";

/// The database created for the tests.
const DATABASE: &str = "crdt_test";

/// The server started by [`start_test_postgres`], for [`stop_test_postgres`].
static RUNNING: Mutex<Option<Running>> = Mutex::new(None);

struct Running {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres_user: bool,
}

/// Runs `body` with a test PostgreSQL server: `body` receives the `env` assignments to put
/// before its commands (`["CRDT_TEST_POSTGRES_URL=…"]`, or nothing when no server could be
/// started or the variable is already set). The server is stopped afterwards, even if `body`
/// fails.
pub fn with_test_postgres(body: impl FnOnce(&[&str]) -> Result<(), String>) -> Result<(), String> {
    if std::env::var_os(URL_VARIABLE).is_some() {
        println!("\n==> PostgreSQL tests use {URL_VARIABLE} from the environment");
        return body(&[]);
    }
    let assignment = start_test_postgres()?.map(|url| format!("{URL_VARIABLE}={url}"));
    let env: Vec<&str> = assignment.iter().map(String::as_str).collect();
    let result = body(&env);
    stop_test_postgres();
    result
}

/// Starts a fresh PostgreSQL server for the tests and returns its database URL, or `Ok(None)`
/// (with the reason printed) if none can be started here. Stop it with [`stop_test_postgres`].
pub fn start_test_postgres() -> Result<Option<String>, String> {
    match start() {
        Ok(url) => {
            println!("    PostgreSQL for the tests: {url}");
            Ok(Some(url))
        }
        Err(why) => {
            stop_test_postgres();
            println!("\nPostgreSQL storage tests SKIPPED: {why}");
            Ok(None)
        }
    }
}

/// Stops the server started by [`start_test_postgres`] (if any) and removes its directory.
pub fn stop_test_postgres() {
    let running = RUNNING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let Some(running) = running else {
        return;
    };
    let data = running.dir.join("data");
    if let Err(why) = pg(
        &running,
        "pg_ctl",
        &["-D", &path_str(&data), "-m", "fast", "-w", "stop"],
    ) {
        eprintln!("could not stop the test PostgreSQL: {why}");
    }
    if let Err(e) = std::fs::remove_dir_all(&running.dir) {
        eprintln!("could not remove {}: {e}", running.dir.display());
    }
}

fn start() -> Result<String, String> {
    let root = is_root();
    let bin = match find_server_binaries() {
        Some(bin) => bin,
        None => {
            install(root)?;
            find_server_binaries().ok_or_else(|| {
                format!(
                    "the package postgresql is installed but {DEBIAN_PREFIX}/*/bin has no server"
                )
            })?
        }
    };
    let postgres_user = Command::new("id").arg("postgres").output();
    if root && !postgres_user.is_ok_and(|o| o.status.success()) {
        return Err(
            "running as root, but there is no OS user `postgres` to run initdb as (initdb refuses root)"
                .to_owned(),
        );
    }
    let dir = std::env::temp_dir().join(format!("crdt-test-postgres-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let running = Running {
        bin,
        dir: dir.clone(),
        as_postgres_user: root,
    };
    if root {
        crate::run("chown", &["postgres:postgres", &path_str(&dir)])?;
    }
    let data = path_str(&dir.join("data"));
    pg(
        &running,
        "initdb",
        &[
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
    )?;
    let port = free_port()?;
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -F",
        path_str(&dir)
    );
    let log = path_str(&dir.join("server.log"));
    // From here on the server may be running: record it so that it is stopped on any failure.
    *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) = Some(Running {
        bin: running.bin.clone(),
        dir: running.dir.clone(),
        as_postgres_user: root,
    });
    pg(
        &running,
        "pg_ctl",
        &[
            "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
        ],
    )
    .map_err(|why| {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        format!("{why}\nserver log:\n{log}")
    })?;
    let port = port.to_string();
    pg(
        &running,
        "createdb",
        &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", DATABASE],
    )?;
    Ok(format!("postgresql://postgres@127.0.0.1:{port}/{DATABASE}"))
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `pg_ctl`.
fn find_server_binaries() -> Option<PathBuf> {
    let entries = std::fs::read_dir(DEBIAN_PREFIX).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

fn install(root: bool) -> Result<(), String> {
    if !root {
        return Err(format!(
            "no PostgreSQL server binaries in {DEBIAN_PREFIX}/*/bin, and not running as root to \
             install them: install the Debian package `postgresql` (sudo apt-get install \
             postgresql), or point {URL_VARIABLE} at a server"
        ));
    }
    println!("\n==> installing PostgreSQL (Debian package postgresql) for the storage tests");
    for args in [
        &["update", "-q"][..],
        &[
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "postgresql",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("could not run apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("`apt-get {}` exited with {status}", args.join(" ")));
        }
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Runs a PostgreSQL program from `running.bin`, as the `postgres` OS user when we are root.
fn pg(running: &Running, program: &str, args: &[&str]) -> Result<(), String> {
    let program = path_str(&running.bin.join(program));
    let mut command = if !running.as_postgres_user {
        let mut command = Command::new(&program);
        command.args(args);
        command
    } else if Path::new("/usr/sbin/runuser").exists() || Path::new("/sbin/runuser").exists() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", &program]).args(args);
        command
    } else {
        let line = std::iter::once(program.as_str())
            .chain(args.iter().copied())
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new("su");
        command.args(["postgres", "-s", "/bin/sh", "-c", &line]);
        command
    };
    // The postgres user may not be allowed into the caller's directory.
    command.current_dir(&running.dir);
    println!("\n==> {program} {}", args.join(" "));
    let output = command
        .output()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program}` exited with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
