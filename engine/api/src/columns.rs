//! How a table's metadata columns (`col TYPE METADATA [FROM 'key'] [VIRTUAL]`,
//! as in Flink) reach connectors: as fields of the schema a source reads and a
//! sink writes, marked in the Arrow field's metadata map with these keys. A
//! connector reads or writes each marked column from the record's metadata
//! (Kafka: its partition, offset, timestamp, ...) instead of its format. A
//! table's primary key is marked in the schema's own metadata map.

/// The schema's metadata key of a table's `PRIMARY KEY (...) NOT ENFORCED`:
/// its columns, separated by commas.
pub const PRIMARY_KEY: &str = "sluice.primary-key";

/// The field's metadata key (`FROM 'key'`, or the column's name).
pub const METADATA_KEY: &str = "sluice.metadata";
/// Present (`"true"`) on a `VIRTUAL` metadata column: read by a source, never
/// written by a sink (it is not among the columns an `INSERT` provides).
pub const METADATA_VIRTUAL: &str = "sluice.metadata.virtual";

/// The metadata key of a field, given the field's metadata map.
pub fn metadata_key(field_metadata: &std::collections::HashMap<String, String>) -> Option<&str> {
    field_metadata.get(METADATA_KEY).map(String::as_str)
}

/// The primary key's columns, given the schema's metadata map; empty without one.
pub fn primary_key(schema_metadata: &std::collections::HashMap<String, String>) -> Vec<&str> {
    schema_metadata.get(PRIMARY_KEY).map(|k| k.split(',').collect()).unwrap_or_default()
}

/// Whether a field is a `VIRTUAL` metadata column.
pub fn is_virtual(field_metadata: &std::collections::HashMap<String, String>) -> bool {
    field_metadata.get(METADATA_VIRTUAL).is_some_and(|v| v == "true")
}
