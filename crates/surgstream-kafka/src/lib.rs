//! How every surgstream Kafka client connects: the simulator's producer, the ingestor's consumer
//! and dead-letter producer, `verify`, `bench` and `create-topics` all start from one
//! [`KafkaSettings`], so a cluster that needs TLS or SASL is configured once, for all of them.
//!
//! The settings are the bootstrap servers (`--brokers`) and librdkafka properties from, in this
//! order (a later source wins):
//!
//! 1. a client properties file (`--kafka-config FILE`), written as Kafka users write the
//!    `--command-config` of Kafka's own tools: `key=value` lines, `#` comments (a value's
//!    trailing blanks are dropped: a password that ends in a space is far rarer than a stray one);
//! 2. environment variables `SURGSTREAM_KAFKA_CLIENT_<PROPERTY>`, the property upper-cased with
//!    `.` as `_` (`SURGSTREAM_KAFKA_CLIENT_SASL_PASSWORD` is `sasl.password`), the convention of
//!    Confluent's container images.
//!
//! A value may name where its secret lives instead of holding it: `${env:NAME}` is the
//! environment variable `NAME`, `${file:PATH}` the contents of a file (a mounted Kubernetes or
//! Docker secret), trailing newline removed. Secrets are never logged: [`KafkaSettings`]'s
//! `Debug` and [`KafkaSettings::summary`] print `<redacted>` for them, errors name the property
//! and where it came from but not its value, and [`check_command_line_property`] refuses them on
//! the command line, where every user of the machine can read them in the process list.
//! `${aws-secretsmanager:ARN}` (or `ARN#key`, for one key of a JSON secret) is a secret in AWS
//! Secrets Manager, read once at start-up with the AWS SDK's credential chain.
//!
//! `sasl.mechanism=AWS_MSK_IAM` is MSK's IAM authentication: OAUTHBEARER with tokens signed by
//! the AWS SDK's credential chain ([`MskIam`]); every client must then be created with
//! [`KafkaSettings::context`] (or a context that delegates to [`generate_oauth_token`]). The Java
//! client's `sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required
//! [awsProfileName="…"];` and `sasl.client.callback.handler.class=…IAMClientCallbackHandler`
//! are read with it, so that MSK's documented client properties work unchanged.
//!
//! Java clients' `sasl.jaas.config` for PLAIN and SCRAM is read as librdkafka's
//! `sasl.username`/`sasl.password`, so a properties file written for Kafka's tools or MSK's
//! documentation works unchanged; Java-only properties librdkafka has no equivalent for are
//! refused with the property to use instead.

mod connection;
mod msk;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;

pub use connection::{MetadataError, TopicState, probe_topics};
pub use msk::{KafkaContext, MskIam, generate_oauth_token, set_token};

/// The prefix of the environment variables that are client properties.
pub const ENV_PREFIX: &str = "SURGSTREAM_KAFKA_CLIENT_";

/// Properties surgstream sets itself: the brokers are `--brokers`, and the ingestor's delivery
/// guarantee needs offsets committed with the data (never by librdkafka) and a new group to start
/// from the earliest record. A file or variable that sets one is refused, not silently overridden.
pub const RESERVED: [(&str, &str); 5] = [
    (
        "bootstrap.servers",
        "the brokers are --brokers (KAFKA_BROKERS)",
    ),
    ("group.id", "the group is --group (SURGSTREAM_GROUP)"),
    (
        "enable.auto.commit",
        "offsets are committed with the data, in PostgreSQL",
    ),
    (
        "enable.auto.offset.store",
        "offsets are committed with the data, in PostgreSQL",
    ),
    (
        "auto.offset.reset",
        "a new group starts from the earliest record",
    ),
];

