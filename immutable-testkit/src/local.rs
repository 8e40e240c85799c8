//! Services behind a real HAProxy, read from outside as a client would.

use std::time::{Duration, Instant};

/// The image answering `url` (the `X-Image` header of a 200), if any; at most 2 s.
pub async fn answer(url: &str) -> Option<String> {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?
        .get(url)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.headers()
        .get("x-image")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Polls `url` (every 20 ms, at most 10 s) until it answers; the image that answered.
pub async fn until_answered(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(image) = answer(url).await {
            return image;
        }
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` runs (and is not a zombie waiting to be reaped).
pub fn process_alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s.rsplit(')').next().and_then(|r| r.trim().chars().next()),
            Some('Z' | 'X')
        )
    })
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
