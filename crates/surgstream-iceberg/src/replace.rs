//! A compaction, followed into the table as a `replace` snapshot: the files it retired marked
//! deleted, the files it wrote added, and every other live file carried over as existing, in
//! one manifest per partition spec (the appends' manifests merged). The released crate (0.10.1) has no
//! rewrite action; this builds the snapshot on its public manifest, manifest-list and snapshot
//! APIs and commits it with the catalog's compare-and-set ([`PgCatalog::commit_on`]).
//!
//! [`PgCatalog::commit_on`]: crate::catalog::PgCatalog::commit_on

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, ManifestContentType, ManifestFile, ManifestList,
    ManifestListWriter, ManifestWriter, ManifestWriterBuilder, Operation, PartitionSpecRef,
    Snapshot, SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary, Transform,
};
use iceberg::table::Table;
use iceberg::{ErrorKind, TableUpdate};
use surgstream_store::compaction::Compaction;

use crate::{IcebergError, Tables, schema};

/// What a replace did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Replaced {
    /// Files marked deleted.
    pub deleted: usize,
    /// Files added.
    pub added: usize,
}

/// The manifests of `table`'s current snapshot (none before the first).
pub(crate) async fn manifests(table: &Table) -> Result<Vec<ManifestFile>, IcebergError> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let bytes = table
        .file_io()
        .new_input(snapshot.manifest_list())
        .map_err(IcebergError::iceberg("open the manifest list"))?
        .read()
        .await
        .map_err(IcebergError::iceberg(format!(
            "read the manifest list {}",
            snapshot.manifest_list()
        )))?;
    Ok(
        ManifestList::parse_with_version(&bytes, table.metadata().format_version())
            .map_err(IcebergError::iceberg("parse the manifest list"))?
            .consume_entries()
            .into_iter()
            .collect(),
    )
}

/// The table's `month(timestamp)` spec, added (a metadata-only commit) when it has none: the
/// partitioning of compacted history, beside the `hour(timestamp)` spec new files keep.
async fn month_spec(
    tables: &Tables,
    table: Table,
) -> Result<(Table, PartitionSpecRef), IcebergError> {
    let find = |t: &Table| {
        t.metadata()
            .partition_specs_iter()
            .find(|s| {
                s.fields().len() == 1
                    && s.fields()[0].transform == Transform::Month
                    && s.fields()[0].name == schema::MONTH_FIELD
            })
            .cloned()
    };
    if let Some(spec) = find(&table) {
        return Ok((table, spec));
    }
    let spec = schema::month_spec(table.metadata().current_schema())?;
    let table = tables
        .catalog()
        .commit_on(&table, vec![TableUpdate::AddSpec { spec }])
        .await
        .map_err(IcebergError::iceberg("add the month partition spec"))?;
    let spec = find(&table).ok_or_else(|| {
        IcebergError::Table("the month partition spec was added but is not in the table".into())
    })?;
    Ok((table, spec))
}