/// Where a property came from, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a client properties file.
    File {
        /// The file.
        path: PathBuf,
        /// Its line, from 1.
        line: usize,
    },
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// Why the Kafka client settings cannot be used. Never holds a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum KafkaConfigError {
    /// The properties file cannot be read.
    #[error("cannot read the Kafka client properties file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// One property is wrong.
    #[error("Kafka client property {key} ({origin}): {problem}")]
    Property {
        /// The property.
        key: String,
        /// Where it was set.
        origin: Origin,
        /// What is wrong, without the value of a secret.
        problem: String,
    },
    /// A line of the properties file is not a property.
    #[error("{origin}: {problem}")]
    Syntax {
        /// The line.
        origin: Origin,
        /// What is wrong.
        problem: String,
    },
}

/// Whether a property's value is a secret: never logged, never accepted on the command line.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key == "sasl.jaas.config"
        || key == "sasl.oauthbearer.config"
        || key == "ssl.key.pem"
        || key == "ssl_key"
}

/// Checks a property given on the command line (`--consumer-option KEY=VALUE`): not reserved,
/// and not a secret, which would be readable in the process list by every user of the machine.
pub fn check_command_line_property(key: &str, option: &'static str) -> Result<(), String> {
    if let Some((_, why)) = RESERVED.iter().find(|(k, _)| *k == key) {
        return Err(format!(
            "{key} is set by surgstream itself ({why}; the delivery guarantee depends on it)"
        ));
    }
    if is_secret(key) {
        return Err(format!(
            "{key} is a secret: on the command line ({option}) every user of the machine can \
             read it in the process list; put it in the --kafka-config file or in \
             {}{} instead",
            ENV_PREFIX,
            env_name(key)
        ));
    }
    Ok(())
}

/// The environment variable for a property: `sasl.password` → `SASL_PASSWORD`.
fn env_name(key: &str) -> String {
    key.to_ascii_uppercase().replace('.', "_")
}

/// One client property and where it was set.
#[derive(Clone)]
struct Property {
    key: String,
    value: String,
    origin: Origin,
}

/// How every Kafka client of surgstream connects: the bootstrap servers and the properties of
/// the file and the environment (see the crate's documentation). Apply them to a client's own
/// [`ClientConfig`] with [`KafkaSettings::apply`].
#[derive(Clone)]
pub struct KafkaSettings {
    brokers: String,
    properties: Vec<Property>,
    msk: Option<Arc<MskIam>>,
}

impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("properties", &self.summary())
            .finish()
    }
}

