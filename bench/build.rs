//! Exposes the exact versions pinned in `Cargo.toml` to the program, so the reports name the
//! versions that were really measured and cannot drift from the pins.
//!
//! For every dependency written `name = "=X.Y.Z"` or `name = { version = "=X.Y.Z", ... }` it sets
//! the compile-time variable `BENCH_PIN_<NAME>` (upper case, `-` as `_`) to `X.Y.Z`.

use std::fs;

fn main() -> Result<(), String> {
    println!("cargo:rerun-if-changed=Cargo.toml");
    let manifest =
        fs::read_to_string("Cargo.toml").map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    for line in manifest.lines() {
        let Some((name, rest)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(' ') || name.starts_with('#') {
            continue;
        }
        // The pinned version is the first quoted string starting with `=` on the line.
        let Some(start) = rest.find("\"=") else {
            continue;
        };
        let version: String = rest[start + 2..]
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        let var = name.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=BENCH_PIN_{var}={version}");
    }
    Ok(())
}
