//! `cargo xtask soak --seeds N [--start S]`: many seeds of the deterministic simulation
//! (`integration_tests::sim`), optimised, on every core. A failing seed is printed with the
//! command that replays it.

use std::process::Command;
use std::time::Instant;

use crate::workspace_root;

/// Parses `--seeds N [--start S]` and runs the simulation test on those seeds in release.
pub fn soak_command(args: &[String]) -> Result<(), String> {
    let mut seeds: u64 = 10_000;
    let mut start: u64 = 0;
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{} needs a number", args[i]))?;
        match args[i].as_str() {
            "--seeds" => seeds = value,
            "--start" => start = value,
            other => {
                return Err(format!(
                    "unknown option {other}; usage: soak --seeds N [--start S]"
                ));
            }
        }
        i += 2;
    }
    println!(
        "\n==> simulation: seeds {start}..{} (release)",
        start + seeds
    );
    let began = Instant::now();
    let status = Command::new("cargo")
        .args([
            "test",
            "--release",
            "--package",
            "integration-tests",
            "--test",
            "it",
            "sim::replicas_converge_after_faults_for_every_seed",
            "--",
            "--exact",
            "--nocapture",
        ])
        .env("SIM_SEEDS", seeds.to_string())
        .env("SIM_START", start.to_string())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    println!(
        "    ({:.1} s with the build)",
        began.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "some of seeds {start}..{} failed; each failure above prints its seed and replay command",
            start + seeds
        ))
    }
}
