use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};

use datafusion_common::DFSchema;

use super::*;
use crate::compile_with_policy;
use crate::logical::Job;

const SQL: &str = "CREATE TABLE clicks (
  user_id BIGINT,
  email STRING,
  card_number STRING,
  country STRING,
  ts TIMESTAMP(3),
  domain AS SPLIT_INDEX(email, '@', 1),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen');
CREATE TABLE out (user_id BIGINT, email STRING) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT user_id, email FROM clicks;";

fn policy(yaml: &str) -> DataPolicy {
    serde_json::from_value(serde_yaml_json(yaml)).unwrap()
}

/// The tests write policies as JSON-compatible YAML: flow style only.
fn serde_yaml_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn keys(r: &SecretKeyRef) -> Result<Vec<u8>, String> {
    match (r.name.as_str(), r.key.as_str()) {
        ("pii-key", "hmac") => Ok(b"k3y".to_vec()),
        _ => Err(format!("no file /var/run/secrets/sluice.dev/{}/{}", r.name, r.key)),
    }
}

fn compile(p: &str) -> Result<Job, SqlError> {
    compile_with_policy(SQL, &policy(p), &keys)
}

/// The table's columns, as its scans read them, over one physical row.
fn scan(job: &Job, table: &str) -> (Vec<String>, Vec<ArrayRef>, Option<bool>) {
    let t = &job.tables[table];
    let physical: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![7])),
        Arc::new(StringArray::from(vec!["ana@example.com"])),
        Arc::new(StringArray::from(vec!["4111111111111111"])),
        Arc::new(StringArray::from(vec!["XX"])),
        Arc::new(TimestampMillisecondArray::from(vec![1_000])),
    ];
    let batch = RecordBatch::try_new(t.physical.clone(), physical).unwrap();
    let eval = |e: &Expr, schema: &DFSchema, batch: &RecordBatch| {
        let p = crate::expr::physical(e, schema).unwrap();
        p.evaluate(batch).unwrap().into_array(1).unwrap()
    };
    let source = t.policy.source.as_ref().unwrap();
    let passes = t.policy.row_filter.as_ref().map(|f| eval(&f.expr, &source.raw, &batch).as_boolean().value(0));
    let visible: Vec<ArrayRef> = source.exprs.iter().map(|e| eval(e, &source.raw, &batch)).collect();
    let visible = RecordBatch::try_new(source.schema.clone(), visible).unwrap();
    let names = t.schema.fields().iter().map(|f| f.name().clone()).collect();
    (names, t.columns.iter().map(|c| eval(c, &t.physical_df, &visible)).collect(), passes)
}

fn string(a: &ArrayRef) -> Option<String> {
    a.as_string::<i32>().iter().next().flatten().map(str::to_string)
}

#[test]
fn masked_columns_keep_their_names_and_computed_columns_read_masked_values() {
    let job = compile(
        r#"{"columns": [
            {"match": {"table": "clicks", "column": "email"}, "action": "hmac", "keySecretRef": {"name": "pii-key", "key": "hmac"}},
            {"match": {"column": "card_*"}, "action": "redact", "keep": {"last": 4}},
            {"match": {"tag": "pii"}, "action": "null"}],
          "tags": {"clicks.country": ["pii"]}}"#,
    )
    .unwrap();
    let (names, values, passes) = scan(&job, "clicks");
    assert_eq!(names, ["user_id", "email", "card_number", "country", "ts", "domain"]);
    let token = string(&values[1]).unwrap();
    assert_eq!(token.len(), 64);
    assert!(!token.contains("ana"));
    assert_eq!(string(&values[2]).as_deref(), Some("************1111"));
    assert!(values[3].is_null(0));
    // The computed column splits the token, which has no '@': the raw domain never shows.
    assert_eq!(string(&values[5]), None);
    assert_eq!(passes, None);
    let t = &job.tables["clicks"];
    assert_eq!(t.policy.describe()[0], "email hmac (dataPolicy.columns[0])");
    assert!(t.schema.field(3).is_nullable());
    // The first rule names its table: the sink's `email` is not masked.
    assert!(job.tables["out"].policy.is_empty());
    assert!(!format!("{job:?}").contains("k3y"), "the key is never printed");
}

