//! `cargo xtask bench-js`: builds the npm package, installs the peers from
//! `bench/js/package-lock.json`, and runs `bench/js/bench.mjs` with the given arguments.

use crate::{run_in, wasm, workspace_root};

/// Builds `wasm/pkg/`, then runs the JS benchmark (see `bench/js/README.md`).
pub(crate) fn bench_js_command(args: &[String]) -> Result<(), String> {
    wasm::tools()?;
    wasm::build()?;
    let dir = workspace_root().join("bench").join("js");
    // Always from the lock file (five small packages: a second or two), so the peers measured
    // are exactly the committed versions.
    run_in(&dir, "npm", &["ci", "--no-audit", "--no-fund"])?;
    let mut node_args = vec!["bench.mjs"];
    node_args.extend(args.iter().map(String::as_str));
    run_in(&dir, "node", &node_args)
}
