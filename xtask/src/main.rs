//! Workflows that take more than one cargo command. Run through the cargo alias:
//!
//! - `cargo xtask test`: the whole test suite, installing what it needs first (what CI runs);
//! - `cargo xtask setup`: only the installation steps;
//! - `cargo xtask lint`: formatting and clippy checks only;
//! - `cargo xtask wasm [--test]`: builds the npm package into `wasm/pkg/` and prints its sizes
//!   (`--test`: then runs the package's tests);
//! - `cargo xtask fuzz [--seconds N] [TARGET ...]`: runs the cargo-fuzz targets (all by
//!   default) for N seconds each (default 60), on nightly;
//! - `cargo xtask soak [--seeds N] [--start S]`: N seeds (default 10 000) of the deterministic
//!   simulation, in release.
//!
//! Every step prints what it runs; the first failure stops the run with a non-zero exit.

mod bench_js;
mod bench_servers;
mod postgres;
mod soak;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The rustup targets and components the suite needs.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
const COMPONENTS: [&str; 2] = ["rustfmt", "clippy"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().cloned().unwrap_or_default();
    let result = match task.as_str() {
        "test" => setup()
            .and_then(|()| lint())
            .and_then(|()| test())
            .and_then(|()| wasm::test())
            .and_then(|()| fuzz_briefly()),
        "setup" => setup(),
        "lint" => lint(),
        "wasm" => setup().and_then(|()| wasm::wasm_command(&args[1..])),
        "bench-js" => setup().and_then(|()| bench_js::bench_js_command(&args[1..])),
        "bench-servers" => setup().and_then(|()| bench_servers::bench_servers_command(&args[1..])),
        "fuzz" => fuzz_command(&args[1..]),
        "soak" => soak::soak_command(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  test   install what is needed, then lint, run every test, fuzz each target briefly\n  setup  install what is needed (rustup target and components)\n  lint   cargo fmt --check and cargo clippy\n  wasm   [--test]: build the npm package into wasm/pkg and print its sizes (--test: and test it)\n  bench-js [ARGS]: build the package, then run bench/js (Node: crdt-toolkit, Yjs, Loro, Automerge); ARGS go to bench/js/bench.mjs\n  bench-servers [ARGS]: build the release server and the package, then run bench/servers (sync-server, Hocuspocus, y-websocket-server); ARGS go to bench/servers/fanout.mjs\n  fuzz   [--seconds N] [TARGET ...]: run the fuzz targets (nightly, cargo-fuzz)\n  soak   [--seeds N] [--start S]: run N seeds of the deterministic simulation (release)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {task}: FAILED: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Runs a command in the workspace root, echoing it, and fails if it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_in(&workspace_root(), program, args)
}

/// Runs a command in `dir`, echoing it, and fails if it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    println!("\n==> {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("could not start {program}: {e}"))?;
    println!("    ({:.1} s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` exited with {status}",
            args.join(" ")
        ))
    }
}

/// Output of a command, or an empty string if it cannot run.
fn output_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Installs what the suite needs, skipping what is already there.
fn setup() -> Result<(), String> {
    let targets = output_of("rustup", &["target", "list", "--installed"]);
    if !targets.lines().any(|t| t.trim() == WASM_TARGET) {
        run("rustup", &["target", "add", WASM_TARGET])?;
    }
    let components = output_of("rustup", &["component", "list", "--installed"]);
    for component in COMPONENTS {
        if !components.lines().any(|c| c.starts_with(component)) {
            run("rustup", &["component", "add", component])?;
        }
    }
    Ok(())
}

fn lint() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "--deny",
            "warnings",
        ],
    )?;
    // The bindings' wasm-only code and tests (compiled out natively).
    run(
        "cargo",
        &[
            "clippy",
            "--package",
            "crdt-wasm",
            "--all-targets",
            "--target",
            WASM_TARGET,
            "--",
            "--deny",
            "warnings",
        ],
    )
}

