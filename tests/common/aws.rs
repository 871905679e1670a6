//! AWS without an AWS account: AWS's own Python libraries (botocore's credential chain and
//! signer, `aws-msk-iam-sasl-signer-python`) as the reference, moto's server as Glue, STS and
//! Secrets Manager, and a container-credentials endpoint (what ECS serves a task) of the
//! test's own. scripts/setup.sh installs the Python side in its own virtualenv.

use super::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The virtualenv's Python (scripts/setup.sh: boto3, moto[server], the MSK signer).
pub fn aws_python() -> PathBuf {
    let cache = std::env::var_os("SURGSTREAM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/surgstream")
        });
    let python = cache.join("aws-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs boto3, moto and AWS's MSK signer)",
        python.display()
    );
    python
}

/// Fixed test credentials (AWS's documentation example keys).
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// An environment with nothing of the caller's AWS settings: `HOME` is an empty directory (no
/// ~/.aws), every `AWS_*` variable removed, EC2 instance metadata off; then `vars`.
pub fn aws_command(
    program: impl AsRef<std::ffi::OsStr>,
    home: &std::path::Path,
    vars: &[(&str, String)],
) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("AWS_")
            || name.starts_with("SURGSTREAM_")
            || name.starts_with("DATABASE_URL")
        {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true);
    cmd
}

/// Runs `program args` in [`aws_command`]'s environment; its output, or a panic after `within`.
pub async fn aws_run(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    home: &std::path::Path,
    vars: &[(&str, String)],
    within: Duration,
) -> Output {
    let mut cmd = aws_command(program, home, vars);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    tokio::time::timeout(within, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not finish within {within:?}"))
        .expect("wait")
}

/// stdout of a run that must succeed, trimmed.
pub fn ok_stdout(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An empty home directory for one test.
pub fn empty_home(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("surgstream-home-{}", unique(name)));
    std::fs::create_dir_all(&dir).expect("create a home directory");
    dir
}

/// moto's server on a free loopback port: Glue, STS, Secrets Manager.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub async fn start() -> Self {
        let port = free_port();
        let home = empty_home("moto");
        let python = aws_python();
        let child = aws_command(&python, &home, &[])
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto's server");
        wait_for_port_within(port, "moto's server", Duration::from_secs(60)).await;
        Self { port, child }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The variables that point the SDKs at moto, with fixed credentials and a region.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "eu-west-1".to_owned()),
            ("AWS_DEFAULT_REGION", "eu-west-1".to_owned()),
        ]
    }

    /// boto3 through tests/aws_reference.py against this server.
    pub async fn boto(&self, args: &[&str]) -> String {
        let home = empty_home("boto");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws_reference.py");
        let mut all = vec![script];
        all.extend_from_slice(args);
        let out = aws_run(
            aws_python(),
            &all,
            &home,
            &self.env(),
            Duration::from_secs(120),
        )
        .await;
        ok_stdout(&out, &format!("aws_reference.py {args:?}"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What ECS serves a task at `AWS_CONTAINER_CREDENTIALS_FULL_URI`: temporary credentials
/// expiring `life` after each request (the session token ends in `-expires-<ms>`); with `rotate`, new ones (key `ASIACONTAINER<n>`) at each
/// request, else always `ASIACONTAINER1`.
pub struct ContainerCredentials {
    pub port: u16,
    pub served: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl ContainerCredentials {
    pub async fn start(life: Duration, rotate: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the credentials endpoint");
        let port = listener.local_addr().expect("address").port();
        let served = Arc::new(AtomicU32::new(0));
        let count = served.clone();
        // Without rotation the same credentials every time, expiry included (both signers must
        // sign with the very same session token).
        let fixed_expiry =
            chrono::Utc::now() + chrono::Duration::from_std(life).expect("a short life");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let served = count.fetch_add(1, Ordering::SeqCst) + 1;
                let n = if rotate { served } else { 1 };
                let mut buf = vec![0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let expires = if rotate {
                    chrono::Utc::now() + chrono::Duration::from_std(life).expect("a short life")
                } else {
                    fixed_expiry
                };
                let body = serde_json::json!({
                    "AccessKeyId": format!("ASIACONTAINER{n}"),
                    "SecretAccessKey": format!("container-secret-{n}"),
                    // The session token names its expiry, so that a test's broker can refuse what
                    // AWS refuses: a token signed with expired credentials.
                    "Token": format!("container-session-{n}-expires-{}", expires.timestamp_millis()),
                    "Expiration": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                })
                .to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        Self { port, served, task }
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/v2/credentials", self.port)
    }
}

impl Drop for ContainerCredentials {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The URL inside an MSK token (base64url without padding).
pub fn decode_msk_token(token: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .expect("an MSK token is unpadded base64url");
    String::from_utf8(bytes).expect("an MSK token is a URL")
}

/// One query parameter of a token's URL.
pub fn token_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| {
            url::form_urlencoded::parse(format!("x={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
    })
}
