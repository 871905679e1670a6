//! The Glue Data Catalog's entries for Iceberg tables, as Athena, Redshift Spectrum, EMR and
//! Glue's own jobs find them: a table of type `EXTERNAL_TABLE` whose parameters say
//! `table_type=ICEBERG` and `metadata_location=<the current metadata file>` (and
//! `previous_metadata_location`), the convention of Iceberg's own `GlueCatalog`.
//!
//! This module moves one entry; which tables are registered, and serialising the updates of
//! concurrent publishers, is the caller's (surgstream-iceberg keeps the registrations in
//! PostgreSQL and updates under the catalog row's lock). Updates are also version-checked
//! against Glue (`VersionId`), so that a change made by anyone else is never overwritten unseen.

use std::collections::HashMap;

use aws_sdk_glue::error::{DisplayErrorContext, SdkError};
use aws_sdk_glue::operation::create_database::CreateDatabaseError;
use aws_sdk_glue::operation::create_table::CreateTableError;
use aws_sdk_glue::operation::get_table::GetTableError;
use aws_sdk_glue::operation::update_table::UpdateTableError;
use aws_sdk_glue::types::{DatabaseInput, StorageDescriptor, TableInput};

use crate::{Aws, AwsError};

/// One Glue entry: database, table and, optionally, the catalog (account) it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueTable {
    /// The Glue catalog id (the AWS account); `None` is the caller's own.
    pub catalog_id: Option<String>,
    /// The Glue database.
    pub database: String,
    /// The table's name in it.
    pub table: String,
}

impl std::fmt::Display for GlueTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.catalog_id {
            Some(c) => write!(f, "glue:{c}:{}.{}", self.database, self.table),
            None => write!(f, "glue:{}.{}", self.database, self.table),
        }
    }
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated {
    /// Created (registration of a table Glue did not have).
    Created,
    /// Moved from the metadata file it named before.
    Moved {
        /// The file Glue named before.
        from: Option<String>,
    },
    /// Glue already named this metadata file.
    Unchanged,
}

/// A Glue client for `aws`'s region and endpoint (`AWS_ENDPOINT_URL_GLUE` or `AWS_ENDPOINT_URL`
/// point it elsewhere, e.g. at moto in the tests).
pub fn client(aws: &Aws) -> aws_sdk_glue::Client {
    aws_sdk_glue::Client::new(aws.sdk_config())
}

fn call<E: std::error::Error + 'static, R: std::fmt::Debug>(
    what: String,
) -> impl FnOnce(SdkError<E, R>) -> AwsError {
    move |e| AwsError::Call {
        what,
        reason: DisplayErrorContext(&e).to_string(),
    }
}

/// Creates the Glue database unless it exists.
pub async fn ensure_database(
    glue: &aws_sdk_glue::Client,
    catalog_id: Option<String>,
    database: &str,
) -> Result<(), AwsError> {
    let input = DatabaseInput::builder()
        .name(database)
        .description("surgstream's Iceberg tables")
        .build()
        .map_err(|e| AwsError::Call {
            what: format!("describe the Glue database {database}"),
            reason: e.to_string(),
        })?;
    let glue = glue.clone();
    let db = database.to_owned();
    let out = crate::run(async move {
        glue.create_database()
            .set_catalog_id(catalog_id)
            .database_input(input)
            .send()
            .await
    })
    .await;
    match out {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), CreateDatabaseError::AlreadyExistsException(_)) =>
        {
            Ok(())
        }
        Err(e) => Err(call(format!("create the Glue database {db}"))(e)),
    }
}

/// Points the Glue entry `t` at `metadata_location` (the table's data at `location`): creates it
/// when Glue has no such table, updates it otherwise, with Glue's `VersionId` check (a
/// concurrent change is read again and retried). An existing Glue table that is not an Iceberg
/// table is never taken over.
pub async fn point_at(
    glue: &aws_sdk_glue::Client,
    t: &GlueTable,
    location: &str,
    metadata_location: &str,
) -> Result<Updated, AwsError> {
    for _attempt in 0..5 {
        let (glue2, t2) = (glue.clone(), t.clone());
        let current = crate::run(async move {
            glue2
                .get_table()
                .set_catalog_id(t2.catalog_id)
                .database_name(t2.database)
                .name(t2.table)
                .send()
                .await
        })
        .await;
        let current = match current {
            Ok(out) => out.table,
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), GetTableError::EntityNotFoundException(_)) =>
            {
                None
            }
            Err(e) => return Err(call(format!("read {t}"))(e)),
        };
        let Some(current) = current else {
            let input = table_input(t, location, metadata_location, None, None)?;
            let (glue2, t2) = (glue.clone(), t.clone());
            let created = crate::run(async move {
                glue2
                    .create_table()
                    .set_catalog_id(t2.catalog_id)
                    .database_name(t2.database)
                    .table_input(input)
                    .send()
                    .await
            })
            .await;
            match created {
                Ok(_) => return Ok(Updated::Created),
                // Created by someone else meanwhile: read it and update it.
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), CreateTableError::AlreadyExistsException(_)) =>
                {
                    continue;
                }
                Err(e) => return Err(call(format!("create {t}"))(e)),
            }
        };
        let params = current.parameters.clone().unwrap_or_default();
        let kind = params.get("table_type").map(|s| s.to_ascii_uppercase());
        if kind.as_deref() != Some("ICEBERG") {
            return Err(AwsError::Call {
                what: format!("register {t}"),
                reason: format!(
                    "Glue already has a table of that name that is not an Iceberg table \
                     (table_type {}): drop it, or register under another --glue-database",
                    kind.as_deref().unwrap_or("unset")
                ),
            });
        }
        let previous = params.get("metadata_location").cloned();
        if previous.as_deref() == Some(metadata_location) {
            return Ok(Updated::Unchanged);
        }
        let input = table_input(
            t,
            location,
            metadata_location,
            previous.clone(),
            Some(params),
        )?;
        let (glue2, t2) = (glue.clone(), t.clone());
        let version = current.version_id.clone();
        let updated = crate::run(async move {
            glue2
                .update_table()
                .set_catalog_id(t2.catalog_id)
                .database_name(t2.database)
                .table_input(input)
                .set_version_id(version)
                .send()
                .await
        })
        .await;
        match updated {
            Ok(_) => return Ok(Updated::Moved { from: previous }),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    UpdateTableError::ConcurrentModificationException(_)
                ) =>
            {
                tracing::info!(table = %t, "Glue table changed meanwhile; reading it again");
                continue;
            }
            Err(e) => return Err(call(format!("update {t}"))(e)),
        }
    }
    Err(AwsError::Call {
        what: format!("update {t}"),
        reason: "it kept changing under five attempts in a row".into(),
    })
}

fn table_input(
    t: &GlueTable,
    location: &str,
    metadata_location: &str,
    previous: Option<String>,
    parameters: Option<HashMap<String, String>>,
) -> Result<TableInput, AwsError> {
    let mut parameters = parameters.unwrap_or_default();
    parameters.insert("table_type".into(), "ICEBERG".into());
    parameters.insert("metadata_location".into(), metadata_location.into());
    match previous {
        Some(p) => parameters.insert("previous_metadata_location".into(), p),
        None => parameters.remove("previous_metadata_location"),
    };
    parameters.insert("surgstream.managed".into(), "true".into());
    TableInput::builder()
        .name(&t.table)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(parameters))
        .storage_descriptor(StorageDescriptor::builder().location(location).build())
        .build()
        .map_err(|e| AwsError::Call {
            what: format!("describe {t}"),
            reason: e.to_string(),
        })
}