impl KafkaSettings {
    /// Plaintext, no authentication: only the brokers (the demo's and the tests' loopback broker).
    pub fn plaintext(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
            msk: None,
        }
    }

    /// The brokers, the properties of `file` (when given) and of this process's environment.
    pub fn load(brokers: &str, file: Option<&Path>) -> Result<Self, KafkaConfigError> {
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                // A property variable that is not UTF-8 is an error below, not silently dropped.
                let v = v
                    .into_string()
                    .unwrap_or_else(|v| format!("\u{fffd}{}", v.to_string_lossy()));
                Some((k, v))
            })
            .collect();
        Self::from_sources(brokers, file, env)
    }

    /// [`KafkaSettings::load`] with the environment given (for tests).
    pub fn from_sources(
        brokers: &str,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, KafkaConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut properties = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| KafkaConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            properties.extend(parse_properties(path, &text)?);
        }
        let mut from_env: Vec<Property> = env
            .iter()
            .filter_map(|(name, value)| {
                let prop = name.strip_prefix(ENV_PREFIX)?;
                Some(Property {
                    key: prop.to_ascii_lowercase().replace('_', "."),
                    value: value.clone(),
                    origin: Origin::Env(name.clone()),
                })
            })
            .collect();
        from_env.sort_by(|a, b| a.key.cmp(&b.key));
        properties.extend(from_env);

        let msk_property = properties.iter().rev().find(|p| {
            matches!(p.key.as_str(), "sasl.mechanism" | "sasl.mechanisms")
                && p.value.trim().eq_ignore_ascii_case(MSK_IAM_MECHANISM)
        });
        let msk_origin = msk_property.map(|p| p.origin.clone());
        let mut resolved = Vec::with_capacity(properties.len());
        let mut msk_profile = None;
        for p in properties {
            if p.value.starts_with('\u{fffd}') {
                return Err(problem(&p, "its value is not UTF-8".into()));
            }
            let value = resolve_references(&p, &env)?;
            let p = Property { value, ..p };
            if msk_origin.is_some() {
                match msk_property_translation(&p)? {
                    MskTranslation::Keep => {}
                    MskTranslation::Replace(q) => {
                        resolved.push(q);
                        continue;
                    }
                    MskTranslation::Drop => continue,
                    MskTranslation::Profile(profile) => {
                        msk_profile = profile;
                        continue;
                    }
                }
            }
            resolved.extend(translate_java(p)?);
        }
        let msk = match msk_origin {
            Some(origin) => Some(Arc::new(MskIam::new(brokers, msk_profile).map_err(
                |problem| KafkaConfigError::Property {
                    key: "sasl.mechanism".into(),
                    origin,
                    problem,
                },
            )?)),
            None => None,
        };
        let settings = Self {
            brokers: brokers.to_owned(),
            properties: resolved,
            msk,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// The context every client of these settings is created with (or delegates to): it signs
    /// MSK IAM tokens when `sasl.mechanism=AWS_MSK_IAM`.
    pub fn context(&self) -> KafkaContext {
        KafkaContext {
            msk: self.msk.clone(),
        }
    }

    /// Whether the clients authenticate with MSK IAM.
    pub fn uses_msk_iam(&self) -> bool {
        self.msk.is_some()
    }

    /// The bootstrap servers.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Sets the brokers and every property on a client's configuration. Call it after the
    /// client's own defaults (the user's properties win over them) and before what the client's
    /// correctness rests on (which nothing overrides).
    pub fn apply<'c>(&self, config: &'c mut ClientConfig) -> &'c mut ClientConfig {
        config.set("bootstrap.servers", &self.brokers);
        for p in &self.properties {
            config.set(&p.key, &p.value);
        }
        config
    }

    /// A client configuration holding only these settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        self.apply(&mut config);
        config
    }

    /// The value of a property as set here (`None` when it is librdkafka's default).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// The properties for a log line, secrets `<redacted>`: `security.protocol=SASL_SSL
    /// sasl.mechanism=SCRAM-SHA-512 sasl.username=ingest sasl.password=<redacted>`.
    pub fn summary(&self) -> String {
        let msk = self
            .msk
            .as_ref()
            .map(|m| format!(" (MSK IAM tokens for {})", m.region()))
            .unwrap_or_default();
        self.property_summary() + &msk
    }

    fn property_summary(&self) -> String {
        if self.properties.is_empty() {
            return "plaintext, no authentication (librdkafka's defaults)".to_owned();
        }
        self.properties
            .iter()
            .map(|p| {
                if is_secret(&p.key) {
                    format!("{}=<redacted>", p.key)
                } else {
                    format!("{}={}", p.key, p.value)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every property is one librdkafka knows, with a value it accepts, and none is reserved.
    fn validate(&self) -> Result<(), KafkaConfigError> {
        for p in &self.properties {
            if let Some((_, why)) = RESERVED.iter().find(|(k, _)| *k == p.key) {
                return Err(problem(
                    p,
                    format!("set by surgstream itself ({why}); remove it"),
                ));
            }
            if let Err(e) = ClientConfig::new()
                .set(&p.key, &p.value)
                .create_native_config()
            {
                let mut why = match e {
                    // librdkafka's description quotes the value: keep it only for non-secrets.
                    KafkaError::ClientConfig(_, desc, _, _) if !is_secret(&p.key) => desc,
                    _ => "librdkafka refuses its value".to_owned(),
                };
                if let Some(hint) = java_only_hint(&p.key) {
                    why = format!("{why}; {hint}");
                }
                return Err(problem(p, why));
            }
        }
        Ok(())
    }
}

fn problem(p: &Property, problem: String) -> KafkaConfigError {
    KafkaConfigError::Property {
        key: p.key.clone(),
        origin: p.origin.clone(),
        problem,
    }
}

/// Java client properties librdkafka does not have, and what to write instead.
fn java_only_hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "ssl.truststore.location" | "ssl.truststore.type" | "ssl.truststore.password" => {
            "librdkafka reads the CA certificates as PEM: set ssl.ca.location=FILE (a JKS or \
             PKCS#12 truststore converts with `keytool -exportcert -rfc`)"
        }
        "ssl.keystore.type" => {
            "librdkafka reads a PKCS#12 keystore (ssl.keystore.location, ssl.keystore.password) \
             or PEM (ssl.certificate.location, ssl.key.location)"
        }
        "sasl.login.callback.handler.class" | "sasl.client.callback.handler.class" => {
            "Java callback classes have no librdkafka equivalent: for OAUTHBEARER set \
             sasl.oauthbearer.method=oidc and sasl.oauthbearer.* instead"
        }
        _ => return None,
    })
}

