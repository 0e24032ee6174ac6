//! The datasets a job reads and writes, named by the OpenLineage naming spec,
//! with their schemas and each output column's lineage. Pure: derived from the
//! compiled job, once, before it runs.
//!
//! | connector | namespace | name |
//! |---|---|---|
//! | `filesystem` on S3 (`s3://`, `s3a://`) | `s3://<bucket>` | the key prefix |
//! | `filesystem` on local files | `file` | the absolute path |
//! | `kafka` | `kafka://<first bootstrap server>` | the topic |
//! | any other (`datagen`, `print`, ...) | `sluice:<connector>` | the table's name |

use std::collections::BTreeSet;
use std::path::Path;

use sluice_sql::Job;
use sluice_sql::catalog::TableDef;
use sluice_sql::lineage::column_lineage;

/// One dataset of a run event.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    /// The physical columns: name and Flink SQL type.
    pub fields: Vec<(String, String)>,
    /// An output's columns, each with the input fields it comes from (empty for inputs).
    pub columns: Vec<(String, Vec<InputField>)>,
}

/// One input field an output column comes from, as the column-lineage facet writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputField {
    pub namespace: String,
    pub name: String,
    pub field: String,
    /// `IDENTITY`, `TRANSFORMATION` or `AGGREGATION`.
    pub subtype: &'static str,
    /// The data policy's action, if it masked the input field.
    pub masked: Option<&'static str>,
}

/// The inputs and outputs of a job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datasets {
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<Dataset>,
}

/// The namespace and name of a table's dataset.
pub fn name_of(table: &TableDef) -> (String, String) {
    let connector = table.options.get("connector").map(String::as_str).unwrap_or("");
    match connector {
        "filesystem" => match table.options.get("path") {
            Some(path) => path_name(path),
            None => (format!("sluice:{connector}"), table.name.clone()),
        },
        "kafka" | "upsert-kafka" => {
            let server = table
                .options
                .get("properties.bootstrap.servers")
                .and_then(|s| s.split(',').map(str::trim).find(|s| !s.is_empty()))
                .unwrap_or("unknown");
            let topic = table.options.get("topic").cloned().unwrap_or_else(|| table.name.clone());
            (format!("kafka://{server}"), topic)
        }
        _ => (format!("sluice:{connector}"), table.name.clone()),
    }
}

/// A filesystem path or URI: S3 by bucket, local files by absolute path.
fn path_name(path: &str) -> (String, String) {
    let path = path.trim();
    for scheme in ["s3://", "s3a://"] {
        if let Some(rest) = path.strip_prefix(scheme) {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            let key = key.trim_end_matches('/');
            return (format!("s3://{bucket}"), if key.is_empty() { "/".to_string() } else { key.to_string() });
        }
    }
    let local = path.strip_prefix("file://").unwrap_or(path);
    let absolute = if Path::new(local).is_absolute() {
        local.to_string()
    } else {
        std::env::current_dir().map(|d| d.join(local).display().to_string()).unwrap_or_else(|_| local.to_string())
    };
    let trimmed = absolute.trim_end_matches('/');
    ("file".to_string(), if trimmed.is_empty() { "/".to_string() } else { trimmed.to_string() })
}

fn fields(table: &TableDef) -> Vec<(String, String)> {
    table.physical.fields().iter().map(|f| (f.name().clone(), sluice_sql::types::flink_name(f.data_type()))).collect()
}

/// The datasets of a job: every table its INSERTs read, and every table they write.
pub fn of(job: &Job) -> Datasets {
    let mut read = BTreeSet::new();
    for s in &job.sinks {
        read.extend(s.input.scanned_tables());
    }
    let dataset = |t: &TableDef| {
        let (namespace, name) = name_of(t);
        Dataset { namespace, name, fields: fields(t), columns: Vec::new() }
    };
    let inputs = read.iter().filter_map(|t| job.tables.get(t)).map(|t| dataset(t)).collect();
    let outputs = column_lineage(job)
        .into_iter()
        .filter_map(|sink| {
            let table = job
                .tables
                .get(&sink.sink)
                .or_else(|| job.sinks.iter().find(|s| s.table.name == sink.sink).map(|s| &s.table))?;
            let columns = sink
                .columns
                .into_iter()
                .map(|(column, from)| {
                    let inputs = from
                        .into_iter()
                        .filter_map(|f| {
                            let (namespace, name) = name_of(job.tables.get(&f.table)?);
                            Some(InputField {
                                namespace,
                                name,
                                field: f.column,
                                subtype: f.derivation.name(),
                                masked: f.masked.map(|m| m.name()),
                            })
                        })
                        .collect();
                    (column, inputs)
                })
                .collect();
            Some(Dataset { columns, ..dataset(table) })
        })
        .collect();
    Datasets { inputs, outputs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_named_by_the_openlineage_naming_spec() {
        assert_eq!(path_name("s3://bucket/out/clicks/"), ("s3://bucket".into(), "out/clicks".into()));
        assert_eq!(path_name("s3a://bucket"), ("s3://bucket".into(), "/".into()));
        assert_eq!(path_name("file:///data/out"), ("file".into(), "/data/out".into()));
        assert_eq!(path_name("/data/out/"), ("file".into(), "/data/out".into()));
        let (ns, relative) = path_name("out");
        assert_eq!(ns, "file");
        assert!(relative.starts_with('/') && relative.ends_with("/out"), "{relative}");
    }
}
