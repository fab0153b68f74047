//! `Client::close` right after the client reports Connected returns promptly (it once missed
//! a close requested between the status change and the connection loop's subscription, and
//! waited forever).

// Test helpers: a failure here is a failed test, so unwrap is the right tool.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{start_server, url};
use sync_client::{Client, ClientConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_right_after_connecting_returns() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    for round in 0..40 {
        let client = Client::start(ClientConfig::new(url(server.local_addr())));
        let _doc = client.open("doc").unwrap();
        assert!(client.wait_connected(Duration::from_secs(10)).await);
        let closed = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        assert!(closed.is_ok(), "round {round}: close did not return");
    }
    server.shutdown().await;
}
