//! The HTTP endpoint of every long-running command: `/metrics` (Prometheus text), `/healthz`
//! (liveness: the ingestor's loop has run recently enough that it is not stuck; 503 with the
//! reason otherwise) and `/readyz` (its dependencies answer and it makes progress: 200 or 503
//! with a JSON body naming each check). hyper, HTTP/1.1, one small task per connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process's resident memory, recorded every 5 s while the endpoint is served.
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";

/// A check the endpoint asks when it is requested: (passing, body).
pub type CheckFn = Arc<dyn Fn() -> (bool, String) + Send + Sync>;

/// What `/healthz` and `/readyz` ask.
#[derive(Clone)]
pub struct Checks {
    /// `/healthz`: 200 with `ok`, or 503 with why the process should be restarted.
    pub live: CheckFn,
    /// `/readyz`: 200 or 503, with a JSON body naming each check.
    pub ready: CheckFn,
}

/// When the process started, as `main` noted it first thing ([`note_process_start`]).
static PROCESS_START: OnceLock<SystemTime> = OnceLock::new();

/// Notes now as the process's start (`process_start_time_seconds`); `main` calls it first.
pub fn note_process_start() {
    let _ = PROCESS_START.set(SystemTime::now());
}

/// The process's start, Unix seconds.
fn process_start_seconds() -> f64 {
    PROCESS_START
        .get_or_init(SystemTime::now)
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Histogram buckets, per metric (Prometheus histograms, so that quantiles aggregate across
/// ingestors): seconds for latencies, rows and bytes for file sizes.
pub(crate) fn buckets(b: PrometheusBuilder) -> Result<PrometheusBuilder> {
    use surgstream_ingest::metrics as m;
    let seconds_long = [
        0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
    ];
    let seconds_short = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let rows = [100.0, 1e3, 5e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 5e6];
    let end_to_end = end_to_end_buckets();
    let bytes = [
        4096.0,
        65536.0,
        262144.0,
        1048576.0,
        4194304.0,
        16777216.0,
        67108864.0,
        268435456.0,
        1073741824.0,
    ];
    Ok(
        b.set_buckets_for_metric(Matcher::Full(m::END_TO_END_LATENCY.into()), &end_to_end)?
            .set_buckets_for_metric(
                Matcher::Full(m::END_TO_END_LATENCY_NEWEST.into()),
                &end_to_end,
            )?
            .set_buckets_for_metric(Matcher::Full(m::RECORD_AGE.into()), &seconds_long)?
            .set_buckets_for_metric(
                Matcher::Full(surgstream_sim::kafka::DELIVERY_SECONDS.into()),
                &seconds_long,
            )?
            .set_buckets_for_metric(Matcher::Full(m::FLUSH_DURATION.into()), &seconds_short)?
            .set_buckets_for_metric(Matcher::Full(m::PG_TRANSACTION.into()), &seconds_short)?
            .set_buckets_for_metric(Matcher::Full(m::ROWS_PER_FILE.into()), &rows)?
            .set_buckets_for_metric(Matcher::Full(m::BYTES_PER_FILE.into()), &bytes)?
            .set_buckets_for_metric(
                Matcher::Full(surgstream_warehouse::fresh::REFRESH_DURATION.into()),
                &seconds_long,
            )?,
    )
}

/// The end-to-end latency's buckets: every 0.25 s up to 10 s, then coarser to 5 min. A flush
/// commits about `--max-age` after its oldest frame, so the values crowd just above it (5.2–5.6 s
/// at the default 5 s): `histogram_quantile` interpolates within a bucket, and with the 5 s and
/// 7.5 s bounds of the other latencies it would put a p99 of 5.4 s at 7.5 s. With 0.25 s
/// buckets the dashboard's quantiles are within 0.25 s of the per-frame ones that
/// `surgstream bench --live` measures, for any `--max-age` up to about 9 s.
pub(crate) fn end_to_end_buckets() -> Vec<f64> {
    let fine = (1..=40).map(|i| f64::from(i) * 0.25);
    fine.chain([12.5, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0])
        .collect()
}

/// Installs the metrics recorder and serves the endpoints on `addr`, in the background; also
/// records the process's start time, and its resident memory every 5 s. Off when `addr` is
/// None.
pub async fn serve(addr: Option<SocketAddr>, checks: Checks) -> Result<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let handle = buckets(PrometheusBuilder::new())?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    metrics::gauge!(surgstream_ingest::metrics::PROCESS_START_TIME).set(process_start_seconds());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            if let Some(rss) = resident_bytes() {
                metrics::gauge!(RESIDENT_MEMORY).set(rss as f64);
            }
            upkeep.run_upkeep();
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (handle, checks) = (handle.clone(), checks.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let resp = respond(req.method(), req.uri().path(), &handle, &checks);
                    async move { Ok::<_, Infallible>(resp) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "metrics endpoint: connection ended");
                }
            });
        }
    });
    Ok(())
}