fn snapshot_id(table: &Table) -> i64 {
    loop {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((a ^ b) & (i64::MAX as u64)) as i64;
        if id != 0 && table.metadata().snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// Follows `compaction` into `table`: its replaced files that the table holds are marked
/// deleted, its added files added, in one snapshot carrying `properties` (the publisher's
/// watermark). A replaced file the table lacks must be one committed at or after
/// `published_below` (never published: its rows arrive only in the added files); one from
/// below is a table that does not match its watermark, and an error.
pub(crate) async fn replace(
    tables: &Tables,
    table: Table,
    compaction: &Compaction,
    published_below: i64,
    properties: HashMap<String, String>,
    file_of: impl Fn(
        &surgstream_store::compaction::CompactedFile,
        i32,
        &PartitionSpecRef,
    ) -> Result<DataFile, IcebergError>,
) -> Result<(Table, Replaced), IcebergError> {
    // Nothing added (a rewrite of the manifests alone): no month spec needed.
    let (table, spec) = if compaction.added.is_empty() {
        let spec = table.metadata().default_partition_spec().clone();
        (table, spec)
    } else {
        month_spec(tables, table).await?
    };
    let lake = tables.lake();
    let gone: HashMap<String, i64> = compaction
        .replaced
        .iter()
        .map(|f| (lake.location(&f.path), f.xid))
        .collect();
    let timestamp_id = schema::field_id(table.metadata().current_schema(), "timestamp")?;
    let added = compaction
        .added
        .iter()
        .map(|f| file_of(f, timestamp_id, &spec))
        .collect::<Result<Vec<_>, _>>()?;
    let change = Change {
        gone: gone.keys().cloned().collect(),
        added,
        spec,
        properties,
        what: format!("compaction {}", compaction.id),
        operation: None,
    };
    let id = compaction.id;
    rewrite(tables, table, change, |found| {
        for (location, xid) in &gone {
            if !found.contains(location) && *xid < published_below {
                return Err(IcebergError::Table(format!(
                    "compaction {id} replaced {location}, committed below the table's watermark \
                     {published_below}, but the table does not hold it"
                )));
            }
        }
        Ok(())
    })
    .await
}

/// One snapshot's change of a table's live files.
pub(crate) struct Change {
    /// Locations of live files to mark deleted (those the table does not hold are skipped:
    /// the `check` decides whether that is acceptable).
    pub gone: HashSet<String>,
    /// Files to add, all under `spec`.
    pub added: Vec<DataFile>,
    pub spec: PartitionSpecRef,
    /// Summary properties of the snapshot beside the counts.
    pub properties: HashMap<String, String>,
    /// What is committed, for messages ("compaction 7", "warehouse.fact_procedure").
    pub what: String,
    /// The snapshot's operation; `None`: `replace` when as many rows go as come, `append`
    /// when nothing goes, `overwrite` otherwise (a compaction's, a manifest merge's).
    pub operation: Option<Operation>,
}

/// Commits `change` to `table` as one snapshot that rewrites every data manifest into one per
/// partition spec: the gone files marked deleted, the added files added, every other live file
/// carried over as existing. `check` sees which gone files the table held before anything is
/// written. The operation is `replace` when as many rows go as come (a compaction, a manifest
/// merge), `append` when nothing goes, `overwrite` otherwise. The released crate (0.10.1) has
/// no action for this; the snapshot is built on its public manifest, manifest-list and
/// snapshot APIs and committed with the catalog's compare-and-set.
pub(crate) async fn rewrite(
    tables: &Tables,
    table: Table,
    change: Change,
    check: impl FnOnce(&HashSet<String>) -> Result<(), IcebergError>,
) -> Result<(Table, Replaced), IcebergError> {
    if table.metadata().format_version() != FormatVersion::V2 {
        return Err(IcebergError::Table(format!(
            "format version {} (surgstream writes version 2 manifests)",
            table.metadata().format_version()
        )));
    }
    let Change {
        gone,
        added,
        spec,
        properties,
        what,
        operation,
    } = change;
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let file_io = table.file_io();
    let id = snapshot_id(&table);
    let sequence = metadata.next_sequence_number();
    let commit = uuid::Uuid::new_v4();
    let mut counter = 0;
    let mut next_path = || {
        counter += 1;
        format!("{}/metadata/{commit}-m{counter}.avro", metadata.location())
    };
    let mut summary = SnapshotSummaryCollector::default();
    let mut found: HashSet<String> = HashSet::new();
    let (mut deleted_rows, mut deleted_bytes) = (0u64, 0u64);
    let mut list: Vec<ManifestFile> = Vec::new();
    // Every data manifest is rewritten into one per partition spec: each publish appends a
    // manifest, and each rewrite merges them all again, so the count stays at one or two per
    // spec plus the appends since.
    let mut writers: BTreeMap<i32, ManifestWriter> = BTreeMap::new();
    // Entries written per spec: a manifest left with none (every file of its spec replaced
    // earlier) is not written.
    let mut entries: HashMap<i32, usize> = HashMap::new();
    let mut new_writer = |spec: &PartitionSpecRef| -> Result<ManifestWriter, IcebergError> {
        let output = file_io
            .new_output(next_path())
            .map_err(IcebergError::iceberg("create a manifest"))?;
        Ok(
            ManifestWriterBuilder::new(output, Some(id), schema.clone(), (**spec).clone())
                .build_v2_data(),
        )
    };
    for manifest_file in manifests(&table).await? {
        let manifest =
            manifest_file
                .load_manifest(file_io)
                .await
                .map_err(IcebergError::iceberg(format!(
                    "read the manifest {}",
                    manifest_file.manifest_path
                )))?;
        if manifest_file.content != ManifestContentType::Data {
            list.push(manifest_file);
            continue;
        }
        let entry_spec = metadata
            .partition_spec_by_id(manifest_file.partition_spec_id)
            .ok_or_else(|| {
                IcebergError::Table(format!(
                    "manifest {} has partition spec {}, which the table lacks",
                    manifest_file.manifest_path, manifest_file.partition_spec_id
                ))
            })?
            .clone();
        let writer = match writers.entry(entry_spec.spec_id()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(new_writer(&entry_spec)?),
        };
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let file = entry.data_file().clone();
            let (Some(seq), Some(snap)) = (entry.sequence_number(), entry.snapshot_id()) else {
                return Err(IcebergError::Table(format!(
                    "manifest {} lists {} without its sequence number or snapshot",
                    manifest_file.manifest_path,
                    file.file_path()
                )));
            };
            if gone.contains(file.file_path()) {
                found.insert(file.file_path().to_owned());
                deleted_rows += file.record_count();
                deleted_bytes += file.file_size_in_bytes();
                summary.remove_file(&file, schema.clone(), entry_spec.clone());
                writer.add_delete_file(file, seq, entry.file_sequence_number)
            } else {
                writer.add_existing_file(file, snap, seq, entry.file_sequence_number)
            }
            .map_err(IcebergError::iceberg("rewrite a manifest"))?;
            *entries.entry(entry_spec.spec_id()).or_default() += 1;
        }
    }
    check(&found)?;
    let added_files = added.len();
    let (mut added_rows, mut added_bytes) = (0u64, 0u64);
    for data in added {
        let writer = match writers.entry(spec.spec_id()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(new_writer(&spec)?),
        };
        added_rows += data.record_count();
        added_bytes += data.file_size_in_bytes();
        summary.add_file(&data, schema.clone(), spec.clone());
        writer
            .add_file(data, -1)
            .map_err(IcebergError::iceberg("write the added manifest"))?;
        *entries.entry(spec.spec_id()).or_default() += 1;
    }
    for (spec_id, writer) in writers {
        if entries.get(&spec_id).copied().unwrap_or(0) == 0 {
            continue;
        }
        list.push(
            writer
                .write_manifest_file()
                .await
                .map_err(IcebergError::iceberg("write a manifest"))?,
        );
    }

    let list_path = format!("{}/metadata/snap-{id}-0-{commit}.avro", metadata.location());
    let parent = metadata.current_snapshot_id();
    let out = file_io
        .new_output(&list_path)
        .map_err(IcebergError::iceberg("create the manifest list"))?
        .writer()
        .await
        .map_err(IcebergError::iceberg("create the manifest list"))?;
    let mut list_writer = ManifestListWriter::v2(out, id, parent, sequence);
    list_writer
        .add_manifests(list.into_iter())
        .map_err(IcebergError::iceberg("write the manifest list"))?;
    list_writer
        .close()
        .await
        .map_err(IcebergError::iceberg("write the manifest list"))?;

    // Same rows in, same rows out: a replace (a compaction of files never published adds rows
    // the table did not have: an overwrite, honestly named).
    let operation = if let Some(operation) = operation {
        operation
    } else if added_rows == deleted_rows {
        Operation::Replace
    } else if found.is_empty() {
        Operation::Append
    } else {
        Operation::Overwrite
    };
    // The publisher's progress in its summary is also kept as table properties, in the same
    // commit (see `Progress::of`).
    let progress: HashMap<String, String> = [crate::publish::WATERMARK, crate::publish::OFFSETS]
        .into_iter()
        .filter_map(|k| properties.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect();
    let mut additional = properties;
    additional.extend(summary.build());
    additional.extend(totals(
        &table,
        (added_files, added_rows, added_bytes),
        (found.len(), deleted_rows, deleted_bytes),
    ));
    let snapshot = Snapshot::builder()
        .with_snapshot_id(id)
        .with_parent_snapshot_id(parent)
        .with_sequence_number(sequence)
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
        .with_manifest_list(list_path)
        .with_schema_id(metadata.current_schema_id())
        .with_summary(Summary {
            operation,
            additional_properties: additional,
        })
        .build();
    let mut updates = vec![
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.to_owned(),
            reference: SnapshotReference::new(id, SnapshotRetention::branch(None, None, None)),
        },
    ];
    if !progress.is_empty() {
        updates.push(TableUpdate::SetProperties { updates: progress });
    }
    let done = Replaced {
        deleted: found.len(),
        added: added_files,
    };
    let table = tables
        .catalog()
        .commit_on(&table, updates)
        .await
        .map_err(|e| {
            let conflict = e.kind() == ErrorKind::CatalogCommitConflicts;
            IcebergError::iceberg(if conflict {
                format!("commit {what} (another writer moved the table)")
            } else {
                format!("commit {what}")
            })(e)
        })?;
    Ok((table, done))
}

/// The snapshot's running totals (`total-records`, `total-data-files`, `total-files-size`), from
/// its parent's and what it changed (files, rows, bytes added and deleted); engines show them,
/// none relies on them. The first snapshot's are its additions.
fn totals(
    table: &Table,
    added: (usize, u64, u64),
    deleted: (usize, u64, u64),
) -> Vec<(String, String)> {
    let get = |key: &str| -> Option<i64> {
        match table.metadata().current_snapshot() {
            None => Some(0),
            Some(parent) => parent
                .summary()
                .additional_properties
                .get(key)
                .and_then(|v| v.parse().ok()),
        }
    };
    let (Some(records), Some(files), Some(size)) = (
        get("total-records"),
        get("total-data-files"),
        get("total-files-size"),
    ) else {
        return Vec::new();
    };
    let delta = |a: u64, d: u64| a as i64 - d as i64;
    vec![
        (
            "total-records".into(),
            (records + delta(added.1, deleted.1)).to_string(),
        ),
        (
            "total-data-files".into(),
            (files + delta(added.0 as u64, deleted.0 as u64)).to_string(),
        ),
        (
            "total-files-size".into(),
            (size + delta(added.2, deleted.2)).to_string(),
        ),
    ]
}

/// Rewrites the data manifests of `table`'s current snapshot into one per partition spec, in a
/// `replace` snapshot that changes no data and carries the current snapshot's `surgstream.*`
/// summary (its watermark, offsets, group and topic) unchanged: each publish appends a
/// manifest, and a fleet whose files are never small (nothing to compact) would otherwise
/// collect one per `--iceberg-interval` for ever, each read by every later append's duplicate
/// check. Returns the new table, or `None` when it has no more than `at_most` manifests.
pub(crate) async fn merge_manifests(
    tables: &Tables,
    table: Table,
    at_most: usize,
) -> Result<Option<Table>, IcebergError> {
    let Some(current) = table.metadata().current_snapshot() else {
        return Ok(None);
    };
    if manifests(&table).await?.len() <= at_most {
        return Ok(None);
    }
    let properties: HashMap<String, String> = current
        .summary()
        .additional_properties
        .iter()
        .filter(|(k, _)| k.starts_with("surgstream."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Nothing goes, nothing comes: every live file carried over into one manifest per spec.
    // (Any table's: the raw tables' too, which have no `timestamp` column.)
    let change = Change {
        gone: HashSet::new(),
        added: Vec::new(),
        spec: table.metadata().default_partition_spec().clone(),
        properties,
        what: format!("a manifest merge of {}", table.identifier()),
        operation: None,
    };
    let (table, _) = rewrite(tables, table, change, |_| Ok(())).await?;
    Ok(Some(table))
}
