//! `cargo run -p p2p-state -- [--peers N] [--loss PERCENT] [--rounds N] [--seed N] [--verbose]`

use std::process::ExitCode;

use p2p_state::{DemoConfig, run};

fn parse_args() -> Result<DemoConfig, String> {
    let mut config = DemoConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value"))
                .and_then(|v| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}")))
        };
        match flag.as_str() {
            "--peers" => config.peers = value()? as usize,
            "--loss" => config.loss_percent = value()?.min(100) as u8,
            "--rounds" => config.edit_rounds = value()? as u32,
            "--seed" => config.seed = value()?,
            "--verbose" => config.verbose = true,
            "--help" | "-h" => {
                return Err(
                    "usage: p2p-state [--peers N] [--loss PERCENT] [--rounds N] [--seed N] [--verbose]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}; try --help")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{} peers on 127.0.0.1 editing a shared stock list for {} rounds, dropping {}% of datagrams",
        config.peers, config.edit_rounds, config.loss_percent
    );
    let report = match run(&config) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("demo failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{} edits; {} datagrams sent ({} bytes), {} dropped, {} carried a whole state",
        report.edits,
        report.datagrams_sent,
        report.bytes_sent,
        report.datagrams_dropped,
        report.full_states_sent
    );
    for (item, count) in &report.inventory {
        println!("  {item:>8}: {count}");
    }
    if report.converged && report.final_total == report.expected_total {
        println!(
            "converged {} rounds after the last edit; total {} matches the sum of all edits",
            report.sync_rounds, report.final_total
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("did NOT converge: {report:?}");
        ExitCode::FAILURE
    }
}
