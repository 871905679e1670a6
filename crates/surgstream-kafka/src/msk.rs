//! MSK IAM: `sasl.mechanism=AWS_MSK_IAM` (the name AWS's Java library and MSK's documentation
//! use) is SASL OAUTHBEARER with a token signed by the AWS SDK's credential chain, the token
//! `aws-msk-iam-sasl-signer-python` and its Go, JavaScript and .NET siblings make, which MSK
//! Serverless and IAM-enabled provisioned clusters accept. librdkafka asks for a token at start
//! and again at 80% of the last one's life; [`KafkaContext`] answers with a new one.

use std::error::Error;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::consumer::ConsumerContext;
use surgstream_aws::{Aws, token};

/// Signs MSK IAM tokens for one cluster's region.
#[derive(Debug)]
pub struct MskIam {
    aws: Aws,
    region: String,
}

impl MskIam {
    /// The signer for the cluster at `brokers`: the region of its broker host names, else the
    /// SDK's (`AWS_REGION`, the profile's); credentials from the SDK's chain, under `profile`
    /// when one is named (the Java library's `awsProfileName`). Signs one token at once, so that
    /// missing credentials stop the start-up with their reason rather than stall every
    /// connection.
    pub fn new(brokers: &str, profile: Option<String>) -> Result<Self, String> {
        let region = surgstream_aws::region_of_msk_brokers(brokers);
        let aws = Aws::load_blocking(region, profile);
        let region = aws
            .require_region("MSK IAM authentication (the brokers' host names do not name it)")
            .map_err(|e| e.to_string())?;
        let signer = Self { aws, region };
        signer.sign()?;
        Ok(signer)
    }

    /// The region tokens are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// A token signed now, and the id of the access key that signed it.
    fn sign(&self) -> Result<(token::Token, String), String> {
        let credentials = self
            .aws
            .credentials_blocking()
            .map_err(|e| format!("MSK IAM: {e}"))?;
        let t =
            token::msk(&credentials, &self.region, SystemTime::now()).map_err(|e| e.to_string())?;
        Ok((t, credentials.access_key_id().to_owned()))
    }

    /// The token as librdkafka takes it: the principal is the access key's id (not a secret),
    /// the lifetime the instant it expires, in milliseconds since the epoch.
    fn oauth_token(&self) -> Result<OAuthToken, Box<dyn Error>> {
        let (t, access_key_id) = self.sign()?;
        let lifetime_ms = t
            .expires_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        tracing::debug!(
            region = %self.region,
            expires_in_s = t.expires_at.duration_since(SystemTime::now()).map(|d| d.as_secs()).unwrap_or(0),
            "signed a new MSK IAM token"
        );
        Ok(OAuthToken {
            token: t.value,
            principal_name: access_key_id,
            lifetime_ms,
        })
    }
}

/// Answers librdkafka's request for an OAUTHBEARER token: with an MSK IAM token when the
/// settings say `AWS_MSK_IAM`, else with a reason (librdkafka's own OIDC support,
/// `sasl.oauthbearer.method=oidc`, does not ask).
pub fn generate_oauth_token(msk: Option<&MskIam>) -> Result<OAuthToken, Box<dyn Error>> {
    match msk {
        Some(m) => m.oauth_token().map_err(|e| {
            tracing::error!(error = %e, "cannot sign an MSK IAM token: the connection waits and librdkafka asks again");
            e
        }),
        None => Err("OAUTHBEARER asked for a token, but surgstream signs only MSK IAM tokens \
             (sasl.mechanism=AWS_MSK_IAM); for an OIDC provider set sasl.oauthbearer.method=oidc"
            .into()),
    }
}

/// The context of every surgstream Kafka client that needs no callbacks of its own: it signs
/// MSK IAM tokens when the settings ask for them.
#[derive(Debug, Clone, Default)]
pub struct KafkaContext {
    pub(crate) msk: Option<Arc<MskIam>>,
}

impl KafkaContext {
    /// The signer, for contexts that delegate to this one.
    pub fn msk(&self) -> Option<&MskIam> {
        self.msk.as_deref()
    }
}

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        generate_oauth_token(self.msk())
    }
}

impl ConsumerContext for KafkaContext {}

/// Gives `client` a token now. librdkafka asks for tokens through the client's main queue,
/// which consumers and producers serve when polled, but rdkafka's `AdminClient` never polls
/// it: an admin client on MSK IAM would wait for a token forever. Call this once after creating
/// one (its life is short: its token is not refreshed). Nothing to do without MSK IAM.
pub fn set_token<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    msk: Option<&MskIam>,
) -> Result<(), String> {
    let Some(msk) = msk else {
        return Ok(());
    };
    let t = msk.oauth_token().map_err(|e| e.to_string())?;
    let token = std::ffi::CString::new(t.token).map_err(|e| e.to_string())?;
    let principal = std::ffi::CString::new(t.principal_name).map_err(|e| e.to_string())?;
    let mut err = [0 as std::ffi::c_char; 512];
    // SAFETY: the client pointer is valid for as long as `client` is borrowed; the strings are
    // NUL-terminated and outlive the call, which copies them; there are no extensions (null,
    // 0); `err` is a writable buffer of the length given. rdkafka makes this same call when a
    // polled client's context returns a token.
    #[allow(unsafe_code)]
    let code = unsafe {
        rdkafka::bindings::rd_kafka_oauthbearer_set_token(
            client.native_ptr(),
            token.as_ptr(),
            t.lifetime_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if code == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        let bytes: Vec<u8> = err
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        Err(format!(
            "librdkafka refused the MSK IAM token: {}",
            String::from_utf8_lossy(&bytes)
        ))
    }
}
