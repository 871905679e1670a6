//! surgstream on AWS as AWS users run it, through the AWS SDK for Rust:
//!
//! - [`Aws`]: the SDK's configuration — region and credentials from its standard chain
//!   (environment, shared config and credentials files and their profiles, web identity / IRSA,
//!   ECS container and EC2 instance roles), endpoints from `AWS_ENDPOINT_URL[_<SERVICE>]`.
//! - [`token`]: the MSK IAM (SASL OAUTHBEARER) and RDS IAM (PostgreSQL password) tokens, SigV4
//!   presigned by the SDK's signer in the layout of AWS's own signers.
//! - [`secrets`]: `${aws-secretsmanager:ARN[#key]}` references, resolved at start-up.
//! - [`glue`]: the Glue Data Catalog entries of the Iceberg tables.
//!
//! Every SDK call runs on one small runtime of this crate's own ([`run`], [`block_on`]), so
//! that librdkafka's token callback (a plain thread, or a tokio worker) and start-up code can
//! use it alike, and the SDK's connection pools live as long as the process.

pub mod glue;
pub mod secrets;
pub mod token;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;

/// Why an AWS call failed: what was being done and the SDK's reason (never a secret).
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The credential chain found no credentials, or its source failed.
    #[error(
        "no AWS credentials: {0} (the SDK's chain reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
         the profile AWS_PROFILE names in ~/.aws/config and ~/.aws/credentials, a web identity \
         token (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, as EKS's IRSA sets them), the ECS \
         task role and the EC2 instance role, in that order)"
    )]
    Credentials(String),
    /// No region: neither given nor found by the SDK's chain.
    #[error(
        "no AWS region for {0}: set AWS_REGION (or the profile's region), or give it on the \
         command line"
    )]
    NoRegion(&'static str),
    /// A service call failed.
    #[error("{what}: {reason}")]
    Call {
        /// What was being done.
        what: String,
        /// The SDK's reason, with its causes.
        reason: String,
    },
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("surgstream-aws")
            .enable_all()
            .build()
            // Without a runtime no AWS call can be made: like a failed allocation, not an input.
            .expect("start the runtime of the AWS SDK's calls")
    })
}

/// Runs `f` on the AWS runtime and waits for it from any async context.
pub async fn run<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime().spawn(f).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime lives as long as the process and nothing cancels its tasks.
        Err(e) => panic!("an AWS call was cancelled: {e}"),
    }
}

/// Runs `f` on the AWS runtime and blocks this thread until it is done: for code that is not
/// async (librdkafka's callbacks, the parsing of settings). Never call it from a future running
/// on the AWS runtime itself.
pub fn block_on<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let handle = runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    match rx.recv() {
        Ok(out) => out,
        Err(_) => match runtime().block_on(handle) {
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            _ => panic!("an AWS call ended without an answer"),
        },
    }
}

/// The SDK's configuration: region, credentials (cached and refreshed before they expire, as the
/// SDK does for its own clients), endpoints.
#[derive(Clone, Debug)]
pub struct Aws {
    config: SdkConfig,
    kept: std::sync::Arc<std::sync::Mutex<Option<Credentials>>>,
}

/// How much of their life expiring credentials must have left to be used again (the SDK's own
/// clients refresh earlier still; a token signed now must stay valid for its 15 minutes).
pub const REUSE_MARGIN: Duration = Duration::from_secs(15 * 60);

impl Aws {
    /// Loads the configuration from the SDK's chain; `region`, when given, wins over it, and
    /// `profile` picks a profile other than `AWS_PROFILE`'s.
    pub async fn load(region: Option<String>, profile: Option<String>) -> Self {
        run(async move {
            let mut loader = aws_config::defaults(BehaviorVersion::latest());
            if let Some(region) = region {
                loader = loader.region(aws_config::Region::new(region));
            }
            if let Some(profile) = profile {
                loader = loader.profile_name(profile);
            }
            Self {
                config: loader.load().await,
                kept: Default::default(),
            }
        })
        .await
    }

    /// [`Aws::load`], blocking.
    pub fn load_blocking(region: Option<String>, profile: Option<String>) -> Self {
        block_on(Self::load(region, profile))
    }

    /// The region: given to [`Aws::load`], or found by the SDK's chain.
    pub fn region(&self) -> Option<&str> {
        self.config.region().map(|r| r.as_ref())
    }

    /// The region, or an error that says what needed it.
    pub fn require_region(&self, what: &'static str) -> Result<String, AwsError> {
        self.region()
            .map(str::to_owned)
            .ok_or(AwsError::NoRegion(what))
    }

    /// The SDK's configuration, for a service client.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// Credentials from the chain. Credentials that expire (a role's) are kept and reused while
    /// more than [`REUSE_MARGIN`] of their life is left; the others (keys in the environment or
    /// a profile) are read again each time, so that a rotated key is used at once.
    pub async fn credentials(&self) -> Result<Credentials, AwsError> {
        let now = std::time::SystemTime::now();
        if let Ok(kept) = self.kept.lock()
            && let Some(c) = kept.as_ref()
            && c.expiry().is_some_and(|e| e > now + REUSE_MARGIN)
        {
            return Ok(c.clone());
        }
        let Some(provider) = self.config.credentials_provider() else {
            return Err(AwsError::Credentials(
                "no credential provider is configured".into(),
            ));
        };
        let fresh = run(async move {
            tokio::time::timeout(Duration::from_secs(60), provider.provide_credentials())
                .await
                .map_err(|_| AwsError::Credentials("the chain gave no answer within 60 s".into()))?
                .map_err(|e| {
                    AwsError::Credentials(
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                    )
                })
        })
        .await?;
        if let Ok(mut kept) = self.kept.lock() {
            *kept = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// [`Aws::credentials`], blocking.
    pub fn credentials_blocking(&self) -> Result<Credentials, AwsError> {
        let aws = self.clone();
        block_on(async move { aws.credentials().await })
    }
}

/// The region in an MSK broker's host name: `b-1.<cluster>.<id>.c2.kafka.<region>.amazonaws.com`
/// (provisioned) or `boot-<id>.c2.kafka-serverless.<region>.amazonaws.com` (Serverless), the
/// first such broker of a `host:port[,host:port…]` list. AWS's Java library reads it there too.
pub fn region_of_msk_brokers(brokers: &str) -> Option<String> {
    brokers.split(',').find_map(|b| {
        let host = b.trim().rsplit_once(':').map_or(b.trim(), |(h, _)| h);
        let labels: Vec<&str> = host.split('.').collect();
        let n = labels.len();
        (n >= 4
            && labels[n - 2..] == ["amazonaws", "com"]
            && matches!(labels[n - 4], "kafka" | "kafka-serverless"))
        .then(|| labels[n - 3].to_owned())
    })
}

/// The region in an RDS or Aurora endpoint: `<name>.<id>.<region>.rds.amazonaws.com`.
pub fn region_of_rds_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    (n >= 5 && labels[n - 3..] == ["rds", "amazonaws", "com"]).then(|| labels[n - 4].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_host_names() {
        assert_eq!(
            region_of_msk_brokers(
                "b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"
            )
            .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_msk_brokers("boot-xyz.c2.kafka-serverless.us-east-2.amazonaws.com:9098")
                .as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region_of_msk_brokers("127.0.0.1:9092"), None);
        assert_eq!(
            region_of_rds_host("surgstream.cluster-c9akciq32.eu-central-1.rds.amazonaws.com")
                .as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(region_of_rds_host("db.example.com"), None);
    }
}
