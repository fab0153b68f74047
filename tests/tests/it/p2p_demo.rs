//! The peer-to-peer example converges over real (loopback) UDP despite dropped datagrams.

use p2p_state::{DemoConfig, run};

#[test]
fn replicas_converge_over_lossy_udp() {
    let config = DemoConfig {
        peers: 4,
        edit_rounds: 40,
        loss_percent: 40,
        seed: 7,
        ..DemoConfig::default()
    };
    let report = run(&config).expect("the demo runs on loopback");
    assert!(report.converged, "replicas did not converge: {report:?}");
    assert!(report.edits > 0);
    assert!(
        report.datagrams_dropped > 0,
        "the network should have lost something"
    );
    // Every peer ends with the same inventory, equal to the sum of all edits.
    assert_eq!(report.final_total, report.expected_total);
}