fn respond(
    method: &Method,
    path: &str,
    handle: &PrometheusHandle,
    checks: &Checks,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if method != Method::GET && method != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    let status = |ok: bool| {
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    match path {
        "/metrics" => {
            // The recorder's series, then those it cannot remove (one per assigned partition).
            let mut page = handle.render();
            page.push_str(&surgstream_ingest::metrics::render_partition_series());
            reply(StatusCode::OK, "text/plain; version=0.0.4", page)
        }
        "/healthz" => {
            let (ok, body) = (checks.live)();
            reply(status(ok), "text/plain", format!("{body}\n"))
        }
        "/readyz" => {
            let (ok, body) = (checks.ready)();
            reply(status(ok), "application/json", body)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: /metrics, /healthz, /readyz\n".into(),
        ),
    }
}

/// VmRSS of this process, from /proc (Linux); None elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// `/healthz` and `/readyz` of the ingestor: its loop's liveness, its readiness.
pub fn ingest_ready(health: surgstream_ingest::health::Health) -> Checks {
    let live = health.clone();
    Checks {
        live: Arc::new(move || {
            let l = live.liveness();
            (l.alive, l.detail)
        }),
        ready: Arc::new(move || {
            let r = health.readiness();
            let body = serde_json::to_string(&r).unwrap_or_else(|_| "{}".to_owned());
            (r.ready, body)
        }),
    }
}

/// `/healthz` and `/readyz` of a process with no dependency to probe between its runs (the
/// warehouse's refresh loop: a failed refresh is counted, and tried again).
pub fn always_ready() -> Checks {
    Checks {
        live: Arc::new(|| (true, "ok".to_owned())),
        ready: Arc::new(|| (true, "ok".to_owned())),
    }
}

/// `/healthz` and `/readyz` of the simulator: alive while it answers (it has no loop that can
/// stall unseen: a producer that cannot deliver fails the run); ready while its producer gets
/// metadata from the broker (probed every 5 s in the background).
pub fn broker_ready(
    producer: &rdkafka::producer::FutureProducer<surgstream_kafka::KafkaContext>,
    brokers: &str,
) -> Checks {
    use rdkafka::producer::Producer;
    let state = Arc::new(std::sync::Mutex::new((false, "not probed yet".to_owned())));
    let (probe_state, producer, brokers) = (state.clone(), producer.clone(), brokers.to_owned());
    tokio::spawn(async move {
        loop {
            let p = producer.clone();
            let r = tokio::task::spawn_blocking(move || {
                p.client()
                    .fetch_metadata(None, Duration::from_secs(3))
                    .map(|_| ())
            })
            .await;
            let now = match r {
                Ok(Ok(())) => (true, "ok".to_owned()),
                Ok(Err(e)) => (false, format!("{brokers}: {e}")),
                Err(e) => (false, e.to_string()),
            };
            if let Ok(mut s) = probe_state.lock() {
                *s = now;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    Checks {
        live: Arc::new(|| (true, "ok".to_owned())),
        ready: Arc::new(move || {
            let (ok, detail) = state
                .lock()
                .map(|s| s.clone())
                .unwrap_or((false, "poisoned".to_owned()));
            let body = serde_json::json!({"ready": ok, "checks": {"broker": {"ok": ok, "detail": detail}}});
            (ok, body.to_string())
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt;
    use surgstream_ingest::health::Health;

    use super::*;

    async fn get(path: &str, handle: &PrometheusHandle, checks: &Checks) -> (StatusCode, String) {
        let resp = respond(&Method::GET, path, handle, checks);
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn recorder() -> metrics_exporter_prometheus::PrometheusRecorder {
        buckets(PrometheusBuilder::new())
            .expect("the binary's buckets")
            .build_recorder()
    }

    #[test]
    fn end_to_end_buckets_are_a_quarter_second_wide_up_to_10_s() {
        let b = end_to_end_buckets();
        assert!(b.windows(2).all(|w| w[0] < w[1]), "ascending: {b:?}");
        let fine: Vec<&[f64]> = b.windows(2).filter(|w| w[1] <= 10.0).collect();
        assert!(fine.iter().all(|w| w[1] - w[0] <= 0.25), "{b:?}");
        assert_eq!((b[0], b.last().copied()), (0.25, Some(300.0)));
    }

    #[tokio::test]
    async fn healthz_is_503_with_the_reason_while_starting_and_when_the_loop_is_stuck() {
        let handle = recorder().handle();
        let health = Health::default();
        let checks = ingest_ready(health.clone());
        let (status, body) = get("/healthz", &handle, &checks).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.starts_with("starting"), "{body}");

        health.beat(Duration::from_secs(30), Duration::from_secs(300));
        assert_eq!(
            get("/healthz", &handle, &checks).await,
            (StatusCode::OK, "ok\n".to_owned())
        );

        // A heartbeat older than the liveness threshold: stuck.
        health.beat(Duration::from_millis(1), Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, body) = get("/healthz", &handle, &checks).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            body.starts_with("stuck: the ingest loop has not run for"),
            "{body}"
        );
        // Readiness is its own answer (here: nothing probed yet).
        assert_eq!(
            get("/readyz", &handle, &checks).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn metrics_show_readiness_per_check_and_the_assigned_partitions_lag() {
        let recorder = recorder();
        let handle = recorder.handle();
        let health = Health::default();
        health.set("broker", Err("down".into()));
        health.set("database", Ok(()));
        health.set("store", Ok(()));
        health.beat(Duration::from_secs(30), Duration::from_secs(300));
        metrics::with_local_recorder(&recorder, || health.record());
        surgstream_ingest::metrics::CONSUMER_LAG_SERIES.set("http-test.telemetry", 3, 42.0);
        let (status, page) = get("/metrics", &handle, &ingest_ready(health)).await;
        assert_eq!(status, StatusCode::OK);
        for line in [
            "surgstream_ready{check=\"broker\"} 0",
            "surgstream_ready{check=\"database\"} 1",
            "surgstream_ready{check=\"store\"} 1",
            "surgstream_ready{check=\"progress\"} 1",
            "surgstream_consumer_lag_messages{topic=\"http-test.telemetry\",partition=\"3\"} 42",
        ] {
            assert!(page.lines().any(|l| l == line), "{line} in:\n{page}");
        }
        surgstream_ingest::metrics::CONSUMER_LAG_SERIES.retain(|(t, _)| t != "http-test.telemetry");
    }
}
