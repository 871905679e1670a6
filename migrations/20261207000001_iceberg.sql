-- The Iceberg tables over the lake (crates/surgstream-iceberg, docs/lake.md).

-- Which transaction committed each manifest row. The publisher copies rows into the Iceberg
-- table in the order of these ids and records in each snapshot the id below which everything is
-- published (its watermark): every transaction below the xmin of a snapshot of PostgreSQL has
-- ended, and every later one gets a larger id, so no row can appear below a watermark once it
-- is set (a sequence would not do: ids drawn in one order commit in another). Rows committed
-- before this migration get the migration's own id.
ALTER TABLE lake_files ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX lake_files_xid_idx ON lake_files (consumer_group, topic, xid);

-- Apache Iceberg's SQL catalog, in the layout of the Java JdbcCatalog (schema version V1,
-- which iceberg-rust's SqlCatalog and pyiceberg's SqlCatalog share): Spark, Trino, Flink and
-- pyiceberg pointed at this database read the same rows. Created here rather than by the
-- catalog client at connect time, so that a role without DDL rights can publish.
CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name               VARCHAR(255) NOT NULL,
    table_namespace            VARCHAR(255) NOT NULL,
    table_name                 VARCHAR(255) NOT NULL,
    metadata_location          VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type               VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);

CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name   VARCHAR(255) NOT NULL,
    namespace      VARCHAR(255) NOT NULL,
    property_key   VARCHAR(255),
    property_value VARCHAR(1000),
    PRIMARY KEY (catalog_name, namespace, property_key)
);
