//! What librdkafka says about its connections, kept so that a command that cannot reach the
//! cluster says why: librdkafka reports refused credentials, a certificate that does not verify
//! or a listener that speaks another protocol only to a client context's error callback, while
//! the call that waits (a metadata request) just times out with "broker transport failure".

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

/// The last connection error librdkafka reported. Clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionErrors {
    last: Arc<Mutex<Option<Reported>>>,
}

#[derive(Debug, Clone)]
struct Reported {
    reason: String,
    permanent: bool,
}

impl ConnectionErrors {
    /// Records an error from a client context's `error` callback.
    pub(crate) fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        // "1/1 brokers are down" sums up the errors before it, which say why.
        if code == Some(RDKafkaErrorCode::AllBrokersDown) && self.last().is_some() {
            return;
        }
        let reported = Reported {
            reason: if reason.is_empty() {
                error.to_string()
            } else {
                reason.to_owned()
            },
            permanent: is_permanent(code),
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        // A permanent error stays the one to report: the disconnects that follow it say less.
        if !last.as_ref().is_some_and(|l| l.permanent) || reported.permanent {
            *last = Some(reported);
        }
    }

    /// Records a log line of librdkafka's at error level: a consumer's connection errors reach
    /// its queue as bare codes, while the log line holds the reason (which listener, which
    /// mechanism, which certificate check).
    pub(crate) fn record_log(&self, message: &str) {
        // "[thrd:ssl://host:port/bootstrap]: ssl://host:port/bootstrap: …": the thread's name
        // repeats what follows it.
        let message = message
            .strip_prefix("[thrd:")
            .and_then(|m| m.split_once("]: "))
            .map_or(message, |(_, rest)| rest);
        let reported = Reported {
            reason: message.to_owned(),
            permanent: PERMANENT_FAILURES.iter().any(|m| message.contains(m)),
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if !last.as_ref().is_some_and(|l| l.permanent) || reported.permanent {
            *last = Some(reported);
        }
    }

    /// librdkafka's last reason, if any.
    pub(crate) fn last(&self) -> Option<String> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref().map(|r| r.reason.clone())
    }

    /// The reason of an error no retry mends (the cluster refused the credentials, or a TLS
    /// handshake failed), if one was reported.
    pub(crate) fn permanent(&self) -> Option<String> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref()
            .filter(|r| r.permanent)
            .map(|r| r.reason.clone())
    }
}

/// librdkafka's (and OpenSSL's) words for a refused SASL authentication, a failed TLS
/// handshake, and a client certificate the broker refuses (TLS alerts it sends back).
const PERMANENT_FAILURES: [&str; 6] = [
    "SASL authentication error",
    "SSL handshake failed",
    "certificate verify failed",
    "alert bad certificate",
    "alert unknown ca",
    "alert certificate required",
];

/// Refused credentials and failed TLS handshakes: retrying the same settings cannot succeed.
fn is_permanent(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SSL
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    )
}

/// A client context that records connection errors (and logs them, as librdkafka's default
/// context does).
#[derive(Debug, Clone, Default)]
pub(crate) struct WatchedContext {
    /// What librdkafka reported.
    pub(crate) errors: ConnectionErrors,
    /// Signs MSK IAM tokens.
    pub(crate) kafka: crate::KafkaContext,
}

impl ProducerContext for WatchedContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl ClientContext for WatchedContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        crate::generate_oauth_token(self.kafka.msk())
    }

    fn error(&self, error: KafkaError, reason: &str) {
        report_error(&self.errors, &error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        report_log(&self.errors, level, fac, log_message);
    }
}

/// What a context's `log` callback does: record error lines and connection failures (facility
/// `FAIL`, logged at info level: "Disconnected: connection closed by peer … in state
/// APIVERSION_QUERY"), and log every line under the `librdkafka` target at its level (as
/// librdkafka's default context does).
pub(crate) fn report_log(
    errors: &ConnectionErrors,
    level: RDKafkaLogLevel,
    fac: &str,
    message: &str,
) {
    if fac == "FAIL" {
        errors.record_log(message);
    }
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            if fac != "FAIL" {
                errors.record_log(message);
            }
            tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}");
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", "librdkafka: {fac} {message}")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}")
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}")
        }
    }
}

/// What a context's `error` callback does: record, and log at warn (a client that retries
/// may still connect; one that gives up says so in its own error).
pub(crate) fn report_error(errors: &ConnectionErrors, error: &KafkaError, reason: &str) {
    errors.record(error, reason);
    tracing::warn!(target: "librdkafka", error = %error, reason, "Kafka client error");
}

