//! [`S3Server`]: a real S3-compatible server (s3s-fs) of the test's own, which can be stopped and
//! started again.

use super::*;

/// The bucket every test S3 server has.
pub const S3_BUCKET: &str = "surgstream";

/// A real S3-compatible server (s3s-fs, installed by `scripts/services.sh`) on a free port of
/// 127.0.0.1, over a fresh directory: a bucket is a directory, an object a file in it. It can be
/// stopped and started again on the same port and data (store outages).
pub struct S3Server {
    pub port: u16,
    pub root: PathBuf,
    child: Option<Child>,
}

/// Where `scripts/services.sh` caches the binaries it builds.
fn cache_dir() -> PathBuf {
    std::env::var("SURGSTREAM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/surgstream")
        })
}

/// The s3s-fs binary: `SURGSTREAM_S3S_FS`, or where `scripts/services.sh` caches it.
pub fn s3s_binary() -> PathBuf {
    if let Ok(p) = std::env::var("SURGSTREAM_S3S_FS") {
        return PathBuf::from(p);
    }
    let bin = cache_dir().join("s3s-fs-0.14.1/bin/s3s-fs");
    assert!(
        bin.exists(),
        "no S3 server at {} (run scripts/services.sh up, which installs it, or set SURGSTREAM_S3S_FS)",
        bin.display()
    );
    bin
}

impl S3Server {
    pub const ACCESS_KEY: &'static str = "surgstream-test";
    pub const SECRET_KEY: &'static str = "surgstream-test-secret";

    pub async fn start(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("surgstream-s3-{}", unique(name)));
        std::fs::create_dir_all(root.join(S3_BUCKET)).expect("create the S3 server's bucket");
        let port = free_port();
        let mut server = Self {
            port,
            root,
            child: None,
        };
        server.restart().await;
        server
    }

    /// Starts the server (again), and waits until it listens.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the S3 server is already running");
        let child = Command::new(s3s_binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                Self::ACCESS_KEY,
                "--secret-key",
                Self::SECRET_KEY,
            ])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn s3s-fs");
        self.child = Some(child);
        wait_for_port(self.port, "s3s-fs").await;
    }

    /// Kills the server (its data stays on disk).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill s3s-fs");
            child.wait().await.expect("reap s3s-fs");
        }
    }

    /// The `AWS_*` settings that point a client at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A TCP proxy in front of an S3 server that records the head (request line and headers) of
/// every HTTP request passing through: to see what a client sends (its encryption headers),
/// never to change it. Requests with a `Content-Length` body are followed one by one on a
/// kept-alive connection; a chunked body ends the recording of its connection, not its
/// forwarding.
pub struct RecordingProxy {
    pub port: u16,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start(target_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                else {
                    continue;
                };
                let (client_r, mut client_w) = client.into_split();
                let (mut server_r, server_w) = server.into_split();
                tokio::spawn(record_requests(client_r, server_w, recorded.clone()));
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_r, &mut client_w).await;
                });
            }
        });
        Self { port, heads, task }
    }

    /// The heads recorded so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record_requests(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match from.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let lower = head.to_ascii_lowercase();
        let chunked = lower.contains("transfer-encoding: chunked");
        let length: usize = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(head);
        if chunked {
            let _ = to.write_all(&buf).await;
            let _ = tokio::io::copy(&mut from, &mut to).await;
            return;
        }
        while buf.len() < end + length {
            match from.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if to.write_all(&buf[..end + length]).await.is_err() {
            return;
        }
        buf.drain(..end + length);
    }
}
