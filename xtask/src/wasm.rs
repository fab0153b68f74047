//! `cargo xtask wasm`: builds the npm package into `wasm/pkg/` from a clean checkout, and the
//! package's tests (part of `cargo xtask test`).
//!
//! Steps: the wasm32 build of `crdt-wasm` (profile `wasm-release`), the JS glue by the
//! wasm-bindgen CLI at exactly the version in Cargo.lock (installed if missing), `wasm-opt`
//! from npm's `binaryen` (never Debian's: TOOLCHAIN.md), then the hand-written files of
//! `wasm/npm/` (entry points, types, package.json) and `wasm/js/errors.js`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{output_of, run, run_in, workspace_root};

const PROFILE: &str = "wasm-release";

/// The wasm-bindgen version pinned in Cargo.lock.
fn locked_wasm_bindgen_version() -> Result<String, String> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock"))
        .map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
        {
            return Ok(version.trim_matches('"').to_string());
        }
    }
    Err("Cargo.lock has no wasm-bindgen entry".into())
}

/// Node and npm, installed from Debian where missing.
fn node_tools() -> Result<(), String> {
    if output_of("node", &["--version"]).is_empty() || output_of("npm", &["--version"]).is_empty() {
        run("apt-get", &["update"])?;
        run(
            "apt-get",
            &["install", "-y", "--no-install-recommends", "nodejs", "npm"],
        )?;
    }
    Ok(())
}

/// The wasm-bindgen CLI at the locked version, and the npm dev tools from the committed lock
/// file (`wasm/package-lock.json`).
pub(crate) fn tools() -> Result<(), String> {
    let version = locked_wasm_bindgen_version()?;
    let installed = output_of("wasm-bindgen", &["--version"]);
    if installed.split_whitespace().nth(1) != Some(version.as_str()) {
        // Not `--locked`: the CLI's own lock file pins a crate the registry no longer serves.
        run(
            "cargo",
            &[
                "install",
                "wasm-bindgen-cli",
                "--version",
                &version,
                "--force",
            ],
        )?;
    }
    node_tools()?;
    let wasm_dir = workspace_root().join("wasm");
    // npm records what it installed in node_modules/.package-lock.json: older than the
    // committed lock file means a dependency was added or changed since (`ws` for the sync
    // client's tests, say), so install again.
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let stale = match (
        modified(&wasm_dir.join("package-lock.json")),
        modified(&wasm_dir.join("node_modules/.package-lock.json")),
    ) {
        (Some(lock), Some(installed)) => lock > installed,
        _ => true,
    };
    if stale
        || !wasm_dir.join("node_modules/.bin/wasm-opt").exists()
        || !wasm_dir.join("node_modules/.bin/tsc").exists()
        || !wasm_dir.join("node_modules/playwright-core").exists()
    {
        run_in(&wasm_dir, "npm", &["ci", "--no-audit", "--no-fund"])?;
    }
    Ok(())
}