/// Why the cluster's metadata could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The cluster refused the connection: credentials, certificates, protocol.
    #[error("refused the connection: {reason}")]
    Refused {
        /// librdkafka's reason.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("{source}{}{}", last.as_ref().map(|l| format!(" (librdkafka's last error: {l})")).unwrap_or_default(), hint.unwrap_or_default())]
    Unreachable {
        /// The metadata request's error.
        source: KafkaError,
        /// librdkafka's last reported error, which usually says more.
        last: Option<String>,
        /// What the settings suggest about it.
        hint: Option<&'static str>,
    },
}

/// What the cluster says of a topic a client needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicState {
    /// It exists, with partitions, and the principal may describe it.
    Ready,
    /// The cluster's authorizer refuses the principal even a description of it.
    NotAuthorized,
    /// It does not exist (or has no partitions).
    Missing,
}

/// Connects to the cluster as `settings` say and tells the state of each of `topics` within
/// `timeout` — or, as soon as librdkafka reports refused credentials or a failed TLS handshake,
/// that reason; on a timeout, librdkafka's last error. A client of its own: a consumer's logs and
/// errors wait in its queue until it is polled, so they cannot explain a metadata request that
/// fails before it consumes.
pub fn probe_topics(
    settings: &crate::KafkaSettings,
    topics: &[&str],
    timeout: Duration,
) -> Result<Vec<TopicState>, MetadataError> {
    let probe = Probe::connect(settings)?;
    let all = probe.metadata(None, timeout)?;
    topics
        .iter()
        .map(|&topic| {
            let ready = |md: &Metadata| {
                md.topics()
                    .iter()
                    .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            };
            if ready(&all) {
                return Ok(TopicState::Ready);
            }
            // A cluster lists only the topics the principal may describe: asked by name, it
            // tells a refused topic from a missing one.
            let alone = probe.metadata(Some(topic), timeout)?;
            let refused = alone
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .and_then(|t| t.error())
                .is_some_and(|e| {
                    RDKafkaErrorCode::from(e) == RDKafkaErrorCode::TopicAuthorizationFailed
                });
            Ok(if ready(&alone) {
                TopicState::Ready
            } else if refused {
                TopicState::NotAuthorized
            } else {
                TopicState::Missing
            })
        })
        .collect()
}

/// The probing client and what librdkafka told it.
struct Probe<'s> {
    settings: &'s crate::KafkaSettings,
    context: WatchedContext,
    producer: BaseProducer<WatchedContext>,
}

impl<'s> Probe<'s> {
    fn connect(settings: &'s crate::KafkaSettings) -> Result<Self, MetadataError> {
        let context = WatchedContext {
            errors: ConnectionErrors::default(),
            kafka: settings.context(),
        };
        let mut config = settings.client_config();
        config.set("client.id", "surgstream-probe");
        // Connection failures are logged at info level (facility FAIL): have librdkafka emit
        // them whatever the log filter (rdkafka derives the level from it); report_log still
        // filters what is printed.
        config.set_log_level(RDKafkaLogLevel::Info);
        let producer = config
            .create_with_context(context.clone())
            .map_err(|source| MetadataError::Unreachable {
                source,
                last: None,
                hint: None,
            })?;
        Ok(Self {
            settings,
            context,
            producer,
        })
    }

    /// The metadata of `topic` (or of every topic), retried until `timeout`.
    fn metadata(&self, topic: Option<&str>, timeout: Duration) -> Result<Metadata, MetadataError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Serves librdkafka's events: its request for an OAUTHBEARER token among them.
            self.producer.poll(Duration::ZERO);
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = self
                .producer
                .client()
                .fetch_metadata(topic, left.min(Duration::from_secs(1)));
            // Serves the logs and errors librdkafka queued meanwhile (to the context): poll
            // takes one event per call once its deadline has passed, so give it a little time.
            self.producer.poll(Duration::from_millis(50));
            match attempt {
                Ok(md) => return Ok(md),
                Err(source) => {
                    if let Some(reason) = self.context.errors.permanent() {
                        return Err(MetadataError::Refused { reason });
                    }
                    if Instant::now() >= deadline {
                        let last = self.context.errors.last();
                        return Err(MetadataError::Unreachable {
                            hint: hint(self.settings, last.as_deref()),
                            source,
                            last,
                        });
                    }
                }
            }
        }
    }
}

/// A plaintext client whose connections the broker closes before answering its first request
/// is most likely talking to a TLS listener.
fn hint(settings: &crate::KafkaSettings, last: Option<&str>) -> Option<&'static str> {
    let plaintext = settings.get("security.protocol").is_none_or(|p| {
        p.eq_ignore_ascii_case("plaintext") || p.eq_ignore_ascii_case("sasl_plaintext")
    });
    let closed_at_hello = last
        .is_some_and(|l| l.contains("connection closed by peer") && l.contains("APIVERSION_QUERY"));
    (plaintext && closed_at_hello).then_some(
        "; the broker closes a plaintext connection at its first request: if the listener \
         is TLS, set security.protocol=SSL or SASL_SSL (docs/security.md)",
    )
}
