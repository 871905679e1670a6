-- The Iceberg tables registered in the AWS Glue Data Catalog (`surgstream iceberg register
-- --glue`), so that every later commit, by whichever publisher, moves Glue's entry too
-- (crates/surgstream-iceberg/src/glue.rs). The row is also the lock that orders those moves: a
-- publisher takes it (FOR UPDATE), reads the table's current metadata file and pushes that, so
-- two publishers can never leave Glue on an older file than the catalog's.
CREATE TABLE IF NOT EXISTS iceberg_glue_tables (
    catalog_name     VARCHAR(255) NOT NULL,
    table_namespace  VARCHAR(255) NOT NULL,
    table_name       VARCHAR(255) NOT NULL,
    -- The Glue catalog (an AWS account id); NULL: the caller's own.
    glue_catalog_id  TEXT,
    glue_database    TEXT NOT NULL,
    glue_table       TEXT NOT NULL,
    region           TEXT NOT NULL,
    -- The metadata file Glue was last set to, and when.
    pushed_location  VARCHAR(1000),
    pushed_at        TIMESTAMPTZ,
    PRIMARY KEY (catalog_name, table_namespace, table_name),
    UNIQUE (glue_catalog_id, glue_database, glue_table, region)
);