/// Replaces `${env:NAME}` and `${file:PATH}` in a value by what they name.
fn resolve_references(p: &Property, env: &[(String, String)]) -> Result<String, KafkaConfigError> {
    let mut out = String::with_capacity(p.value.len());
    let mut rest = p.value.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(problem(p, "a `${` without its closing `}`".into()));
        };
        let reference = &after[..end];
        let resolved = if let Some(name) = reference.strip_prefix("env:") {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    problem(
                        p,
                        format!("names environment variable {name}, which is not set"),
                    )
                })?
        } else if let Some(path) = reference.strip_prefix("file:") {
            let text = std::fs::read_to_string(path).map_err(|e| {
                problem(
                    p,
                    format!("names the file {path}, which cannot be read: {e}"),
                )
            })?;
            text.strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text)
                .to_owned()
        } else if let Some(secret) = reference.strip_prefix(surgstream_aws::secrets::SCHEME) {
            let secret = surgstream_aws::secrets::SecretRef::parse(secret)
                .map_err(|why| problem(p, format!("`${{{reference}}}` {why}")))?;
            surgstream_aws::secrets::resolve_blocking(&secret)
                .map_err(|e| problem(p, e.to_string()))?
        } else {
            return Err(problem(
                p,
                format!(
                    "`${{{reference}}}` is none of `${{env:NAME}}`, `${{file:PATH}}` and \
                     `${{aws-secretsmanager:ARN[#key]}}`"
                ),
            ));
        };
        out.push_str(&resolved);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The mechanism name of MSK IAM, as AWS's Java library and MSK's documentation write it.
pub const MSK_IAM_MECHANISM: &str = "AWS_MSK_IAM";

const MSK_LOGIN_MODULE: &str = "software.amazon.msk.auth.iam.IAMLoginModule";
const MSK_CALLBACK_HANDLER: &str = "software.amazon.msk.auth.iam.IAMClientCallbackHandler";

enum MskTranslation {
    Keep,
    Replace(Property),
    Drop,
    Profile(Option<String>),
}