/// Builds the package into `wasm/pkg/`; returns its directory.
pub(crate) fn build() -> Result<PathBuf, String> {
    tools()?;
    let root = workspace_root();
    run(
        "cargo",
        &[
            "build",
            "--package",
            "crdt-wasm",
            "--target",
            crate::WASM_TARGET,
            "--profile",
            PROFILE,
        ],
    )?;
    let pkg = root.join("wasm").join("pkg");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg).map_err(|e| format!("{}: {e}", pkg.display()))?;
    }
    let built = root
        .join("target")
        .join(crate::WASM_TARGET)
        .join(PROFILE)
        .join("crdt_wasm.wasm");
    let pkg_arg = pkg.to_string_lossy().into_owned();
    run(
        "wasm-bindgen",
        &[
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "crdt_wasm",
            "--out-dir",
            &pkg_arg,
            &built.to_string_lossy(),
        ],
    )?;
    let wasm = pkg.join("crdt_wasm_bg.wasm");
    let wasm_arg = wasm.to_string_lossy().into_owned();
    let wasm_opt = root.join("wasm/node_modules/.bin/wasm-opt");
    run(
        &wasm_opt.to_string_lossy(),
        &["-Oz", &wasm_arg, "-o", &wasm_arg],
    )?;
    for entry in std::fs::read_dir(root.join("wasm/npm")).map_err(|e| format!("wasm/npm: {e}"))? {
        let entry = entry.map_err(|e| format!("wasm/npm: {e}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // TypeScript sources are compiled below; their build settings stay out of the package.
        let typescript_source = name.ends_with(".ts") && !name.ends_with(".d.ts");
        if !typescript_source && name != "tsconfig.json" {
            copy(&entry.path(), &pkg.join(entry.file_name()))?;
        }
    }
    // The sync client (client.ts, storage.ts, tabs.ts) into JS and declarations in pkg/.
    let tsc = root.join("wasm/node_modules/.bin/tsc");
    run(
        &tsc.to_string_lossy(),
        &[
            "--project",
            &root.join("wasm/npm/tsconfig.json").to_string_lossy(),
        ],
    )?;
    copy(&root.join("wasm/js/errors.js"), &pkg.join("errors.js"))?;
    copy(&root.join("wasm/README.md"), &pkg.join("README.md"))?;
    share_error_module(&pkg)?;
    report_size(&pkg)?;
    Ok(pkg)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

/// The glue imports `errors.js` from its snippet directory; the entry point exports
/// `CrdtError` from the package's own `errors.js`. Turning the snippet into a re-export makes
/// them one class, so `instanceof CrdtError` holds for what the wasm throws.
fn share_error_module(pkg: &Path) -> Result<(), String> {
    let snippets = pkg.join("snippets");
    let mut found = 0;
    for dir in std::fs::read_dir(&snippets).map_err(|e| format!("{}: {e}", snippets.display()))? {
        let dir = dir.map_err(|e| e.to_string())?.path();
        let errors = dir.join("js").join("errors.js");
        if errors.exists() {
            std::fs::write(
                &errors,
                "// Re-exports the package's error module: one CrdtError class for all.\nexport { CrdtError, makeCrdtError } from '../../../errors.js';\n",
            )
            .map_err(|e| format!("{}: {e}", errors.display()))?;
            found += 1;
        }
    }
    if found == 1 {
        Ok(())
    } else {
        Err(format!(
            "expected one snippets/*/js/errors.js in {}, found {found}",
            pkg.display()
        ))
    }
}

/// Prints the raw and gzip sizes of the wasm and the JS glue.
fn report_size(pkg: &Path) -> Result<(), String> {
    println!("\npackage sizes (raw / gzip -9):");
    for name in [
        "crdt_wasm_bg.wasm",
        "crdt_wasm.js",
        "client.js",
        "storage.js",
        "tabs.js",
    ] {
        let bytes = std::fs::read(pkg.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let mut gzip = Command::new("gzip")
            .args(["-9", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("gzip: {e}"))?;
        if let Some(mut stdin) = gzip.stdin.take() {
            use std::io::Write;
            stdin.write_all(&bytes).map_err(|e| format!("gzip: {e}"))?;
        }
        let out = gzip.wait_with_output().map_err(|e| format!("gzip: {e}"))?;
        println!(
            "  {name:<20} {:>9} bytes  {:>9} bytes gzipped",
            bytes.len(),
            out.stdout.len()
        );
    }
    Ok(())
}

/// The package's tests: the bindings' wasm-bindgen tests under Node, node's test runner
/// against the built package, the types checked strictly on a consumer file, the packed
/// tarball installed and used in a fresh directory, and a page in headless Chromium.
pub(crate) fn test() -> Result<(), String> {
    let pkg = build()?;
    // The bindings' own wasm-bindgen tests, in wasm under Node.
    run(
        "env",
        &[
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner",
            "cargo",
            "test",
            "--package",
            "crdt-wasm",
            "--target",
            crate::WASM_TARGET,
        ],
    )?;
    let root = workspace_root();
    let wasm_dir = root.join("wasm");
    // The SyncClient tests start real server processes (already built by the Rust tests, so
    // this is quick).
    run(
        "cargo",
        &["build", "--package", "sync-server", "--bin", "sync-server"],
    )?;
    let server = root.join("target/debug/sync-server");
    let server_env = format!("SYNC_SERVER_BIN={}", server.display());
    run_in(
        &wasm_dir,
        "env",
        &[
            &server_env,
            "node",
            "--expose-gc",
            "--test",
            "--test-reporter=spec",
            "test/",
        ],
    )?;
    let tsc = wasm_dir.join("node_modules/.bin/tsc");
    run_in(
        &wasm_dir,
        &tsc.to_string_lossy(),
        &["--project", "test/tsconfig.json"],
    )?;
    packed_install(&pkg)?;
    test_in_chromium()
}

/// Where Debian's Chromium lives (TOOLCHAIN.md: Playwright drives it; never its own download).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Debian's `fonts-noto-color-emoji`, so screenshots show emoji.
const EMOJI_FONT: &str = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf";

/// The package in a real browser: `wasm/browser/run.mjs` serves `wasm/` on loopback, opens
/// `browser/index.html` (a plain `<script type="module">` page) in headless Chromium, checks
/// it reports PASS without console errors, and saves a screenshot in `wasm/pkg/`; then
/// `browser/sync.test.mjs` runs pages of `browser/sync.html` against a real sync-server.
fn test_in_chromium() -> Result<(), String> {
    // The emoji font too: without it the screenshot shows the page's emoji as empty boxes.
    if !Path::new(CHROMIUM).exists() || !Path::new(EMOJI_FONT).exists() {
        run("apt-get", &["update"])?;
        run(
            "env",
            &[
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "fonts-noto-color-emoji",
            ],
        )?;
    }
    let wasm_dir = workspace_root().join("wasm");
    run_in(&wasm_dir, "node", &["browser/run.mjs"])?;
    // The sync client end to end: pages syncing through a real server (screenshots in
    // pkg/screenshots/).
    let server = workspace_root().join("target/debug/sync-server");
    let server_env = format!("SYNC_SERVER_BIN={}", server.display());
    run_in(
        &wasm_dir,
        "env",
        &[
            &server_env,
            "node",
            "--test",
            "--test-reporter=spec",
            "browser/sync.test.mjs",
        ],
    )
}

/// `npm pack`, then install the tarball in an empty directory and use it from Node ESM.
fn packed_install(pkg: &Path) -> Result<(), String> {
    let scratch = std::env::temp_dir().join(format!("crdt-npm-pack-{}", std::process::id()));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let scratch_arg = scratch.to_string_lossy().into_owned();
    run_in(pkg, "npm", &["pack", "--pack-destination", &scratch_arg])?;
    let tarball = std::fs::read_dir(&scratch)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or("npm pack made no tarball")?;
    let app = scratch.join("app");
    std::fs::create_dir_all(&app).map_err(|e| e.to_string())?;
    std::fs::write(
        app.join("package.json"),
        "{ \"name\": \"app\", \"private\": true, \"type\": \"module\" }\n",
    )
    .map_err(|e| e.to_string())?;
    run_in(
        &app,
        "npm",
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--offline",
            &tarball.to_string_lossy(),
        ],
    )?;
    copy(
        &workspace_root().join("wasm/packed/use-package.mjs"),
        &app.join("use-package.mjs"),
    )?;
    run_in(&app, "node", &["use-package.mjs"])?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// `cargo xtask wasm [--test]`: builds the package and prints where it is; with `--test`,
/// runs the package's tests too.
pub(crate) fn wasm_command(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--test") {
        return test();
    }
    let pkg = build()?;
    println!("\nnpm package built in {}", pkg.display());
    Ok(())
}
