//! Shared by the tests that start the real `ixn` binary.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The base URL a started `ixn` prints (`ixn listening on URL`), read from its piped stdout
/// within `deadline`; stdout is drained afterwards so the server never blocks on a full pipe.
/// `None` when it exits or says nothing of the kind in time.
pub async fn listening_address(child: &mut Child, deadline: Duration) -> Option<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(deadline, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("ixn listening on ") {
                return Some(url.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    base
}
