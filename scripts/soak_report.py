#!/usr/bin/env python3
"""The verdict of a soak run (scripts/soak.sh), from the Prometheus HTTP API.

Prints the numbers and a verdict, writes soak.json and soak.png (throughput, consumer lag and
RSS over time) into --out, and exits 0 on green, 1 otherwise. Green means: `verify` found
nothing missing or duplicated with the topics drained; no dead letter; the ingestor wrote at
least 95 % of the frames the simulator sent during the run (1-minute rates, after the first
minute); p99 end-to-end latency (each flush's oldest frame since 2026-12-03: an upper bound of the per-frame p99 bench --live reports) at most --max-age + 1 s; RSS at the end at most 25 % (+32 MiB)
above RSS after the first two minutes (a leak grows without bound).
"""

import argparse
import json
import sys
import urllib.parse
import urllib.request


def query(base, expr, at=None):
    params = {"query": expr}
    if at is not None:
        params["time"] = str(at)
    url = f"{base}/api/v1/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as r:
        data = json.load(r)
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def query_range(base, expr, start, end, step=15):
    params = {"query": expr, "start": str(start), "end": str(end), "step": str(step)}
    url = f"{base}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as r:
        data = json.load(r)
    result = data["data"]["result"]
    if not result:
        return [], []
    values = result[0]["values"]
    return [float(t) - start for t, _ in values], [float(v) for _, v in values]


def seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--prometheus", required=True)
    p.add_argument("--start", type=float, required=True)
    p.add_argument("--end", type=float, required=True)
    p.add_argument("--max-age", required=True)
    p.add_argument("--verify", required=True)
    p.add_argument("--verify-rc", type=int, required=True)
    p.add_argument("--sim-report", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    base, start, end = a.prometheus, a.start, a.end
    window = int(end - start)
    warm = start + 60

    written = "sum(rate(surgstream_frames_written_total[1m]))"
    sent = "sum(rate(surgstream_sim_frames_sent_total[1m]))"
    lag = "sum(surgstream_consumer_lag_messages)"
    rss = 'process_resident_memory_bytes{job="surgstream-ingest"}'
    t_w, v_w = query_range(base, written, start, end)
    t_s, v_s = query_range(base, sent, start, end)
    t_l, v_l = query_range(base, lag, start, end)
    t_r, v_r = query_range(base, rss, start, end)

    frames_written = query(base, "sum(surgstream_frames_written_total)", end) or 0.0
    frames_sent = query(base, "sum(surgstream_sim_frames_sent_total)", end) or 0.0
    avg_written = query(base, f"sum(increase(surgstream_frames_written_total[{window}s]))", end)
    avg_written = (avg_written or 0.0) / window
    min_ratio = None
    ratios = [w / s for t, w, s in zip(t_w, v_w, v_s) if t >= 60 and s > 0]
    if ratios:
        min_ratio = min(ratios)
    total_ratio = query(
        base,
        f"sum(increase(surgstream_frames_written_total[{window - 60}s])) / "
        f"sum(increase(surgstream_sim_frames_sent_total[{window - 60}s]))",
        end,
    )
    max_lag = max(v_l) if v_l else None
    p99 = query(
        base,
        "histogram_quantile(0.99, sum by (le) (increase("
        f"surgstream_end_to_end_latency_seconds_bucket[{window}s])))",
        end,
    )
    p50 = query(
        base,
        "histogram_quantile(0.5, sum by (le) (increase("
        f"surgstream_end_to_end_latency_seconds_bucket[{window}s])))",
        end,
    )
    dlq = query(base, "sum(surgstream_dead_letters_total)", end) or 0.0
    rss_start = query(base, rss, min(start + 120, end))
    rss_end = query(base, rss, end)
    rss_max = max(v_r) if v_r else None
    with open(a.verify) as f:
        try:
            verify = json.load(f)
        except json.JSONDecodeError:
            verify = {}
    with open(a.sim_report) as f:
        sim = json.load(f)

    max_age = seconds(a.max_age)
    checks = {
        "verify: nothing missing or duplicated, drained": a.verify_rc == 0
        and verify.get("missing") == 0
        and verify.get("duplicated") == 0,
        "no dead letters": dlq == 0,
        "written ≥ 95 % of sent after the first minute": total_ratio is not None
        and total_ratio >= 0.95,
        f"p99 end-to-end ≤ max age + 1 s ({max_age + 1:.0f} s)": p99 is not None
        and p99 <= max_age + 1,
        "RSS at the end ≤ 1.25 × RSS at 2 min + 32 MiB": rss_start is not None
        and rss_end is not None
        and rss_end <= 1.25 * rss_start + 32 * 2**20,
    }
    green = all(checks.values())
    summary = {
        "minutes": window / 60,
        "frames_sent": frames_sent,
        "frames_written": frames_written,
        "sim_report_frames": sim.get("frames"),
        "frames_in_lake_per_verify": verify.get("frames_in_lake"),
        "throughput_frames_per_second_avg": avg_written,
        "written_over_sent_after_warmup": total_ratio,
        "min_1m_written_over_sent": min_ratio,
        "max_consumer_lag_records": max_lag,
        "end_to_end_latency_p50_seconds": p50,
        "end_to_end_latency_p99_seconds": p99,
        "dead_letters": dlq,
        "rss_bytes_at_2min": rss_start,
        "rss_bytes_at_end": rss_end,
        "rss_bytes_max": rss_max,
        "verify": {k: verify.get(k) for k in ("missing", "duplicated", "pending_records", "orphan_files")},
        "checks": checks,
        "verdict": "green" if green else "red",
    }
    with open(f"{a.out}/soak.json", "w") as f:
        json.dump(summary, f, indent=2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    ax[0].plot([t / 60 for t in t_s], v_s, label="sent (sim)")
    ax[0].plot([t / 60 for t in t_w], v_w, label="written (ingest)")
    ax[0].set_ylabel("frames/s (1 min rate)")
    ax[0].legend()
    ax[0].set_title(f"surgstream soak: {window / 60:.0f} min, verdict {summary['verdict']}")
    ax[1].plot([t / 60 for t in t_l], v_l, color="tab:red")
    ax[1].set_ylabel("consumer lag (records)")
    ax[2].plot([t / 60 for t in t_r], [v / 2**20 for v in v_r], color="tab:green")
    ax[2].set_ylabel("ingest RSS (MiB)")
    ax[2].set_xlabel("minutes")
    for x in ax:
        x.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{a.out}/soak.png", dpi=90)

    def fmt(v, unit="", scale=1.0, digits=0):
        return "n/a" if v is None else f"{v / scale:,.{digits}f}{unit}"

    print(f"soak: {window / 60:.1f} min")
    print(f"  frames sent {fmt(frames_sent)}, written {fmt(frames_written)}, "
          f"in the lake per verify {fmt(verify.get('frames_in_lake'))}")
    print(f"  throughput {fmt(avg_written, ' frames/s')} average; written/sent after the first minute "
          f"{fmt(total_ratio, '', 0.01, 1)} %, lowest 1-min ratio {fmt(min_ratio, '', 0.01, 1)} %")
    print(f"  max consumer lag {fmt(max_lag, ' records')}")
    print(f"  end-to-end latency p50 {fmt(p50, ' s', 1, 2)}, p99 {fmt(p99, ' s', 1, 2)}")
    print(f"  ingest RSS {fmt(rss_start, ' MiB', 2**20, 1)} at 2 min, {fmt(rss_end, ' MiB', 2**20, 1)} "
          f"at the end, {fmt(rss_max, ' MiB', 2**20, 1)} max")
    print(f"  dead letters {fmt(dlq)}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    print(f"verdict: {'GREEN' if green else 'RED'}  ({a.out}/soak.png, {a.out}/soak.json)")
    return 0 if green else 1


if __name__ == "__main__":
    sys.exit(main())
