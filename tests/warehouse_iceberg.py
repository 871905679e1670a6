"""Reads the warehouse's Iceberg tables (warehouse.fact_procedure, …) with engines users run, and
PostgreSQL's warehouse schema, for tests/warehouse_iceberg.rs.

usage:
  python3 tests/warehouse_iceberg.py postgres  DATABASE_URL
  python3 tests/warehouse_iceberg.py pyiceberg DATABASE_URL [--table T --snapshot ID]
  python3 tests/warehouse_iceberg.py spark     DATABASE_URL JARS_DIR WAREHOUSE QUERY.sql…
  <duckdb venv>/bin/python tests/warehouse_iceberg.py duckdb TABLE=METADATA_LOCATION…

Each prints JSON. postgres, pyiceberg and duckdb: {"tables": {table: {"rows": n, "digest":
sha256 of its rows}}} — every row, every column, by column name, values normalised alike
(decimals at their scale, timestamps as microseconds since the epoch, dates ISO, doubles by
repr), so equal digests are equal tables; pyiceberg adds each table's snapshots. spark runs each
query file with the catalog as its current one (so `warehouse.fact_robot_day` is the Iceberg
table) and prints {"spark", "answers": {file: {"columns", "rows": [[value as text, "" for
NULL]]}}}.
"""
import datetime
import decimal
import hashlib
import json
import sys

TABLES = [
    "dim_date",
    "dim_facility",
    "dim_robot",
    "dim_surgeon",
    "fact_procedure",
    "fact_maintenance",
    "fact_robot_day",
]
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def norm(v):
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return str((v - EPOCH) // datetime.timedelta(microseconds=1))
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def digest(columns, rows):
    canonical = sorted(
        json.dumps(sorted((c, norm(v)) for c, v in zip(columns, r))) for r in rows
    )
    return {
        "rows": len(canonical),
        "digest": hashlib.sha256("\n".join(canonical).encode()).hexdigest(),
    }


def postgres(url):
    import psycopg2

    con = psycopg2.connect(url)
    out = {}
    with con.cursor() as cur:
        for t in TABLES:
            cur.execute(f"SELECT * FROM warehouse.{t}")
            out[t] = digest([d[0] for d in cur.description], cur.fetchall())
    return {"tables": out}


def catalog(url):
    from pyiceberg.catalog.sql import SqlCatalog

    uri = url.replace("postgres://", "postgresql+psycopg2://", 1)
    return SqlCatalog("surgstream", uri=uri, init_catalog_tables="false")


def pyiceberg(url, args):
    import pyiceberg as pi

    only, snapshot = None, None
    if args:
        only, snapshot = args[1], int(args[3])
    cat = catalog(url)
    out = {}
    for t in TABLES if only is None else [only]:
        table = cat.load_table(f"warehouse.{t}")
        scan = table.scan(snapshot_id=snapshot) if snapshot is not None else table.scan()
        data = scan.to_arrow()
        out[t] = digest(data.column_names, [tuple(r.values()) for r in data.to_pylist()])
        snapshots = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number)
        out[t]["snapshots"] = [s.snapshot_id for s in snapshots]
        out[t]["current"] = table.metadata.current_snapshot_id
        out[t]["operations"] = [s.summary.operation.value for s in snapshots]
    return {"pyiceberg": pi.__version__, "tables": out}


def spark(url, jars, warehouse, queries):
    import glob
    import os

    from pyspark.sql import SparkSession

    rest = url.split("://", 1)[1]
    user, hostdb = rest.split("@", 1)
    c = "spark.sql.catalog.surgstream"
    session = (
        SparkSession.builder.master("local[1]")
        .appName("surgstream-warehouse-iceberg")
        .config("spark.jars", ",".join(sorted(glob.glob(os.path.join(jars, "*.jar")))))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config(c, "org.apache.iceberg.spark.SparkCatalog")
        .config(f"{c}.type", "jdbc")
        .config(f"{c}.uri", f"jdbc:postgresql://{hostdb}")
        .config(f"{c}.jdbc.user", user)
        .config(f"{c}.jdbc.schema-version", "V1")
        .config(f"{c}.warehouse", warehouse)
        .config("spark.sql.defaultCatalog", "surgstream")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")

    def text(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    answers = {}
    for path in queries:
        sql = open(path).read().strip().rstrip(";")
        df = session.sql(sql)
        answers[os.path.basename(path)] = {
            "columns": df.columns,
            "rows": [[text(v) for v in r] for r in df.collect()],
        }
    rows = {t: session.table(f"warehouse.{t}").count() for t in TABLES}
    out = {"spark": session.version, "answers": answers, "rows": rows}
    session.stop()
    return out


def duckdb_tables(pairs):
    import glob
    import os

    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    def extension(module, name):
        return glob.glob(
            os.path.join(os.path.dirname(module.__file__), "extensions", "*", f"{name}.duckdb_extension")
        )[0]

    con = duckdb.connect()
    con.execute(f"LOAD '{extension(duckdb_extension_avro, 'avro')}'")
    con.execute(f"LOAD '{extension(duckdb_extension_iceberg, 'iceberg')}'")
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for pair in pairs:
        t, location = pair.split("=", 1)
        scan = f"iceberg_scan('{location.removeprefix('file://')}')"
        described = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
        # Timestamps as microseconds (this venv has no pytz for DuckDB's aware datetimes).
        select = ", ".join(
            f'epoch_us("{name}") AS "{name}"' if ty.startswith("TIMESTAMP") else f'"{name}"'
            for name, ty, *_ in described
        )
        cur = con.execute(f"SELECT {select} FROM {scan}")
        columns = [d[0] for d in cur.description]
        out[t] = digest(columns, cur.fetchall())
        out[t]["types"] = {name: ty for name, ty, *_ in described}
    return {"duckdb": duckdb.__version__, "tables": out}


def canonical_rows(columns, rows):
    return {json.dumps(sorted((c, norm(v)) for c, v in zip(columns, r))) for r in rows}


def diff(url, table):
    """The rows of warehouse.TABLE that PostgreSQL and pyiceberg do not share (3 of each)."""
    import psycopg2

    con = psycopg2.connect(url)
    with con.cursor() as cur:
        cur.execute(f"SELECT * FROM warehouse.{table}")
        pg = canonical_rows([d[0] for d in cur.description], cur.fetchall())
    data = catalog(url).load_table(f"warehouse.{table}").scan().to_arrow()
    ice = canonical_rows(data.column_names, [tuple(r.values()) for r in data.to_pylist()])
    return {"only_postgres": sorted(pg - ice)[:3], "only_iceberg": sorted(ice - pg)[:3]}


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "postgres":
        out = postgres(args[0])
    elif mode == "pyiceberg":
        out = pyiceberg(args[0], args[1:])
    elif mode == "spark":
        out = spark(args[0], args[1], args[2], args[3:])
    elif mode == "diff":
        out = diff(args[0], args[1])
    elif mode == "duckdb":
        out = duckdb_tables(args)
    else:
        raise SystemExit(f"unknown mode {mode}")
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
