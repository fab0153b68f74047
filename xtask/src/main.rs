//! Workflows that take more than one cargo command. Run through the cargo alias:
//!
//! - `cargo xtask test`: the whole test suite, installing what it needs first (what CI runs);
//! - `cargo xtask setup`: only the installation steps;
//! - `cargo xtask lint`: formatting and clippy checks only.
//!
//! Every step prints what it runs; the first failure stops the run with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The rustup targets and components the suite needs.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
const COMPONENTS: [&str; 2] = ["rustfmt", "clippy"];

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "test" => setup().and_then(|()| lint()).and_then(|()| test()),
        "setup" => setup(),
        "lint" => lint(),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  test   install what is needed, then lint and run every test\n  setup  install what is needed (rustup target and components)\n  lint   cargo fmt --check and cargo clippy"
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
    println!("\n==> {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
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
    )
}

fn test() -> Result<(), String> {
    // The default members: everything but `bench`, whose peer libraries are slow to build and
    // which is a program, not tests. (Clippy above still checks it.)
    run("cargo", &["test"])?;
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
