//! The two IAM authentication tokens: MSK's (SASL OAUTHBEARER) and RDS's (the PostgreSQL
//! password). Both are SigV4 presigned URLs, made by the SDK's signer (`aws-sigv4`) and laid out
//! exactly as AWS's own signers lay them out — `aws-msk-iam-sasl-signer-python` for MSK, boto3's
//! `generate_db_auth_token` for RDS — so that a token of ours and one of theirs, for the same
//! credentials, region and second, are the same bytes (tests/aws_tokens.rs compares them).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;

/// How long both kinds of token are valid: 15 minutes, as AWS's signers make them.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// The User-Agent an MSK token names (AWS's signers put their own name and version there).
pub const USER_AGENT: &str = concat!("surgstream/", env!("CARGO_PKG_VERSION"));

/// A signed token and when it stops being accepted.
#[derive(Clone)]
pub struct Token {
    /// The token: a secret for as long as it is valid (never log it).
    pub value: String,
    /// When it was signed.
    pub signed_at: SystemTime,
    /// When the service stops accepting it: the signing time plus [`TOKEN_LIFETIME`], or the
    /// credentials' own expiry when that comes first (a token outlives nothing it was signed
    /// with).
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("signed_at", &self.signed_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The request to sign is not a valid URI (a host with characters a URI cannot hold).
    #[error("cannot sign a token for {what}: {reason}")]
    Sign {
        /// What was being signed.
        what: String,
        /// The signer's reason.
        reason: String,
    },
}

/// The MSK IAM token for a cluster in `region`: the base64url (unpadded) of
/// `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&<SigV4 query
/// parameters>&User-Agent=<USER_AGENT>`, signed for the service `kafka-cluster`.
pub fn msk(credentials: &Credentials, region: &str, at: SystemTime) -> Result<Token, TokenError> {
    msk_with_user_agent(credentials, region, at, USER_AGENT)
}

/// [`msk`] with another User-Agent (the tests compare with AWS's signer under its name).
pub fn msk_with_user_agent(
    credentials: &Credentials,
    region: &str,
    at: SystemTime,
    user_agent: &str,
) -> Result<Token, TokenError> {
    let host = format!("kafka.{region}.amazonaws.com");
    let query = presign(
        credentials,
        &format!("https://{host}/"),
        &[("Action", "kafka-cluster:Connect")],
        "kafka-cluster",
        region,
        at,
    )
    .map_err(|reason| TokenError::Sign {
        what: format!("MSK in {region}"),
        reason,
    })?;
    let url = format!(
        "https://{host}/?{query}&User-Agent={}",
        form_encode(user_agent)
    );
    Ok(Token {
        value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url),
        signed_at: at,
        expires_at: expiry(credentials, at),
    })
}

/// The RDS IAM token that is the password of `user` at `host:port`: `<host>:<port>/?Action=
/// connect&DBUser=<user>&<SigV4 query parameters>`, signed for the service `rds-db`.
pub fn rds(
    credentials: &Credentials,
    host: &str,
    port: u16,
    user: &str,
    region: &str,
    at: SystemTime,
) -> Result<Token, TokenError> {
    let query = presign(
        credentials,
        &format!("https://{host}:{port}/"),
        &[("Action", "connect"), ("DBUser", user)],
        "rds-db",
        region,
        at,
    )
    .map_err(|reason| TokenError::Sign {
        what: format!("RDS user {user} at {host}:{port} in {region}"),
        reason,
    })?;
    Ok(Token {
        value: format!("{host}:{port}/?{query}"),
        signed_at: at,
        expires_at: expiry(credentials, at),
    })
}

fn expiry(credentials: &Credentials, at: SystemTime) -> SystemTime {
    let own = at + TOKEN_LIFETIME;
    match credentials.expiry() {
        Some(e) if e < own => e,
        _ => own,
    }
}

/// The query string of a GET of `endpoint` with `params`, presigned (SigV4, query parameters,
/// the empty body's hash, only `host` signed) for [`TOKEN_LIFETIME`]: the request's own parameters
/// first, then the signature's in the order botocore writes them.
fn presign(
    credentials: &Credentials,
    endpoint: &str,
    params: &[(&str, &str)],
    service: &str,
    region: &str,
    at: SystemTime,
) -> Result<String, String> {
    let own = params
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let uri = format!("{endpoint}?{own}");
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let signing_params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "GET",
        uri.as_str(),
        std::iter::empty(),
        // botocore signs the empty body's hash (not UNSIGNED-PAYLOAD) in these presigned URLs.
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(request, &signing_params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let signed = instructions.params();
    let value = |name: &str| signed.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
    let mut out = own;
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    ] {
        if let Some(v) = value(name) {
            out.push('&');
            out.push_str(name);
            out.push('=');
            out.push_str(&form_encode(v));
        }
    }
    if signed.len()
        != signed
            .iter()
            .filter(|(k, _)| k.starts_with("X-Amz-"))
            .count()
        || value("X-Amz-Signature").is_none()
    {
        return Err(format!(
            "the signer returned parameters this code does not lay out: {:?}",
            signed.iter().map(|(k, _)| *k).collect::<Vec<_>>()
        ));
    }
    Ok(out)
}

/// Encodes a query component as Python's `urlencode` does (`quote_plus`): letters, digits and
/// `_.-~` as they are, a space as `+`, every other byte `%XX`.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn msk_token_is_a_presigned_url() {
        let t = msk(&creds(Some("tok/en+=")), "us-east-1", at(1_796_693_650)).expect("test value");
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t.value)
            .expect("test value");
        let url = String::from_utf8(url).expect("test value");
        assert!(url.starts_with(
            "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-\
             Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261208%2Fus-east-1%2F\
             kafka-cluster%2Faws4_request&X-Amz-Date=20261208T013410Z&X-Amz-Expires=900&X-Amz-\
             SignedHeaders=host&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature="
        ));
        assert!(url.ends_with(&format!(
            "&User-Agent=surgstream%2F{}",
            env!("CARGO_PKG_VERSION")
        )));
        assert_eq!(t.expires_at, at(1_796_693_650 + 900));
    }

    #[test]
    fn a_token_expires_with_its_credentials() {
        let c = Credentials::new("AK", "SK", None, Some(at(1000)), "test");
        let t =
            rds(&c, "db.example.com", 5432, "ingest", "eu-west-1", at(500)).expect("test value");
        assert_eq!(t.expires_at, at(1000));
        assert!(
            t.value
                .starts_with("db.example.com:5432/?Action=connect&DBUser=ingest&X-Amz-Algorithm=")
        );
        assert!(!t.value.contains("Security-Token"));
    }

    #[test]
    fn form_encoding_is_pythons() {
        assert_eq!(
            form_encode("a b/c:d+e=f~g_h.i-j"),
            "a+b%2Fc%3Ad%2Be%3Df~g_h.i-j"
        );
        assert_eq!(form_encode("é"), "%C3%A9");
    }
}
