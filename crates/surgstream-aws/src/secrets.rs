//! `${aws-secretsmanager:ARN[#key]}`: a value kept in AWS Secrets Manager, read once at start-up.
//! The reference names the secret by its ARN (or name) and, for a secret whose value is a JSON
//! object (as the console's "key/value" secrets and RDS's managed master passwords are), one
//! key of it. The value is never logged; errors name the reference, not what it holds.

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::{Aws, AwsError};

/// The scheme of a reference: `${aws-secretsmanager:…}`.
pub const SCHEME: &str = "aws-secretsmanager:";

/// A parsed reference: the secret and, optionally, the key of its JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The ARN or name.
    pub id: String,
    /// The key in the secret's JSON object.
    pub key: Option<String>,
}

impl SecretRef {
    /// Parses what follows `aws-secretsmanager:` inside `${…}`.
    pub fn parse(reference: &str) -> Result<Self, String> {
        let (id, key) = match reference.split_once('#') {
            Some((id, key)) => (id, Some(key)),
            None => (reference, None),
        };
        if id.is_empty() {
            return Err("names no secret (write ${aws-secretsmanager:ARN} or ARN#key)".into());
        }
        if key.is_some_and(str::is_empty) {
            return Err(format!("`{id}#` names no key after the `#`"));
        }
        Ok(Self {
            id: id.to_owned(),
            key: key.map(str::to_owned),
        })
    }

    /// The region in the ARN (`arn:aws:secretsmanager:<region>:…`), if it is an ARN.
    pub fn region(&self) -> Option<&str> {
        let mut parts = self.id.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("arn"), Some(_), Some("secretsmanager"), Some(region)) if !region.is_empty() => {
                Some(region)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(k) => write!(f, "${{{SCHEME}{}#{k}}}", self.id),
            None => write!(f, "${{{SCHEME}{}}}", self.id),
        }
    }
}

/// Reads the secret a reference names: its string value, or the value of its key.
pub async fn resolve(reference: &SecretRef) -> Result<String, AwsError> {
    let aws = Aws::load(reference.region().map(str::to_owned), None).await;
    let what = || format!("cannot read {reference} from AWS Secrets Manager");
    let client = aws_sdk_secretsmanager::Client::new(aws.sdk_config());
    let id = reference.id.clone();
    let out = crate::run(async move { client.get_secret_value().secret_id(id).send().await })
        .await
        .map_err(|e| AwsError::Call {
            what: what(),
            reason: DisplayErrorContext(&e).to_string(),
        })?;
    let text = match (out.secret_string(), out.secret_binary()) {
        (Some(s), _) => s.to_owned(),
        (None, Some(b)) => String::from_utf8(b.as_ref().to_vec()).map_err(|_| AwsError::Call {
            what: what(),
            reason: "its binary value is not UTF-8 text".into(),
        })?,
        (None, None) => {
            return Err(AwsError::Call {
                what: what(),
                reason: "it has no value".into(),
            });
        }
    };
    let Some(key) = &reference.key else {
        return Ok(text);
    };
    let object: serde_json::Value = serde_json::from_str(&text).map_err(|_| AwsError::Call {
        what: what(),
        reason: format!("the reference names the key {key}, but the secret is not a JSON object"),
    })?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(v.to_string()),
        Some(_) => Err(AwsError::Call {
            what: what(),
            reason: format!("its key {key} holds neither text nor a number"),
        }),
        None => Err(AwsError::Call {
            what: what(),
            reason: format!("its JSON object has no key {key}"),
        }),
    }
}

/// [`resolve`], blocking (for settings parsed outside an async context).
pub fn resolve_blocking(reference: &SecretRef) -> Result<String, AwsError> {
    let reference = reference.clone();
    crate::block_on(async move { resolve(&reference).await })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r = SecretRef::parse(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-AbCdEf#password",
        )
        .expect("test value");
        assert_eq!(r.key.as_deref(), Some("password"));
        assert_eq!(r.region(), Some("eu-west-1"));
        assert_eq!(
            SecretRef::parse("plain-name").expect("test value").region(),
            None
        );
        assert!(SecretRef::parse("").is_err());
        assert!(SecretRef::parse("x#").is_err());
        assert_eq!(
            r.to_string(),
            "${aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-AbCdEf#password}"
        );
    }
}
