//! HTTP against a process's `--metrics-addr` (`/metrics`, `/readyz`), and free ports.

use super::*;

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0): the status code and the body.
pub async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The Prometheus text a `--metrics-addr` endpoint serves.
pub async fn scrape(port: u16) -> String {
    match http_get(port, "/metrics").await {
        Ok((200, body)) => body,
        other => panic!("GET /metrics on :{port}: {other:?}"),
    }
}

/// The sum of every series of `name` (all label sets) in a Prometheus text page; 0 if absent.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A free TCP port on 127.0.0.1, from below the kernel's ephemeral range (32768–60999 on
/// Linux) and never the same one twice in a test process.
///
/// `bind(0)` twice in a row may return the same port once the first listener is dropped:
/// CI gave nodes 1 and 3 of a test cluster the same broker port, and node 3 died at start-up
/// with "Address already in use". A counter never repeats a port; and staying below the
/// ephemeral range means no outgoing connection (brokers talking to each other, clients)
/// takes a port between our probe and the server's bind, or while a killed node is down.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    // Each test binary starts at its own place in the span, so that a process that has
    // just exited (its ports in TIME_WAIT or a straggling child) is not stepped on.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

/// Waits until 127.0.0.1:`port` accepts connections; panics after 20 s naming `what`.
pub async fn wait_for_port(port: u16, what: &str) {
    wait_for_port_within(port, what, Duration::from_secs(20)).await
}

/// Waits until 127.0.0.1:`port` accepts connections; panics after `within` naming `what`.
pub async fn wait_for_port_within(port: u16, what: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within {within:?}");
}
