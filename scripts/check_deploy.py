#!/usr/bin/env python3
"""Checks the deployment artifacts against each other and against the code.

    python3 scripts/check_deploy.py [--strict] [--no-promtool] [--no-compose]

Files: docker-compose.yml, deploy/Dockerfile, deploy/surgstream.env.example,
deploy/prometheus/{prometheus,alerts}.yml, deploy/grafana/dashboards/*.json,
deploy/grafana/provisioning/**.yml.

What it checks:
  * YAML / JSON syntax (YAML duplicate keys too: Compose refuses them, PyYAML does not).
  * Options: every `--flag` and environment variable docker-compose.yml passes to a `surgstream`
    subcommand is one that subcommand reads (clap `#[arg(long, env = "...")]` parsed from src/),
    with a valid value for value enums; sim profile rules (no --hz on a seed run, ...); AWS_*
    names are object_store S3 settings; the same for deploy/surgstream.env.example.
  * Metrics: every metric name in alerts.yml and in the dashboard's queries is one the code
    records (string constants and `counter!`/`gauge!`/`histogram!` calls in src/ and crates/),
    histogram series only as `_bucket`/`_sum`/`_count`, `_bucket` only if buckets are configured,
    `process_*` only if the code exports process metrics; the labels of `by (...)` exist.
  * Wiring: Prometheus targets are compose services on their metrics port (0.0.0.0 in the
    container), the Dockerfile EXPOSEs that port, rule files and Grafana directories are mounted
    where the configs say, the datasource points at the prometheus service, hosts in URLs are
    services, depends_on conditions are satisfiable, bind-mount sources exist, images are pinned.
  * Dockerfile: multi-stage, Rust version = rust-toolchain.toml, the build copies what cargo
    reads, build packages for protoc/rdkafka features, non-root final stage, ENTRYPOINT.
  * promtool (when installed): `check config`, `check rules`, and `test rules` cases for the
    alert expressions (generated in a temporary directory).
  * `docker compose config -q` (or `docker-compose`) when a client is installed.

Problems are ERROR lines (exit 1). What the deploy files use that the code does not provide yet is
listed in PENDING below and reported as PENDING lines: exit 0, or 1 with --strict. A PENDING item
that the code now provides is reported as such, so the list can shrink.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ENV_EXAMPLE = ROOT / "deploy" / "surgstream.env.example"
PROM_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING_DIR = ROOT / "deploy" / "grafana" / "provisioning"

# What the deploy files use and the code does not provide yet (issue 7): name -> why / labels.
PENDING_METRICS = {
    "surgstream_consumer_lag_messages": {
        "labels": {"topic", "partition"},
        "why": "consumer lag per partition (gauge, labels topic and partition)",
    },
}
# (subcommand, environment variable or --flag) -> why.
PENDING_OPTIONS = {
    ("sim", "SURGSTREAM_METRICS_ADDR"): "`surgstream sim` serves no /metrics yet (no --metrics-addr): "
    "Prometheus' surgstream-sim job and the SimDown alert wait for it",
}

# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Environment variables read outside clap.
OTHER_ENV = {"RUST_LOG", "RUST_BACKTRACE", "RUST_LIB_BACKTRACE"}
# object_store's AmazonS3ConfigKey names, used when its source is not in the cargo registry.
S3_KEYS_FALLBACK = {
    "aws_access_key_id", "aws_secret_access_key", "aws_default_region", "aws_region",
    "aws_bucket", "aws_bucket_name", "aws_endpoint_url", "aws_endpoint", "aws_endpoint_url_s3",
    "aws_session_token", "aws_token", "aws_virtual_hosted_style_request", "aws_s3_express",
    "aws_imdsv1_fallback", "aws_metadata_endpoint", "aws_unsigned_payload",
    "aws_checksum_algorithm", "aws_container_credentials_relative_uri",
    "aws_container_credentials_full_uri", "aws_container_authorization_token_file",
    "aws_web_identity_token_file", "aws_role_arn", "aws_role_session_name",
    "aws_endpoint_url_sts", "aws_skip_signature", "aws_copy_if_not_exists",
    "aws_conditional_put", "aws_disable_tagging", "aws_disable_bulk_delete",
    "aws_request_payer", "aws_allow_http", "aws_server_side_encryption", "aws_sse_kms_key_id",
    "aws_sse_bucket_key_enabled", "aws_sse_customer_key_base64",
}


# --------------------------------------------------------------------------------------------
# Reporting


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.pending: dict[str, tuple[str, list[str]]] = {}
        self.warnings: list[str] = []

    def ok(self, msg: str) -> None:
        print(f"ok       {msg}")

    def error(self, msg: str) -> None:
        self.errors.append(msg)
        print(f"ERROR    {msg}")

    def pend(self, key: str, msg: str, where: str) -> None:
        """Something the deploy files use that the code does not provide yet (one per key)."""
        if key not in self.pending:
            self.pending[key] = (msg, [])
        if where not in self.pending[key][1]:
            self.pending[key][1].append(where)
            print(f"PENDING  {where}: {key}")

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)
        print(f"warning  {msg}")

    def skip(self, msg: str) -> None:
        print(f"SKIPPED  {msg}")

    def info(self, msg: str) -> None:
        print(f"info     {msg}")

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
    yamls = [COMPOSE, PROM_CONFIG, ALERTS] + sorted(PROVISIONING_DIR.glob("**/*.yml")) + sorted(
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
# Rust source scanning (enough of Rust for struct bodies, attributes and macro calls)


def rust_files(*dirs: str) -> list[Path]:
    out = []
    for d in dirs:
        base = ROOT / d
        for p in sorted(base.rglob("*.rs")):
            if "target" in p.relative_to(ROOT).parts:
                continue
            out.append(p)
    return out


def strip_comments(src: str) -> str:
    """Removes // and /* */ comments (doc comments included), keeping strings and line count."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        elif src.startswith("r#\"", i) or src.startswith('r"', i):
            hashes = 1 if src[i + 1] == "#" else 0
            end = '"' + "#" * hashes
            j = src.find(end, i + 2 + hashes)
            j = n if j < 0 else j + len(end)
            out.append(src[i:j])
            i = j
        elif c == "'" and i + 2 < n and (src[i + 2] == "'" or src[i + 1] == "\\"):
            j = src.find("'", i + 2 if src[i + 1] == "\\" else i + 1)
            j = n if j < 0 else j + 1
            out.append(src[i:j])
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            seg = src[i : (n if j < 0 else j + 2)]
            out.append("\n" * seg.count("\n"))
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def balanced(src: str, start: int, open_c: str, close_c: str) -> int:
    """Index just past the bracket closing the one at `start` (strings skipped)."""
    depth, i, n = 0, start, len(src)
    while i < n:
        c = src[i]
        if c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
        elif c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def split_top(s: str, sep: str = ",") -> list[str]:
    parts, depth, cur, i = [], 0, [], 0
    while i < len(s):
        c = s[i]
        if c == '"':
            j = i + 1
            while j < len(s) and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            cur.append(s[i : j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts]


def kebab(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", name)
    return s.replace("_", "-").lower()


# --------------------------------------------------------------------------------------------
# clap: subcommands, their long options and environment variables


@dataclass
class Opt:
    long: str | None
    env: str | None
    takes_value: bool
    values: list[str] | None  # value enum variants
    field: str
    global_: bool = False


@dataclass
class Item:
    kind: str  # struct | enum
    name: str
    derives: str
    body: str
    attrs: str


def parse_items(files: list[Path]) -> dict[str, Item]:
    items: dict[str, Item] = {}
    pat = re.compile(r"((?:#\[[^\n]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?(struct|enum)\s+(\w+)(?:<[^>{]*>)?\s*\{")
    for p in files:
        src = strip_comments(p.read_text(encoding="utf-8"))
        for m in pat.finditer(src):
            end = balanced(src, m.end() - 1, "{", "}")
            body = src[m.end() : end - 1]
            attrs = m.group(1)
            items.setdefault(m.group(3), Item(m.group(2), m.group(3), attrs, body, attrs))
    return items


def parse_fields(body: str) -> list[tuple[str, str, list[str]]]:
    """(name, type, attributes) of a struct body."""
    fields = []
    attrs: list[str] = []
    i, n = 0, len(body)
    while i < n:
        if body[i].isspace() or body[i] == ",":
            i += 1
            continue
        if body.startswith("#[", i):
            end = balanced(body, i + 1, "[", "]")
            attrs.append(body[i + 2 : end - 1])
            i = end
            continue
        # a field: up to the next top-level comma
        depth, j = 0, i
        while j < n:
            c = body[j]
            if c in "(<[{":
                depth += 1
            elif c in ")>]}":
                depth -= 1
            elif c == "," and depth == 0:
                break
            j += 1
        decl = body[i:j].strip()
        m = re.match(r"(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:\s*(.+)$", decl, re.S)
        if m:
            fields.append((m.group(1), " ".join(m.group(2).split()), attrs))
        attrs = []
        i = j + 1
    return fields


def parse_variants(body: str) -> list[tuple[str, str | None, list[str]]]:
    out = []
    for name, typ, attrs in _enum_entries(body):
        out.append((name, typ, attrs))
    return out


def _enum_entries(body: str):
    attrs: list[str] = []
    i, n = 0, len(body)
    while i < n:
        if body[i].isspace() or body[i] == ",":
            i += 1
            continue
        if body.startswith("#[", i):
            end = balanced(body, i + 1, "[", "]")
            attrs.append(body[i + 2 : end - 1])
            i = end
            continue
        m = re.compile(r"(\w+)\s*(\(|\{|,|$)").match(body, i)
        if not m:
            break
        name = m.group(1)
        typ = None
        j = m.end()
        if m.group(2) == "(":
            end = balanced(body, m.end() - 1, "(", ")")
            typ = body[m.end() : end - 1].strip()
            j = end
        elif m.group(2) == "{":
            j = balanced(body, m.end() - 1, "{", "}")
        yield name, typ, attrs
        attrs = []
        i = j


def last_segment(typ: str) -> str:
    t = typ.strip()
    inner = re.match(r"(?:Option|Vec)\s*<(.+)>$", t)
    if inner:
        t = inner.group(1)
    return t.split("::")[-1].strip()


@dataclass
class Cli:
    subcommands: dict[str, dict[str, Opt]] = field(default_factory=dict)
    global_opts: dict[str, Opt] = field(default_factory=dict)
    all_env: dict[str, set[str]] = field(default_factory=dict)  # env -> subcommands reading it
    misplaced: dict[str, list[str]] = field(default_factory=dict)  # sim profile -> refused flags

    def opts(self, sub: str) -> dict[str, Opt]:
        merged = dict(self.global_opts)
        merged.update(self.subcommands.get(sub, {}))
        return merged

    def envs(self, sub: str) -> dict[str, Opt]:
        return {o.env: o for o in self.opts(sub).values() if o.env}


def parse_cli() -> Cli | None:
    files = rust_files("src")
    items = parse_items(files)
    enums = {
        name: [kebab(v[0]) for v in parse_variants(it.body)]
        for name, it in items.items()
        if it.kind == "enum" and "ValueEnum" in it.derives
    }

    def arg_opts(struct: str, seen: tuple[str, ...] = ()) -> list[Opt]:
        it = items.get(struct)
        if it is None or it.kind != "struct" or struct in seen:
            return []
        out: list[Opt] = []
        for fname, ftype, attrs in parse_fields(it.body):
            text = " ".join(attrs)
            if re.search(r"\b(command|arg|clap)\s*\(\s*flatten\s*\)", text):
                out += arg_opts(last_segment(ftype), seen + (struct,))
                continue
            if re.search(r"\bcommand\s*\(\s*subcommand\s*\)", text):
                continue
            arg = next((a for a in attrs if re.match(r"\s*(arg|clap)\s*\(", a)), None)
            if arg is None:
                continue
            long = None
            m = re.search(r'\blong\s*=\s*"([^"]+)"', arg)
            if m:
                long = m.group(1)
            elif re.search(r"\blong\b(?!\s*=)", arg):
                long = kebab(fname)
            env = None
            m = re.search(r'\benv\s*=\s*"([^"]+)"', arg)
            if m:
                env = m.group(1)
            elif re.search(r"(?<![\w])env\b(?!\s*=)", arg):
                env = fname.upper()
            base = last_segment(ftype)
            takes_value = not (ftype.strip() == "bool" or re.search(r"ArgAction::(SetTrue|SetFalse|Count)", arg))
            values = enums.get(base) if ("value_enum" in arg or base in enums) else None
            out.append(
                Opt(long, env, takes_value, values, fname, bool(re.search(r"\bglobal\s*=\s*true", arg)))
            )
        return out

    parser = next((it for it in items.values() if it.kind == "struct" and re.search(r"\bParser\b", it.derives)), None)
    if parser is None:
        R.error("src/: no `#[derive(Parser)]` struct found: cannot read the command line")
        return None
    cli = Cli()
    sub_enum = None
    for fname, ftype, attrs in parse_fields(parser.body):
        if re.search(r"\bcommand\s*\(\s*subcommand\s*\)", " ".join(attrs)):
            sub_enum = last_segment(ftype)
    for o in arg_opts(parser.name):
        if o.long:
            cli.global_opts["--" + o.long] = o
    if sub_enum is None or sub_enum not in items:
        R.error("src/: the Parser struct has no subcommand enum")
        return None
    for vname, vtype, vattrs in parse_variants(items[sub_enum].body):
        name = kebab(vname)
        m = re.search(r'\bcommand\s*\([^)]*\bname\s*=\s*"([^"]+)"', " ".join(vattrs))
        if m:
            name = m.group(1)
        opts = arg_opts(last_segment(vtype)) if vtype else []
        cli.subcommands[name] = {"--" + o.long: o for o in opts if o.long}
        for o in opts:
            if o.env:
                cli.all_env.setdefault(o.env, set()).add(name)
    for o in cli.global_opts.values():
        if o.env:
            cli.all_env.setdefault(o.env, set()).update(cli.subcommands)
    # sim_config(): options refused for a profile.
    cli_src = strip_comments((ROOT / "src" / "cli.rs").read_text(encoding="utf-8"))
    for prof in ("Seed", "Live"):
        m = re.search(rf"ProfileArg::{prof}\s*=>\s*vec!\[(.*?)\]", cli_src, re.S)
        if m:
            cli.misplaced[prof.lower()] = re.findall(r'"(--[\w-]+)"', m.group(1))
    return cli


# --------------------------------------------------------------------------------------------
# Metrics the code records


@dataclass
class CodeMetrics:
    names: set[str] = field(default_factory=set)
    histograms: set[str] = field(default_factory=set)
    recorded: set[str] = field(default_factory=set)
    labels: dict[str, set[str] | None] = field(default_factory=dict)  # None: not knowable
    buckets: bool = False
    process: bool = False
    where: dict[str, str] = field(default_factory=dict)


def code_metrics() -> CodeMetrics:
    cm = CodeMetrics()
    files = rust_files("src", "crates")
    consts: dict[str, str] = {}
    texts = {}
    for p in files:
        src = strip_comments(p.read_text(encoding="utf-8"))
        texts[p] = src
        for m in re.finditer(r'const\s+(\w+)\s*:\s*&(?:\'static\s+)?str\s*=\s*"((?:surgstream|process)_[a-z0-9_]+)"', src):
            consts[m.group(1)] = m.group(2)
            cm.names.add(m.group(2))
            cm.where.setdefault(m.group(2), rel(p))
    macro = re.compile(r"\b(counter|gauge|histogram|describe_counter|describe_gauge|describe_histogram)!\s*\(")
    for p, src in texts.items():
        for m in macro.finditer(src):
            end = balanced(src, m.end() - 1, "(", ")")
            args = split_top(src[m.end() : end - 1])
            if not args:
                continue
            first = args[0]
            lit = re.fullmatch(r'"([^"]+)"', first)
            name = lit.group(1) if lit else consts.get(first.split("::")[-1].strip())
            if name is None:
                continue
            cm.names.add(name)
            cm.where.setdefault(name, rel(p))
            kind = m.group(1)
            if kind.endswith("histogram"):
                cm.histograms.add(name)
            if not kind.startswith("describe_"):
                cm.recorded.add(name)
                labels = set()
                knowable = True
                for a in args[1:]:
                    lm = re.match(r'"([^"]+)"\s*=>', a)
                    if lm:
                        labels.add(lm.group(1))
                    else:
                        knowable = False
                prev = cm.labels.get(name, set())
                cm.labels[name] = None if (not knowable or prev is None) else prev | labels
        if re.search(r"\bset_buckets(_for_metric)?\s*\(", src):
            cm.buckets = True
        if "process_resident_memory_bytes" in src:
            cm.process = True
    lock = (ROOT / "Cargo.lock").read_text(encoding="utf-8") if (ROOT / "Cargo.lock").exists() else ""
    if re.search(r'name = "metrics-process"', lock):
        cm.process = True
    return cm


# --------------------------------------------------------------------------------------------
# PromQL


PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2", "start", "end",
    # aggregation operators, which may be followed by `by (...)` rather than `(`
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}


def promql_strip(expr: str) -> str:
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1 ", s)
    return s


def promql_metrics(expr: str) -> set[str]:
    s = promql_strip(expr)
    out = set()
    for m in re.finditer(r"(?<![\w$.:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()", s):
        tok = m.group(1)
        if tok.lower() in PROMQL_KEYWORDS:
            continue
        out.add(tok)
    return out


def promql_groupings(expr: str):
    """(labels, metrics of the aggregated expression) for each `agg by (labels) (expr)`."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    for m in re.finditer(r"\b(?:sum|max|min|avg|count|group|stddev|stdvar|topk|bottomk|quantile)\s+by\s*\(([^)]*)\)\s*\(", s):
        end = balanced(s, m.end() - 1, "(", ")")
        labels = {x.strip() for x in m.group(1).split(",") if x.strip()}
        yield labels, promql_metrics(s[m.end() : end - 1])


def check_metric_use(where: str, expr: str, cm: CodeMetrics) -> None:
    for name in sorted(promql_metrics(expr)):
        check_metric_name(where, name, cm)
    for labels, metrics in promql_groupings(expr):
        if len(metrics) != 1:
            continue
        (metric,) = metrics
        base = re.sub(r"_(bucket|sum|count)$", "", metric) if metric not in cm.names else metric
        known: set[str] | None
        if metric in PENDING_METRICS and metric not in cm.names:
            known = set(PENDING_METRICS[metric]["labels"])
        elif base in cm.labels:
            known = cm.labels[base]
        else:
            continue
        if known is None:
            continue
        allowed = known | TARGET_LABELS | ({"le"} if metric.endswith("_bucket") else set())
        for label in sorted(labels - allowed):
            R.error(f"{where}: `by ({label})` on {metric}: the code records no label {label!r} "
                    f"(labels: {', '.join(sorted(known)) or 'none'})")


_reported_metric: set[tuple[str, str]] = set()


def check_metric_name(where: str, name: str, cm: CodeMetrics) -> None:
    key = (where.split(":")[0], name)
    if key in _reported_metric:
        return
    _reported_metric.add(key)
    if name == "up" or name.startswith("scrape_"):
        return
    if name.startswith("process_"):
        if not cm.process:
            R.pend(name, "the code exports no process metrics yet "
                   "(metrics-process crate, or its own process_resident_memory_bytes gauge)", where)
        return
    if name in cm.histograms:
        R.error(f"{where}: {name} is a histogram: query {name}_bucket, _sum or _count")
        return
    if name in cm.names:
        if name not in cm.recorded:
            R.warn(f"{where}: {name} is defined in {cm.where.get(name)} but never recorded "
                   "(no counter!/gauge!/histogram! call)")
        if name in PENDING_METRICS:
            R.info(f"{name} now exists in the code: drop it from PENDING_METRICS in {rel(Path(__file__))}")
        return
    m = re.fullmatch(r"(.+)_(bucket|sum|count)", name)
    if m and m.group(1) in cm.histograms:
        if m.group(2) == "bucket" and not cm.buckets:
            R.pend(name, "histograms are exported as Prometheus summaries (quantile series, no "
                   "_bucket) until the exporter is given buckets (PrometheusBuilder::set_buckets "
                   "or set_buckets_for_metric in serve_metrics)", where)
        return
    if name in PENDING_METRICS:
        R.pend(name, f"{PENDING_METRICS[name]['why']}: not recorded by the code yet", where)
        return
    R.error(f"{where}: metric {name} does not exist in the code (src/, crates/)")


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
        import shlex

        return shlex.split(cmd)
    return [str(c) for c in cmd]


def is_surgstream(svc: dict) -> bool:
    image = str(svc.get("image", ""))
    build = svc.get("build")
    dockerfile = ""
    if isinstance(build, dict):
        dockerfile = str(build.get("dockerfile", ""))
    return image.startswith("surgstream") or dockerfile.endswith("deploy/Dockerfile")


def s3_keys() -> set[str]:
    lock = (ROOT / "Cargo.lock").read_text(encoding="utf-8")
    m = re.search(r'name = "object_store"\nversion = "([^"]+)"', lock)
    if m:
        home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
        for src in glob.glob(str(home / "registry" / "src" / "*" / f"object_store-{m.group(1)}" / "src" / "aws" / "builder.rs")):
            keys = set(re.findall(r'"(aws_[a-z0-9_]+)"', Path(src).read_text(encoding="utf-8")))
            if keys:
                return keys
    return S3_KEYS_FALLBACK


def code_contains(pattern: str, dirs=("src", "crates")) -> bool:
    rx = re.compile(pattern)
    return any(rx.search(p.read_text(encoding="utf-8")) for p in rust_files(*dirs))


@dataclass
class Service:
    name: str
    sub: str
    metrics_port: int | None
    env: dict[str, str]


def check_options(where: str, sub: str, args: list[str], env: dict[str, str], cli: Cli,
                  s3: set[str], lake_is_s3: bool | None) -> None:
    """One surgstream invocation: its flags and environment variables against clap."""
    opts = cli.opts(sub)
    envs = cli.envs(sub)
    given: dict[str, str] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--"):
            R.error(f"{where}: unexpected argument {tok!r} to `surgstream {sub}`")
            i += 1
            continue
        flag, eq, val = tok.partition("=")
        opt = opts.get(flag)
        if opt is None:
            why = PENDING_OPTIONS.get((sub, flag))
            if why:
                R.pend(f"surgstream {sub} {flag}", why, where)
            else:
                R.error(f"{where}: `surgstream {sub}` has no option {flag}")
            i += 1
            continue
        if opt.takes_value and not eq:
            if i + 1 >= len(args):
                R.error(f"{where}: {flag} needs a value")
                break
            val = args[i + 1]
            i += 1
        given[flag] = val
        if opt.values and val not in opt.values:
            R.error(f"{where}: {flag} {val!r} is not one of {', '.join(opt.values)}")
        i += 1
    for var, val in env.items():
        if var in envs:
            opt = envs[var]
            given.setdefault("--" + (opt.long or opt.field), val)
            if opt.values and val not in opt.values:
                R.error(f"{where}: {var}={val!r} is not one of {', '.join(opt.values)}")
            continue
        if var in OTHER_ENV:
            continue
        if var.startswith("AWS_"):
            if var.lower() not in s3:
                R.error(f"{where}: {var} is not an object_store S3 setting (AmazonS3ConfigKey)")
            elif lake_is_s3 is False:
                R.warn(f"{where}: {var} is set but the lake is not on s3://")
            continue
        why = PENDING_OPTIONS.get((sub, var))
        if why:
            if var in envs:
                R.info(f"{var} is now read by `surgstream {sub}`: drop it from PENDING_OPTIONS")
            R.pend(f"surgstream {sub} {var}", why, where)
            continue
        readers = sorted(cli.all_env.get(var, ()))
        if readers:
            R.error(f"{where}: {var} is not read by `surgstream {sub}` (read by: {', '.join(readers)})")
        else:
            R.error(f"{where}: {var} is not read by any surgstream subcommand (no clap `env = \"{var}\"`)")
    if sub in ("sim", "demo") and cli.misplaced:
        profile = given.get("--profile") or ("seed" if sub == "sim" else "live")
        for bad in cli.misplaced.get(profile, []):
            if bad in given:
                R.error(f"{where}: {bad} applies to the other profile: `surgstream {sub}` refuses it "
                        f"on a {profile} run (sim_config)")


def check_compose(docs: dict, cli: Cli | None) -> dict[str, Service]:
    R.section("docker-compose.yml")
    compose = docs.get(COMPOSE)
    services: dict[str, Service] = {}
    if compose is None:
        return services
    raw_services = compose.get("services") or {}
    svcs = {name: interpolate(svc or {}) for name, svc in raw_services.items()}
    s3 = s3_keys()

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

    if cli is None:
        R.skip("surgstream options (the command line could not be parsed)")
        return services

    lake_supports_s3 = code_contains(r'"s3://"', ("crates",))
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
        sub, args = cmd[0], gl + cmd[1:]
        if sub not in cli.subcommands:
            R.error(f"service {name}: `surgstream {sub}` is not a subcommand ({', '.join(sorted(cli.subcommands))})")
            continue
        env = env_dict(svc)
        lake = env.get("SURGSTREAM_LAKE")
        lake_is_s3 = None if lake is None else lake.startswith("s3://")
        if lake_is_s3:
            if not lake_supports_s3:
                R.pend("s3:// lake", f"SURGSTREAM_LAKE={lake}: the lake does not open s3:// yet", f"service {name}")
            lake_bucket = lake[5:].split("/")[0]
            for var in ("AWS_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                if var not in env and "AWS_ENDPOINT_URL" not in env:
                    R.warn(f"service {name}: s3 lake without {var}")
        check_options(f"service {name}", sub, args, env, cli, s3, lake_is_s3)
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
            for path in re.findall(r"GET (/\w+)", hc):
                if not code_contains(re.escape(f'"{path}"')):
                    R.pend(path, "the code does not serve it yet (metrics-exporter-prometheus answers "
                           "every path but /health with the metrics, so the probe only shows that the "
                           "listener is up)", f"service {name} healthcheck")
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


def check_prometheus(docs: dict, services: dict[str, Service], cm: CodeMetrics) -> None:
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
                if os.path.normpath(mounts.get(cpath, "")) != os.path.normpath(rel(ALERTS)):
                    R.error(f"service prometheus: rule file {cpath} is not a mount of {rel(ALERTS)}")
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
                check_metric_use(where, str(rule.get("expr", "")), cm)
        R.ok(f"alerts.yml: {n} rules checked (for, severity, summary, description, metric names)")


def check_grafana(docs: dict, cm: CodeMetrics) -> None:
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
    required = {
        "surgstream_frames_consumed_total": "throughput (frames consumed)",
        "surgstream_frames_written_total": "throughput (frames written)",
        "surgstream_events_applied_total": "events/s",
        "surgstream_consumer_lag_messages": "consumer lag",
        "surgstream_end_to_end_latency_seconds_bucket": "end-to-end latency quantiles",
        "surgstream_flush_duration_seconds_bucket": "flush duration",
        "surgstream_flushes_total": "flushes by cause",
        "surgstream_lake_file_rows_bucket": "rows per file",
        "surgstream_lake_bytes_written_total": "bytes per file",
        "surgstream_dead_letters_total": "dead letters by reason",
        "surgstream_postgres_transaction_seconds_bucket": "PostgreSQL transaction latency",
        "surgstream_buffered_bytes": "buffered bytes",
        "surgstream_open_buffers": "open buffers",
        "process_resident_memory_bytes": "process RSS",
    }
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
        used: set[str] = set()
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
        for w, e in exprs:
            # label_values(selector, label): only the selector is a query
            e2 = re.sub(r"label_values\((.*),\s*\w+\s*\)\s*$", r"(\1)", e.strip(), flags=re.S)
            used |= promql_metrics(re.sub(r"\$\w+", "x", e2))
            check_metric_use(w, e2, cm)
        for metric, what in required.items():
            if metric not in used:
                R.error(f"{where}: no panel shows {what} ({metric})")
        quantiles = {float(q) for q in re.findall(
            r"histogram_quantile\(\s*(0\.\d+)\s*,(?:(?!histogram_quantile).)*?surgstream_end_to_end_latency_seconds_bucket",
            "\n".join(e for _, e in exprs), re.S)}
        for qv in (0.5, 0.99):
            if qv not in quantiles:
                R.error(f"{where}: no p{round(qv * 100)} of surgstream_end_to_end_latency_seconds (histogram_quantile)")
        unused = sorted(n for n in cm.recorded if n not in used
                        and not any(u.startswith(n + "_") for u in used))
        if unused:
            R.info(f"{where}: metrics the code records that no panel shows: {', '.join(unused)}")
        R.ok(f"{where}: {len([p for p in panels if p.get('type') != 'row'])} panels, {len(exprs)} queries checked")


# --------------------------------------------------------------------------------------------
# Dockerfile, env example


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
        need = ["Cargo.toml", "Cargo.lock", "src", "crates"]
        manifest = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
        if "[[bench]]" in manifest:
            need.append("benches")
        if code_contains(r"migrate!\s*\(", ("crates", "src")):
            need.append("migrations")
        if any("proto" in p.read_text(encoding="utf-8") for p in ROOT.glob("crates/*/build.rs")):
            need.append("proto")
        for n in need:
            if n not in copied:
                R.error(f"deploy/Dockerfile: the build stage does not COPY {n}, which the build reads")
        R.ok(f"build stage copies {', '.join(sorted(copied))}")
    apt = " ".join(v for k, v in build["ins"] if k == "RUN")
    build_rs = " ".join(p.read_text(encoding="utf-8") for p in ROOT.glob("crates/*/build.rs"))
    if "prost_build" in build_rs and "protox" not in build_rs and "protobuf-compiler" not in apt:
        R.error("deploy/Dockerfile: prost-build without protox needs protoc (protobuf-compiler)")
    manifest = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    rk = re.search(r"^rdkafka\s*=\s*\{([^}]*)\}", manifest, re.M)
    feats = set(re.findall(r'"([\w-]+)"', re.search(r"features\s*=\s*\[([^\]]*)\]", rk.group(1)).group(1))) if rk and "features" in rk.group(1) else set()
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


def check_env_example(cli: Cli | None) -> None:
    R.section("deploy/surgstream.env.example")
    if cli is None or not ENV_EXAMPLE.exists():
        return
    s3 = s3_keys()
    n = 0
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if not m:
            continue
        var, val = m.group(1), m.group(2).strip()
        n += 1
        if var in OTHER_ENV:
            continue
        if var.startswith("AWS_"):
            if var.lower() not in s3:
                R.error(f"env example: {var} is not an object_store S3 setting")
            continue
        readers = cli.all_env.get(var)
        if not readers:
            R.error(f"env example: {var} is not read by any surgstream subcommand")
            continue
        for sub in readers:
            opt = cli.envs(sub).get(var)
            if opt and opt.values and val not in opt.values:
                R.error(f"env example: {var}={val} is not one of {', '.join(opt.values)}")
                break
    missing = sorted(v for v, subs in cli.all_env.items() if "ingest" in subs
                     and not re.search(rf"^\s*#?\s*{v}=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M)
                     and v != "SURGSTREAM_UNTIL_IDLE")
    if missing:
        R.info(f"env example: ingest options not shown: {', '.join(missing)}")
    R.ok(f"env example: {n} variables checked")


# --------------------------------------------------------------------------------------------
# External tools


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


PROMTOOL_TESTS = """
rule_files: [rules.yml]
evaluation_interval: 5s
tests:
  - name: dead letters fire on a new counter series and stop once it is flat
    interval: 5s
    input_series:
      - series: 'surgstream_dead_letters_total{job="surgstream-ingest",instance="i:9464",topic="surgical.telemetry.dlq.v1",reason="undecodable"}'
        values: '_x24 1x200'
    alert_rule_test:
      - {eval_time: 1m, alertname: SurgstreamDeadLetters, exp_alerts: []}
      - eval_time: 4m
        alertname: SurgstreamDeadLetters
        exp_alerts:
          - exp_labels: {severity: warning, topic: surgical.telemetry.dlq.v1, reason: undecodable}
      - {eval_time: 12m, alertname: SurgstreamDeadLetters, exp_alerts: []}
  - name: no commits - stalled while consuming (a), healthy (b), stream stopped (c), never committed (d)
    interval: 5s
    input_series:
      - {series: 'surgstream_frames_consumed_total{job="surgstream-ingest",instance="a"}', values: '0+100x100'}
      - {series: 'surgstream_open_buffers{job="surgstream-ingest",instance="a"}', values: '1x100'}
      - {series: 'surgstream_flushes_total{job="surgstream-ingest",instance="a",cause="age"}', values: '0+1x24 24x76'}
      - {series: 'surgstream_frames_consumed_total{job="surgstream-ingest",instance="b"}', values: '0+100x100'}
      - {series: 'surgstream_open_buffers{job="surgstream-ingest",instance="b"}', values: '1x100'}
      - {series: 'surgstream_flushes_total{job="surgstream-ingest",instance="b",cause="age"}', values: '0+1x100'}
      - {series: 'surgstream_frames_consumed_total{job="surgstream-ingest",instance="c"}', values: '0+100x24 2400x76'}
      - {series: 'surgstream_open_buffers{job="surgstream-ingest",instance="c"}', values: '1x25 0x75'}
      - {series: 'surgstream_flushes_total{job="surgstream-ingest",instance="c",cause="age"}', values: '0+1x25 25x75'}
      - {series: 'surgstream_frames_consumed_total{job="surgstream-ingest",instance="d"}', values: '0+100x24 2400x76'}
      - {series: 'surgstream_open_buffers{job="surgstream-ingest",instance="d"}', values: '1x100'}
    alert_rule_test:
      - eval_time: 1m
        alertname: SurgstreamNoCommits
        exp_alerts:
          - exp_labels: {severity: critical, job: surgstream-ingest, instance: d}
      - eval_time: 4m
        alertname: SurgstreamNoCommits
        exp_alerts:
          - exp_labels: {severity: critical, job: surgstream-ingest, instance: a}
          - exp_labels: {severity: critical, job: surgstream-ingest, instance: d}
  - name: lag growing for 5 minutes, not lag that is high but flat
    interval: 15s
    input_series:
      - {series: 'surgstream_consumer_lag_messages{job="surgstream-ingest",instance="a",topic="surgical.telemetry.v1",partition="0"}', values: '0+40x80'}
      - {series: 'surgstream_consumer_lag_messages{job="surgstream-ingest",instance="a",topic="surgical.telemetry.v1",partition="1"}', values: '5000x80'}
    alert_rule_test:
      - {eval_time: 5m, alertname: SurgstreamConsumerLagGrowing, exp_alerts: []}
      - eval_time: 15m
        alertname: SurgstreamConsumerLagGrowing
        exp_alerts:
          - exp_labels: {severity: warning, topic: surgical.telemetry.v1, partition: "0"}
  - name: PostgreSQL retries
    interval: 15s
    input_series:
      - {series: 'surgstream_postgres_retries_total{job="surgstream-ingest",instance="a"}', values: '0x4 0+1x40'}
    alert_rule_test:
      - {eval_time: 1m, alertname: SurgstreamPostgresRetrying, exp_alerts: []}
      - eval_time: 6m
        alertname: SurgstreamPostgresRetrying
        exp_alerts:
          - exp_labels: {severity: warning, job: surgstream-ingest, instance: a}
  - name: ingest down, and ingest absent
    interval: 15s
    input_series:
      - {series: 'up{job="surgstream-ingest",instance="a"}', values: '1x4 0x40'}
    alert_rule_test:
      - {eval_time: 1m, alertname: SurgstreamIngestDown, exp_alerts: []}
      - eval_time: 5m
        alertname: SurgstreamIngestDown
        exp_alerts:
          - exp_labels: {severity: critical, job: surgstream-ingest, instance: a}
      - eval_time: 5m
        alertname: SurgstreamSimDown
        exp_alerts:
          - exp_labels: {severity: warning, job: surgstream-sim}
"""


def check_promtool(docs: dict) -> None:
    R.section("promtool")
    promtool = shutil.which("promtool")
    if not promtool:
        R.skip("promtool not installed (apt-get install -y --no-install-recommends prometheus, "
               "or scripts/check-deploy.sh --install)")
        return
    version = run([promtool, "--version"]).stdout.splitlines()[:1]
    for cmd in (["check", "config", str(PROM_CONFIG)], ["check", "rules", str(ALERTS)]):
        r = run([promtool, *cmd])
        if r.returncode == 0:
            R.ok(f"promtool {' '.join(cmd[:2])} {rel(Path(cmd[2]))} ({version[0] if version else ''})")
        else:
            R.error(f"promtool {' '.join(cmd[:2])} {rel(Path(cmd[2]))} failed:\n{(r.stdout + r.stderr).strip()}")
    alerts = docs.get(ALERTS)
    if not alerts:
        return
    # The alert expressions as they are, without annotations (promtool compares annotations
    # exactly; these tests are about when each alert fires).
    yaml = yaml_module()
    stripped = {"groups": [{"name": g["name"], "rules": [{k: v for k, v in r.items() if k != "annotations"}
                                                        for r in g.get("rules") or []]}
                           for g in alerts.get("groups") or []]}
    with tempfile.TemporaryDirectory(prefix="check-deploy-") as tmp:
        Path(tmp, "rules.yml").write_text(yaml.safe_dump(stripped, sort_keys=False), encoding="utf-8")
        Path(tmp, "tests.yml").write_text(PROMTOOL_TESTS, encoding="utf-8")
        r = run([promtool, "test", "rules", "tests.yml"], cwd=tmp)
        if r.returncode == 0:
            names = re.findall(r"- name: (.+)", PROMTOOL_TESTS)
            R.ok(f"promtool test rules: {len(names)} alert cases pass ({'; '.join(names)})")
        else:
            R.error(f"promtool test rules failed:\n{(r.stdout + r.stderr).strip()}")


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
    ap.add_argument("--strict", action="store_true", help="PENDING items fail too")
    ap.add_argument("--no-promtool", action="store_true")
    ap.add_argument("--no-compose", action="store_true", help="skip `docker compose config`")
    a = ap.parse_args()
    if yaml_module() is None:
        print("ERROR    PyYAML is needed: apt-get install -y python3-yaml (or pip install pyyaml)")
        return 1
    docs = check_syntax()
    cli = parse_cli()
    if cli:
        R.section("command line (src/)")
        R.ok(f"subcommands read from src/: {', '.join(sorted(cli.subcommands))}; "
             f"{len(cli.all_env)} environment variables")
    cm = code_metrics()
    R.ok(f"metrics recorded by the code: {len(cm.recorded)} ({len(cm.histograms)} histograms; "
         f"buckets configured: {'yes' if cm.buckets else 'no'}; process metrics: {'yes' if cm.process else 'no'})")
    services = check_compose(docs, cli)
    check_prometheus(docs, services, cm)
    check_grafana(docs, cm)
    check_dockerfile(services)
    check_env_example(cli)
    if not a.no_promtool:
        check_promtool(docs)
    if not a.no_compose:
        check_compose_client()
    print()
    if R.pending:
        print(f"{len(R.pending)} PENDING (used by the deploy files, not provided by the code yet):")
        for key, (msg, wheres) in R.pending.items():
            print(f"  - {key}: {msg}\n      used by: {'; '.join(wheres)}")
    if R.errors:
        print(f"FAILED: {len(R.errors)} error(s)")
        return 1
    if R.pending and a.strict:
        print("FAILED (--strict): pending items")
        return 1
    print("deploy files: OK" + (" (with pending items)" if R.pending else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