fn test() -> Result<(), String> {
    // The default members: everything but `bench`, whose peer libraries are slow to build and
    // which is a program, not tests. (Clippy above still checks it.)
    // sync-server's PostgreSQL storage tests get a throwaway server in CRDT_TEST_POSTGRES_URL
    // (they skip themselves, with the reason printed, where none can be started).
    postgres::with_test_postgres(|env| run("env", &[env, &["cargo", "test"]].concat()))?;
    // Tests too slow unoptimized (compiled only without debug assertions): the asynchronous
    // Eg-walker trace A1 replayed with one replica per agent.
    run(
        "cargo",
        &[
            "test",
            "--release",
            "--package",
            "crdt-core",
            "--test",
            "it",
            "concurrent_trace_a1",
        ],
    )?;
    // The core must build for browsers, with and without its default features.
    run(
        "cargo",
        &["build", "--package", "crdt-core", "--target", WASM_TARGET],
    )?;
    run(
        "cargo",
        &[
            "build",
            "--package",
            "crdt-core",
            "--target",
            WASM_TARGET,
            "--no-default-features",
        ],
    )?;
    println!("\nall checks passed");
    Ok(())
}

/// The fuzz targets of `fuzz/` (cargo-fuzz, outside the workspace).
const FUZZ_TARGETS: [&str; 9] = [
    "convergence",
    "wire_frame",
    "node_frame",
    "client_session",
    "text_update",
    "list_update",
    "document_update",
    "sync_message",
    "state_codecs",
];

/// Makes nightly and cargo-fuzz available, installing them if needed; `Err` says why not.
fn fuzz_tools() -> Result<(), String> {
    let toolchains = output_of("rustup", &["toolchain", "list"]);
    if !toolchains.lines().any(|t| t.starts_with("nightly")) {
        run(
            "rustup",
            &["toolchain", "install", "nightly", "--profile", "minimal"],
        )?;
    }
    let installed = output_of("cargo", &["install", "--list"]);
    if !installed.lines().any(|l| l.starts_with("cargo-fuzz ")) {
        run("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    Ok(())
}

/// Runs `targets` for `seconds` each, from a scratch copy of the committed seed corpus (new
/// inputs go to `fuzz/target/corpus`, so the repository's corpus stays small).
fn fuzz(targets: &[&str], seconds: u64) -> Result<(), String> {
    let fuzz_dir = workspace_root().join("fuzz");
    for target in targets {
        let scratch = fuzz_dir.join("target").join("corpus").join(target);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let seeds = fuzz_dir.join("corpus").join(target);
        let time = format!("-max_total_time={seconds}");
        println!("\n==> fuzzing {target} for {seconds} s");
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", target])
            .arg(&scratch)
            .arg(&seeds)
            .args(["--", &time, "-rss_limit_mb=2048", "-print_final_stats=1"])
            .current_dir(&fuzz_dir)
            .status()
            .map_err(|e| format!("could not start cargo fuzz: {e}"))?;
        if !status.success() {
            return Err(format!(
                "fuzz target {target} failed; the crashing input is in fuzz/artifacts/{target}"
            ));
        }
    }
    Ok(())
}

/// `cargo xtask fuzz [--seconds N] [TARGET ...]`.
fn fuzz_command(args: &[String]) -> Result<(), String> {
    let mut seconds = 60;
    let mut targets: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--seconds" {
            seconds = args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or("--seconds needs a number")?;
            i += 2;
            continue;
        }
        match FUZZ_TARGETS.iter().find(|t| **t == args[i]) {
            Some(target) => targets.push(target),
            None => {
                return Err(format!(
                    "unknown fuzz target {}; targets: {FUZZ_TARGETS:?}",
                    args[i]
                ));
            }
        }
        i += 1;
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    fuzz_tools()?;
    fuzz(&targets, seconds)
}

/// Part of the test command: every target for a few seconds where nightly and cargo-fuzz can
/// be had, and a clear note where they cannot.
fn fuzz_briefly() -> Result<(), String> {
    match fuzz_tools() {
        Ok(()) => fuzz(&FUZZ_TARGETS, 10),
        Err(why) => {
            println!("\nfuzzing SKIPPED: nightly or cargo-fuzz is not available here ({why})");
            Ok(())
        }
    }
}