/// With `sasl.mechanism=AWS_MSK_IAM`: the mechanism becomes librdkafka's OAUTHBEARER, the Java
/// library's login module gives its profile, its callback handler is librdkafka's token
/// callback (dropped).
fn msk_property_translation(p: &Property) -> Result<MskTranslation, KafkaConfigError> {
    match p.key.as_str() {
        "sasl.mechanism" | "sasl.mechanisms" => {
            if !p.value.trim().eq_ignore_ascii_case(MSK_IAM_MECHANISM) {
                return Err(problem(
                    p,
                    format!("sets another mechanism than {MSK_IAM_MECHANISM}, also set"),
                ));
            }
            Ok(MskTranslation::Replace(Property {
                key: "sasl.mechanism".into(),
                value: "OAUTHBEARER".into(),
                origin: p.origin.clone(),
            }))
        }
        "sasl.client.callback.handler.class" | "sasl.login.callback.handler.class"
            if p.value.trim() == MSK_CALLBACK_HANDLER =>
        {
            Ok(MskTranslation::Drop)
        }
        "sasl.jaas.config" => {
            let text = p.value.trim().trim_end_matches(';').trim();
            if text.split_whitespace().next() != Some(MSK_LOGIN_MODULE) {
                return Err(problem(
                    p,
                    format!("with {MSK_IAM_MECHANISM} the login module is {MSK_LOGIN_MODULE}"),
                ));
            }
            let option = |name: &str| -> Option<String> {
                let at = text.find(&format!("{name}=\""))? + name.len() + 2;
                let end = text[at..].find('"')?;
                Some(text[at..at + end].to_owned())
            };
            if option("awsRoleArn").is_some() {
                return Err(problem(
                    p,
                    "awsRoleArn is not read: name a profile whose role_arn and source_profile \
                     (or credential_source) assume the role (awsProfileName=\"…\" or \
                     AWS_PROFILE), or set AWS_ROLE_ARN with a web identity token"
                        .into(),
                ));
            }
            Ok(MskTranslation::Profile(option("awsProfileName")))
        }
        "sasl.oauthbearer.method" | "enable.sasl.oauthbearer.unsecure.jwt" => Err(problem(
            p,
            format!("{MSK_IAM_MECHANISM} signs its own tokens: remove this property"),
        )),
        _ => Ok(MskTranslation::Keep),
    }
}

/// Java's `sasl.jaas.config` for PLAIN and SCRAM as librdkafka's `sasl.username` and
/// `sasl.password`; every other property as it is.
fn translate_java(p: Property) -> Result<Vec<Property>, KafkaConfigError> {
    if p.key != "sasl.jaas.config" {
        return Ok(vec![p]);
    }
    let text = p.value.trim().trim_end_matches(';').trim();
    let module = text.split_whitespace().next().unwrap_or_default();
    if !(module.ends_with(".PlainLoginModule") || module.ends_with(".ScramLoginModule")) {
        return Err(problem(
            &p,
            format!(
                "only PlainLoginModule and ScramLoginModule translate to librdkafka (found \
                 {module:?}); set sasl.mechanism, sasl.username and sasl.password, or \
                 sasl.oauthbearer.*, instead"
            ),
        ));
    }
    let field = |name: &str| -> Option<String> {
        let at = text.find(&format!("{name}=\""))? + name.len() + 2;
        let end = text[at..].find('"')?;
        Some(text[at..at + end].to_owned())
    };
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return Err(problem(
            &p,
            "needs username=\"…\" and password=\"…\" for librdkafka".into(),
        ));
    };
    Ok(vec![
        Property {
            key: "sasl.username".into(),
            value: username,
            origin: p.origin.clone(),
        },
        Property {
            key: "sasl.password".into(),
            value: password,
            origin: p.origin,
        },
    ])
}

/// The properties of a Java-style properties file: `key=value`, `key: value` or `key value`
/// lines, `#` and `!` comments, a trailing `\` continuing a line, `\` escapes.
fn parse_properties(path: &Path, text: &str) -> Result<Vec<Property>, KafkaConfigError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let first = i + 1;
        let mut logical = line.trim_start().to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let origin = Origin::File {
            path: path.to_owned(),
            line: first,
        };
        let (key, value) = split_property(&logical);
        let key = unescape(key);
        if key.is_empty() {
            return Err(KafkaConfigError::Syntax {
                origin,
                problem: "a line with a value but no property name".into(),
            });
        }
        out.push(Property {
            key,
            value: unescape(value),
            origin,
        });
    }
    Ok(out)
}

fn ends_in_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace; the value loses its leading blanks.
fn split_property(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&line[..i], line[i + 1..].trim_start()),
            c if c.is_whitespace() => {
                let rest = line[i..].trim_start();
                let rest = rest
                    .strip_prefix(['=', ':'])
                    .map(str::trim_start)
                    .unwrap_or(rest);
                return (&line[..i], rest);
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests;
