//! The HTTP endpoint of every long-running command: `/metrics` (Prometheus text), `/healthz`
//! (the process answers) and `/readyz` (its dependencies answer and it makes progress: 200 or
//! 503 with a JSON body naming each check). hyper, HTTP/1.1, one small task per connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// What `/readyz` asks: (ready, JSON body).
pub type ReadyFn = Arc<dyn Fn() -> (bool, String) + Send + Sync>;

/// Histogram buckets, per metric (Prometheus histograms, so that quantiles aggregate across
/// ingestors): seconds for latencies, rows and bytes for file sizes.
fn buckets(b: PrometheusBuilder) -> Result<PrometheusBuilder> {
    use surgstream_ingest::metrics as m;
    let seconds_long = [
        0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
    ];
    let seconds_short = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let rows = [100.0, 1e3, 5e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 5e6];
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
        b.set_buckets_for_metric(Matcher::Full(m::END_TO_END_LATENCY.into()), &seconds_long)?
            .set_buckets_for_metric(Matcher::Full(m::RECORD_AGE.into()), &seconds_long)?
            .set_buckets_for_metric(
                Matcher::Full(surgstream_sim::kafka::DELIVERY_SECONDS.into()),
                &seconds_long,
            )?
            .set_buckets_for_metric(Matcher::Full(m::FLUSH_DURATION.into()), &seconds_short)?
            .set_buckets_for_metric(Matcher::Full(m::PG_TRANSACTION.into()), &seconds_short)?
            .set_buckets_for_metric(Matcher::Full(m::ROWS_PER_FILE.into()), &rows)?
            .set_buckets_for_metric(Matcher::Full(m::BYTES_PER_FILE.into()), &bytes)?,
    )
}

/// Installs the metrics recorder and serves the endpoints on `addr`, in the background; also
/// records the process's resident memory every 5 s. Off when `addr` is None.
pub async fn serve(addr: Option<SocketAddr>, ready: ReadyFn) -> Result<()> {
    let Some(addr) = addr else {
        return Ok(());
    };
    let handle = buckets(PrometheusBuilder::new())?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            if let Some(rss) = resident_bytes() {
                metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
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
            let (handle, ready) = (handle.clone(), ready.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let resp = respond(&req, &handle, &ready);
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
    req: &Request<Incoming>,
    handle: &PrometheusHandle,
    ready: &ReadyFn,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4", handle.render()),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => {
            let (ok, body) = ready();
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, "application/json", body)
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

/// `/readyz` of the ingestor.
pub fn ingest_ready(health: surgstream_ingest::health::Health) -> ReadyFn {
    Arc::new(move || {
        let r = health.readiness();
        let body = serde_json::to_string(&r).unwrap_or_else(|_| "{}".to_owned());
        (r.ready, body)
    })
}

/// `/readyz` of the simulator: ready while its producer gets metadata from the broker (probed
/// every 5 s in the background).
pub fn broker_ready(producer: &rdkafka::producer::FutureProducer, brokers: &str) -> ReadyFn {
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
    Arc::new(move || {
        let (ok, detail) = state
            .lock()
            .map(|s| s.clone())
            .unwrap_or((false, "poisoned".to_owned()));
        let body =
            serde_json::json!({"ready": ok, "checks": {"broker": {"ok": ok, "detail": detail}}});
        (ok, body.to_string())
    })
}
