//! `cargo xtask bench-servers`: builds the release server and the npm package, installs the
//! peer servers and their clients from `bench/servers/package-lock.json`, and runs the server
//! benchmark (`bench/servers/fanout.mjs`; see bench/README.md). Not part of `cargo xtask
//! test`: it measures, it does not check behaviour.

use crate::wasm;
use crate::{run, run_in, workspace_root};

pub(crate) fn bench_servers_command(args: &[String]) -> Result<(), String> {
    run(
        "cargo",
        &[
            "build",
            "--release",
            "--package",
            "sync-server",
            "--bin",
            "sync-server",
        ],
    )?;
    wasm::tools()?;
    wasm::build()?;
    let dir = workspace_root().join("bench").join("servers");
    // From the lock file, so the peers measured are exactly the committed versions.
    run_in(&dir, "npm", &["ci", "--no-audit", "--no-fund"])?;
    let mut node_args = vec!["fanout.mjs"];
    node_args.extend(args.iter().map(String::as_str));
    run_in(&dir, "node", &node_args)
}
