#!/usr/bin/env python3
"""Checks the deployment artifacts against each other: what needs no knowledge of the code.

    python3 scripts/check_deploy.py [--no-compose]

Files: docker-compose.yml, deploy/Dockerfile, deploy/prometheus/prometheus.yml and its rule
files, deploy/grafana/dashboards/*.json, deploy/grafana/provisioning/**.yml.

What it checks:
  * YAML / JSON syntax (YAML duplicate keys too: Compose refuses them, PyYAML does not).
  * Compose wiring: images pinned, depends_on conditions satisfiable, bind-mount sources exist,
    metrics listeners reachable from other containers, hosts in URLs are services (Kafka's on an
    advertised listener), DATABASE_URL matches the postgres service, healthchecks probe the
    metrics port, the s3:// lake's bucket is created, `ingest` and `sim` services exist.
  * Prometheus: targets are compose services on their metrics port, config and rule files are
    mounted where Prometheus reads them, every alert has `for:`, a severity, a summary and a
    description.
  * Grafana: provisioning and dashboards mounted where the provisioning files say, the datasource
    points at the prometheus service, dashboard structure (schema version, datasource variable,
    panel ids, grid, refIds).
  * Dockerfile: multi-stage, Rust version = rust-toolchain.toml, the build copies what cargo
    reads, build packages for the rdkafka features and protoc, non-root final stage, ENTRYPOINT,
    EXPOSE of the metrics port.
  * `docker compose config -q` (or `docker-compose`) when a client is installed.

What needs the code is checked by the binary's own tests (src/deploy_checks.rs: the options and
environment variables against its clap definitions, the metric names against what its /metrics
renders, promtool on the config and rules); scripts/check-deploy.sh runs both.

Problems are ERROR lines, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ENV_EXAMPLE = ROOT / "deploy" / "surgstream.env.example"
PROM_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING_DIR = ROOT / "deploy" / "grafana" / "provisioning"


# --------------------------------------------------------------------------------------------
# Reporting


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def ok(self, msg: str) -> None:
        print(f"ok       {msg}")

    def error(self, msg: str) -> None:
        self.errors.append(msg)
        print(f"ERROR    {msg}")

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        print(f"warning  {msg}")

    def skip(self, msg: str) -> None:
        print(f"SKIPPED  {msg}")

    def section(self, title: str) -> None:
        print(f"\n== {title}")


R = Report()

def rel(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------------------------
# YAML / JSON


def yaml_module():
    try:
        import yaml  # type: ignore
    except ImportError:
        return None
    return yaml


def load_yaml(path: Path):
    yaml = yaml_module()

    class Loader(yaml.SafeLoader):  # type: ignore[misc, name-defined]
        pass

    def construct_mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        loader.flatten_mapping(node)
        return dict(loader.construct_pairs(node, deep=deep))

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def check_syntax() -> dict:
    R.section("syntax")
    docs: dict = {}
    yamls = [COMPOSE, PROM_CONFIG, ALERTS, RULE_TESTS] + sorted(PROVISIONING_DIR.glob("**/*.yml")) + sorted(
        PROVISIONING_DIR.glob("**/*.yaml")
    )
    for p in yamls:
        if not p.exists():
            R.error(f"{rel(p)} is missing")
            continue
        try:
            docs[p] = load_yaml(p)
            if not isinstance(docs[p], dict):
                R.error(f"{rel(p)}: top level is not a mapping")
                del docs[p]
                continue
            R.ok(f"{rel(p)} is valid YAML")
        except Exception as e:  # noqa: BLE001 - any parse error is reported
            R.error(f"{rel(p)} is not valid YAML: {e}")
    dashboards = sorted(DASHBOARD_DIR.glob("*.json"))
    if not dashboards:
        R.error(f"no dashboard JSON in {rel(DASHBOARD_DIR)}")
    for p in dashboards:
        try:
            with open(p, encoding="utf-8") as f:
                docs[p] = json.load(f)
            R.ok(f"{rel(p)} is valid JSON")
        except Exception as e:  # noqa: BLE001
            R.error(f"{rel(p)} is not valid JSON: {e}")
    for p in (DOCKERFILE, ENV_EXAMPLE):
        if not p.exists():
            R.error(f"{rel(p)} is missing")
    return docs


# --------------------------------------------------------------------------------------------
# Compose


def interpolate(value):
    """Compose variable interpolation with the defaults written in the file (not the shell's)."""
    if isinstance(value, str):
        def sub(m):
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(4)
            op, default = m.group(2), m.group(3)
            if op and op.lstrip(":") == "-":
                return default
            if op and op.lstrip(":") == "?":
                return f"<{name}>"
            R.warn(f"docker-compose.yml: ${{{name}}} has no default: empty unless set in the environment")
            return ""
        return re.sub(r"\$\$|\$\{(\w+)(:?[-?])?([^}]*)\}|\$(\w+)", sub, value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def env_dict(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for e in env:
            k, _, v = str(e).partition("=")
            out[k] = v
        return out
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def as_list(cmd) -> list[str]:
    if cmd is None:
        return []
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return [str(c) for c in cmd]


def is_surgstream(svc: dict) -> bool:
    image = str(svc.get("image", ""))
    build = svc.get("build")
    dockerfile = ""
    if isinstance(build, dict):
        dockerfile = str(build.get("dockerfile", ""))
    return image.startswith("surgstream") or dockerfile.endswith("deploy/Dockerfile")


@dataclass
class Service:
    name: str
    sub: str
    metrics_port: int | None
    env: dict[str, str]


def check_compose(docs: dict) -> dict[str, Service]:
    R.section("docker-compose.yml")
    compose = docs.get(COMPOSE)
    services: dict[str, Service] = {}
    if compose is None:
        return services
    raw_services = compose.get("services") or {}
    svcs = {name: interpolate(svc or {}) for name, svc in raw_services.items()}

    # images pinned
    for name, svc in svcs.items():
        image = str(svc.get("image", ""))
        if "build" in svc or not image:
            continue
        tag = image.rsplit("/", 1)[-1]
        if ":" not in tag or tag.endswith(":latest"):
            R.error(f"service {name}: image {image!r} is not pinned to a version")

    # depends_on
    for name, svc in svcs.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            target = svcs.get(dep)
            if target is None:
                R.error(f"service {name}: depends_on unknown service {dep}")
                continue
            cond = (spec or {}).get("condition", "service_started")
            if cond == "service_healthy" and not target.get("healthcheck"):
                R.error(f"service {name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            if cond == "service_completed_successfully" and str(target.get("restart", "no")) not in ("no", "on-failure"):
                R.error(f"service {name}: waits for {dep} to complete, but {dep} restarts ({target.get('restart')})")

    # bind mounts exist
    for name, svc in svcs.items():
        for vol in svc.get("volumes") or []:
            src = vol.split(":")[0] if isinstance(vol, str) else str((vol or {}).get("source", ""))
            if src.startswith((".", "/")) and not (ROOT / src).exists():
                R.error(f"service {name}: bind-mount source {src} does not exist")

    lake_bucket = None
    for name, svc in svcs.items():
        if not is_surgstream(svc):
            continue
        cmd = as_list(svc.get("command"))
        if svc.get("entrypoint"):
            R.warn(f"service {name}: entrypoint overridden; its command is not checked")
            continue
        # global options may come before the subcommand
        gl = []
        while cmd and cmd[0].startswith("--"):
            gl.append(cmd.pop(0))
        if not cmd:
            R.error(f"service {name}: no surgstream subcommand in `command`")
            continue
        # The options themselves are parsed by the binary's clap definitions (src/deploy_checks.rs).
        sub, args = cmd[0], gl + cmd[1:]
        env = env_dict(svc)
        lake = env.get("SURGSTREAM_LAKE") or ""
        if lake.startswith("s3://"):
            lake_bucket = lake[5:].split("/")[0]
            for var in ("AWS_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                if var not in env and "AWS_ENDPOINT_URL" not in env:
                    R.warn(f"service {name}: s3 lake without {var}")
        port = None
        addr = env.get("SURGSTREAM_METRICS_ADDR")
        if "--metrics-addr" in args:
            addr = args[args.index("--metrics-addr") + 1]
        if addr:
            m = re.fullmatch(r"(\[[^\]]+\]|[^:]+):(\d+)", addr)
            if not m:
                R.error(f"service {name}: metrics address {addr!r} is not host:port")
            else:
                port = int(m.group(2))
                if m.group(1) in ("127.0.0.1", "localhost", "[::1]"):
                    R.error(f"service {name}: metrics on {addr} are unreachable from other containers (use 0.0.0.0)")
        services[name] = Service(name, sub, port, env)
        # hosts named in URLs are services
        for var in ("KAFKA_BROKERS", "DATABASE_URL", "AWS_ENDPOINT"):
            val = env.get(var)
            if not val:
                continue
            hosts = re.findall(r"(?:^|[@/,])([A-Za-z][\w.-]*):(\d+)", val)
            for host, hport in hosts:
                if host not in svcs:
                    R.error(f"service {name}: {var} names host {host}, which is no service here")
                elif host == "kafka":
                    listeners = env_dict(svcs[host]).get("KAFKA_ADVERTISED_LISTENERS", "")
                    if f"//{host}:{hport}" not in listeners:
                        R.error(f"service {name}: {var} uses {host}:{hport}, not an advertised listener of {host} ({listeners})")
        db = env.get("DATABASE_URL")
        if db:
            m = re.match(r"postgres(?:ql)?://([^:@/]+)(?::[^@]*)?@([^:/]+)(?::(\d+))?/(\w+)", db)
            pg = svcs.get(m.group(2)) if m else None
            if m and pg:
                pe = env_dict(pg)
                if pe.get("POSTGRES_USER", "postgres") != m.group(1) or pe.get("POSTGRES_DB", pe.get("POSTGRES_USER")) != m.group(4):
                    R.error(f"service {name}: DATABASE_URL user/database differ from service {m.group(2)}'s POSTGRES_USER/POSTGRES_DB")
                pw = re.match(r"postgres(?:ql)?://[^:@/]+:([^@]*)@", db)
                if pw and pe.get("POSTGRES_PASSWORD") not in (None, pw.group(1)):
                    R.error(f"service {name}: DATABASE_URL password differs from POSTGRES_PASSWORD")
        # healthcheck probes the metrics listener
        hc = " ".join(as_list((svc.get("healthcheck") or {}).get("test")))
        if hc:
            hm = re.search(r"/dev/tcp/[^/]+/(\d+)|localhost:(\d+)|127\.0\.0\.1:(\d+)", hc)
            hport = next((int(g) for g in (hm.groups() if hm else ()) if g), None)
            if hport is not None and hport != port:
                R.error(f"service {name}: healthcheck probes port {hport}, metrics are on {port}")
    # the bucket of an s3 lake is created by a one-shot
    if lake_bucket:
        made = any(re.search(rf"\bmc\s+mb\b[^\n]*\b\w+/{re.escape(lake_bucket)}\b", " ".join(as_list(s.get("entrypoint")) + as_list(s.get("command"))))
                   for s in svcs.values())
        if made:
            R.ok(f"bucket {lake_bucket} of the lake is created by an `mc mb` one-shot")
        else:
            R.error(f"no service creates the lake's bucket {lake_bucket} (mc mb)")
    for name in ("ingest", "sim"):
        if name not in services:
            R.error(f"no `{name}` service running surgstream")
    if services:
        R.ok(f"surgstream services checked: {', '.join(f'{s.name} ({s.sub})' for s in services.values())}")
    return services


# --------------------------------------------------------------------------------------------
# Prometheus, Grafana


def mount_map(svc: dict) -> dict[str, str]:
    """container path -> host path (relative to the repo) of bind mounts."""
    out = {}
    for vol in svc.get("volumes") or []:
        if isinstance(vol, str):
            parts = vol.split(":")
            if len(parts) >= 2 and parts[0].startswith((".", "/")):
                out[parts[1]] = os.path.normpath(parts[0])
    return out


def check_prometheus(docs: dict, services: dict[str, Service]) -> None:
    R.section("Prometheus")
    prom = docs.get(PROM_CONFIG)
    alerts = docs.get(ALERTS)
    compose = docs.get(COMPOSE) or {}
    svcs = {k: interpolate(v or {}) for k, v in (compose.get("services") or {}).items()}
    if prom:
        scraped = set()
        for job in prom.get("scrape_configs") or []:
            targets = []
            for sc in job.get("static_configs") or []:
                targets += [str(t) for t in sc.get("targets") or []]
            for dns in job.get("dns_sd_configs") or []:
                targets += [f"{n}:{dns.get('port')}" for n in dns.get("names") or []]
            for t in targets:
                host, _, port = t.rpartition(":")
                if host in ("localhost", "127.0.0.1") and job.get("job_name") == "prometheus":
                    continue
                if host not in svcs:
                    R.error(f"prometheus.yml job {job.get('job_name')}: target {t}: no compose service {host}")
                    continue
                svc = services.get(host)
                if svc is None:
                    continue
                scraped.add(host)
                if svc.metrics_port is None:
                    R.error(f"prometheus.yml job {job.get('job_name')}: scrapes {t}, but service {host} sets no SURGSTREAM_METRICS_ADDR")
                elif str(svc.metrics_port) != port:
                    R.error(f"prometheus.yml job {job.get('job_name')}: scrapes port {port}, service {host} serves metrics on {svc.metrics_port}")
                else:
                    R.ok(f"prometheus.yml job {job.get('job_name')} scrapes {host} on its metrics port {port}")
        for name, svc in services.items():
            if svc.metrics_port and name not in scraped:
                R.error(f"service {name} serves metrics on {svc.metrics_port} but no scrape job targets it")
        # rule files mounted where the config says
        psvc = svcs.get("prometheus")
        if psvc:
            mounts = mount_map(psvc)
            cfg_path = next((a.split("=", 1)[1] for a in as_list(psvc.get("command")) if a.startswith("--config.file=")),
                            "/etc/prometheus/prometheus.yml")
            if os.path.normpath(mounts.get(cfg_path, "")) != os.path.normpath(rel(PROM_CONFIG)):
                R.error(f"service prometheus: {rel(PROM_CONFIG)} is not mounted at --config.file {cfg_path}")
            for rf in prom.get("rule_files") or []:
                cpath = rf if rf.startswith("/") else os.path.join(os.path.dirname(cfg_path), rf)
                hpath = (PROM_CONFIG.parent / rf) if not rf.startswith("/") else None
                if hpath is None or not hpath.exists():
                    R.error(f"prometheus.yml rule_files {rf}: not a file next to prometheus.yml")
                if hpath is not None and os.path.normpath(mounts.get(cpath, "")) != os.path.normpath(rel(hpath)):
                    R.error(f"service prometheus: rule file {cpath} is not a mount of {rel(hpath)}")
                else:
                    R.ok(f"rule file {rf} is mounted at {cpath}")
        else:
            R.error("docker-compose.yml has no prometheus service")
    if alerts:
        n = 0
        for group in alerts.get("groups") or []:
            for rule in group.get("rules") or []:
                n += 1
                name = rule.get("alert") or rule.get("record")
                where = f"alerts.yml {name}"
                if "alert" in rule:
                    if "for" not in rule:
                        R.error(f"{where}: no `for:`")
                    if not (rule.get("labels") or {}).get("severity"):
                        R.error(f"{where}: no severity label")
                    ann = rule.get("annotations") or {}
                    for a in ("summary", "description"):
                        if not ann.get(a):
                            R.error(f"{where}: no {a} annotation")
        R.ok(f"alerts.yml: {n} rules checked (for, severity, summary, description)")


def check_grafana(docs: dict) -> None:
    R.section("Grafana")
    compose = docs.get(COMPOSE) or {}
    svcs = {k: interpolate(v or {}) for k, v in (compose.get("services") or {}).items()}
    gsvc = svcs.get("grafana")
    mounts = mount_map(gsvc) if gsvc else {}
    if not gsvc:
        R.error("docker-compose.yml has no grafana service")
    genv = env_dict(gsvc or {})
    prov_path = genv.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
    if gsvc and os.path.normpath(mounts.get(prov_path, "")) != os.path.normpath(rel(PROVISIONING_DIR)):
        R.error(f"service grafana: {rel(PROVISIONING_DIR)} is not mounted at {prov_path}")
    ds_uids = set()
    for p, doc in docs.items():
        if not str(p).startswith(str(PROVISIONING_DIR)):
            continue
        for ds in doc.get("datasources") or []:
            ds_uids.add(ds.get("uid"))
            url = str(ds.get("url", ""))
            m = re.match(r"https?://([^:/]+)(?::(\d+))?", url)
            if not m or m.group(1) not in svcs:
                R.error(f"{rel(p)}: datasource url {url} does not name a compose service")
            elif m.group(1) == "prometheus" and (m.group(2) or "80") != "9090":
                R.error(f"{rel(p)}: datasource url {url}: Prometheus listens on 9090")
            else:
                R.ok(f"{rel(p)}: datasource {ds.get('name')} (uid {ds.get('uid')}) → {url}")
        for prov in doc.get("providers") or []:
            path = (prov.get("options") or {}).get("path")
            if os.path.normpath(mounts.get(path, "")) != os.path.normpath(rel(DASHBOARD_DIR)):
                R.error(f"{rel(p)}: provider path {path} is not where compose mounts {rel(DASHBOARD_DIR)}")
            else:
                R.ok(f"{rel(p)}: provider {prov.get('name')} reads {path} (mounted from {rel(DASHBOARD_DIR)})")
    home = genv.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        d = os.path.dirname(home)
        if d not in mounts or not (ROOT / mounts[d] / os.path.basename(home)).exists():
            R.error(f"service grafana: home dashboard {home} is not a mounted file")
    for p, dash in docs.items():
        if p.parent != DASHBOARD_DIR:
            continue
        where = rel(p)
        if int(dash.get("schemaVersion", 0)) < 36:
            R.error(f"{where}: schemaVersion {dash.get('schemaVersion')} < 36")
        tvars = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
        dsv = tvars.get("DS_PROMETHEUS")
        if not dsv or dsv.get("type") != "datasource" or dsv.get("query") != "prometheus":
            R.error(f"{where}: no datasource variable DS_PROMETHEUS (type datasource, query prometheus)")
        ok_uids = {"${DS_PROMETHEUS}", "$DS_PROMETHEUS"} | ds_uids
        ids = set()
        panels = list(dash.get("panels") or [])
        for pnl in list(panels):
            panels += pnl.get("panels") or []
        exprs = []
        for v in tvars.values():
            q = v.get("query")
            if v.get("type") == "query":
                if (v.get("datasource") or {}).get("uid") not in ok_uids:
                    R.error(f"{where}: variable {v.get('name')} uses datasource {(v.get('datasource') or {}).get('uid')!r}")
                exprs.append((f"{where} variable {v.get('name')}", q.get("query") if isinstance(q, dict) else str(q)))
        for pnl in panels:
            pid = pnl.get("id")
            if pid in ids:
                R.error(f"{where}: duplicate panel id {pid}")
            ids.add(pid)
            gp = pnl.get("gridPos") or {}
            if gp.get("x", 0) + gp.get("w", 0) > 24:
                R.error(f"{where}: panel {pnl.get('title')!r} is wider than the grid")
            if pnl.get("type") == "row":
                continue
            ds = pnl.get("datasource") or {}
            if ds.get("uid") not in ok_uids:
                R.error(f"{where}: panel {pnl.get('title')!r} datasource uid {ds.get('uid')!r} is neither ${{DS_PROMETHEUS}} nor a provisioned uid")
            refs = set()
            for t in pnl.get("targets") or []:
                if (t.get("datasource") or {}).get("uid", "${DS_PROMETHEUS}") not in ok_uids:
                    R.error(f"{where}: panel {pnl.get('title')!r} target {t.get('refId')} has another datasource")
                if t.get("refId") in refs:
                    R.error(f"{where}: panel {pnl.get('title')!r} repeats refId {t.get('refId')}")
                refs.add(t.get("refId"))
                if not t.get("expr"):
                    R.error(f"{where}: panel {pnl.get('title')!r} target {t.get('refId')} has no expr")
                    continue
                exprs.append((f"{where} panel {pnl.get('title')!r}", t["expr"]))
        R.ok(f"{where}: {len([p for p in panels if p.get('type') != 'row'])} panels, {len(exprs)} queries "
             "(their metric names: src/deploy_checks.rs)")


# --------------------------------------------------------------------------------------------
# Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    lines, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#") and cur:
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        lines.append((word.upper(), rest.strip()))
        cur = ""
    return lines


def check_dockerfile(services: dict[str, Service]) -> None:
    R.section("Dockerfile")
    if not DOCKERFILE.exists():
        return
    ins = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    args = {}
    for k, v in ins:
        if k == "ARG" and "=" in v:
            a, _, d = v.partition("=")
            args.setdefault(a.strip(), d.strip())

    def expand(s: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), s)

    stages = []
    for k, v in ins:
        if k == "FROM":
            stages.append({"from": expand(v), "ins": []})
        elif stages:
            stages[-1]["ins"].append((k, expand(v)))
    if len(stages) < 2:
        R.error("deploy/Dockerfile is not multi-stage")
        return
    build, final = stages[0], stages[-1]
    toolchain = re.search(r'channel\s*=\s*"([^"]+)"', (ROOT / "rust-toolchain.toml").read_text(encoding="utf-8"))
    m = re.match(r"rust:(\d+\.\d+(?:\.\d+)?)", build["from"])
    if not m:
        R.error(f"deploy/Dockerfile: the build stage is not a rust image ({build['from']})")
    elif toolchain and not (toolchain.group(1) + ".").startswith(m.group(1) + "."):
        R.error(f"deploy/Dockerfile: rust {m.group(1)} but rust-toolchain.toml pins {toolchain.group(1)}")
    else:
        R.ok(f"build stage {build['from'].split()[0]} matches rust-toolchain.toml ({toolchain.group(1) if toolchain else '?'})")
    copied = set()
    for k, v in build["ins"]:
        if k == "COPY":
            parts = [p for p in v.split() if not p.startswith("--")]
            for src in parts[:-1]:
                copied.add(src.rstrip("/"))
    if "." not in copied:
        # cargo reads the manifests and the sources; benches are targets of the root manifest,
        # migrations are embedded by sqlx::migrate!, proto/ is compiled by a build script.
        need = ["Cargo.toml", "Cargo.lock", "src", "crates"]
        need += [d for d in ("benches", "migrations", "proto") if (ROOT / d).is_dir()]
        for n in need:
            if n not in copied:
                R.error(f"deploy/Dockerfile: the build stage does not COPY {n}, which the build reads")
        R.ok(f"build stage copies {', '.join(sorted(copied))}")
    apt = " ".join(v for k, v in build["ins"] if k == "RUN")
    lock = (ROOT / "Cargo.lock").read_text(encoding="utf-8")
    if 'name = "prost-build"' in lock and 'name = "protox"' not in lock and "protobuf-compiler" not in apt:
        R.error("deploy/Dockerfile: prost-build without protox needs protoc (protobuf-compiler)")
    with open(ROOT / "Cargo.toml", "rb") as f:
        manifest = tomllib.load(f)
    rk = manifest.get("workspace", {}).get("dependencies", {}).get("rdkafka", {})
    feats = set(rk.get("features", [])) if isinstance(rk, dict) else set()
    needs = {"cmake-build": "cmake", "ssl": "libssl-dev", "gssapi": "libsasl2-dev", "zstd-pkg-config": "libzstd-dev"}
    for f, pkg in needs.items():
        if f in feats and pkg not in apt:
            R.error(f"deploy/Dockerfile: rdkafka feature {f} needs {pkg} in the build stage")
    if "make" not in apt.split():
        R.error("deploy/Dockerfile: librdkafka is built with make: install make in the build stage")
    R.ok(f"build packages fit rdkafka features {sorted(feats) or '(default)'} and protox")
    users = [v for k, v in final["ins"] if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        R.error("deploy/Dockerfile: the final stage does not switch to a non-root USER")
    for k, v in final["ins"]:
        if k in ("COPY", "ADD") and "--from=" not in v:
            R.warn(f"deploy/Dockerfile: the final stage copies from the context: {v}")
    ep = [v for k, v in final["ins"] if k == "ENTRYPOINT"]
    if not ep or "surgstream" not in ep[-1]:
        R.error("deploy/Dockerfile: ENTRYPOINT is not the surgstream binary")
    exposed = {int(p.split("/")[0]) for k, v in final["ins"] if k == "EXPOSE" for p in v.split()}
    ports = {s.metrics_port for s in services.values() if s.metrics_port}
    if not exposed:
        R.error("deploy/Dockerfile: no EXPOSE for the metrics port")
    for p in sorted(ports - exposed) if exposed else ():
        R.error(f"deploy/Dockerfile: EXPOSEs {sorted(exposed)}, compose serves metrics on {p}")
    if exposed and ports and exposed >= ports:
        R.ok(f"EXPOSE {sorted(exposed)} matches the compose metrics port(s) {sorted(ports)}")
    R.skip("`docker build` (no Docker engine on this machine)")


# --------------------------------------------------------------------------------------------
# External tools


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def check_compose_client() -> None:
    R.section("docker compose config")
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for base in candidates:
        if run(base + ["version"]).returncode != 0:
            continue
        ver = (run(base + ["version", "--short"]).stdout.strip() or "?").splitlines()[0]
        r = run(base + ["-f", str(COMPOSE), "config", "-q"], cwd=ROOT)
        if r.returncode == 0:
            R.ok(f"`{' '.join(base)} -f docker-compose.yml config -q` accepts the file (Compose {ver})")
        else:
            R.error(f"`{' '.join(base)} config -q` refuses docker-compose.yml:\n{(r.stdout + r.stderr).strip()}")
        return
    R.skip("`docker compose config`: no Compose client here (`docker compose` is not installed; "
           "no docker-compose); the file was checked by the rules above only")


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-compose", action="store_true", help="skip `docker compose config`")
    a = ap.parse_args()
    if yaml_module() is None:
        print("ERROR    PyYAML is needed: apt-get install -y python3-yaml (or pip install pyyaml)")
        return 1
    docs = check_syntax()
    services = check_compose(docs)
    check_prometheus(docs, services)
    check_grafana(docs)
    check_dockerfile(services)
    if not a.no_compose:
        check_compose_client()
    print()
    if R.errors:
        print(f"FAILED: {len(R.errors)} error(s)")
        return 1
    print("deploy files (wiring): OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