#[test]
fn a_row_rule_reads_raw_values_and_a_dropped_column_is_gone() {
    let sql = SQL.replace("domain AS SPLIT_INDEX(email, '@', 1),\n", "");
    let p = policy(
        r#"{"columns": [{"match": {"column": "card_number"}, "action": "drop"}],
            "rows": [{"table": "clicks", "where": "country <> 'XX'"}, {"table": "clicks", "where": "user_id > 0"}]}"#,
    );
    let job = compile_with_policy(&sql, &p, &keys).unwrap();
    let (names, _, passes) = scan(&job, "clicks");
    assert_eq!(names, ["user_id", "email", "country", "ts"]);
    assert_eq!(passes, Some(false));
    assert_eq!(job.tables["clicks"].rowtime(), Some(3));
    assert_eq!(
        job.tables["clicks"].policy.describe()[1],
        "rows where (country <> 'XX') AND (user_id > 0) (dataPolicy.rows[0], dataPolicy.rows[1])"
    );
    let reads_it = sql.replace("SELECT user_id, email FROM", "SELECT user_id, card_number FROM");
    let e = compile_with_policy(&reads_it, &p, &keys).unwrap_err();
    assert!(e.message.contains("card_number"), "{e}");
}

#[test]
fn mistakes_in_a_policy_are_errors_that_name_the_rule() {
    for (p, why) in [
        (
            r#"{"columns": [{"match": {"column": "emial"}, "action": "null"}]}"#,
            "dataPolicy.columns[0] (column `emial`) matches no column",
        ),
        (
            r#"{"columns": [{"match": {"tag": "pii"}, "action": "null"}], "tags": {"clicks.emial": ["pii"]}}"#,
            "dataPolicy.tags: `clicks.emial` is not a column",
        ),
        (r#"{"rows": [{"table": "click", "where": "true"}]}"#, "dataPolicy.rows[0]: the job defines no table `click`"),
        (
            r#"{"rows": [{"table": "out", "where": "true"}]}"#,
            "dataPolicy.rows[0]: the job writes `out` but never reads it",
        ),
        (
            r#"{"columns": [{"match": {"table": "out", "column": "email"}, "action": "null"}]}"#,
            "dataPolicy.columns[0] matches only columns of `out`: the job writes `out` but never reads it",
        ),
        (r#"{"rows": [{"table": "clicks", "where": "contry = 'DE'"}]}"#, "dataPolicy.rows[0] (`contry = 'DE'`)"),
        (r#"{"rows": [{"table": "clicks", "where": "user_id + 1"}]}"#, "not BOOLEAN"),
        (r#"{"columns": [{"match": {"table": "clicks"}, "action": "null"}]}"#, "match needs a column"),
        (r#"{"columns": [{"match": {"column": "ts"}, "action": "null"}]}"#, "event-time column"),
        (
            r#"{"columns": [{"match": {"column": "user_id"}, "action": "redact"}]}"#,
            "`clicks.user_id`: redact applies to STRING columns; use null or hmac (the column is BIGINT)",
        ),
        (r#"{"columns": [{"match": {"column": "email"}, "action": "hmac"}]}"#, "hmac needs keySecretRef"),
        (
            r#"{"columns": [{"match": {"column": "email"}, "action": "hmac", "keySecretRef": {"name": "nope", "key": "k"}}]}"#,
            "no file /var/run/secrets/sluice.dev/nope/k",
        ),
        (r#"{"columns": [{"match": {"column": "email"}, "action": "truncate"}]}"#, "truncate needs keep.first"),
        (
            r#"{"columns": [{"match": {"column": "email"}, "action": "drop"}]}"#,
            "computed column `domain` of table `clicks` reads `email`, which the data policy drops",
        ),
    ] {
        let e = compile(p).unwrap_err();
        assert!(e.message.contains(why), "{p}: {e}");
    }
}

#[test]
fn glob_matches_whole_names() {
    assert!(glob("*_email", "work_email"));
    assert!(!glob("*_email", "email"));
    assert!(glob("card_?umber", "card_number"));
    assert!(!glob("email", "emails"));
}
