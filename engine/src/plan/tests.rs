//! Per-vertex parallelism overrides (`pipeline.jobvertex-parallelism-overrides`).

use super::*;
use crate::config::Config;

/// A source read by three INSERTs (so its vertex ends at the source): a keyed
/// window aggregation, a global one, and a filter behind a FORWARD edge.
const SQL: &str = "CREATE TABLE s (k INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (k INT, c BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE g (c BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE r (k INT) WITH ('connector' = 'blackhole');
EXECUTE STATEMENT SET BEGIN
INSERT INTO o SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO g SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;
INSERT INTO r SELECT k FROM s WHERE k > 0;
END;";

fn graph(pairs: &[(&str, String)]) -> Result<JobGraph, EngineError> {
    let job = crate::local::compile_text(SQL, "j.sql")?;
    let config = Config { values: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() };
    crate::local::prepare(&job, &config, "j").map(|(g, _)| g)
}

/// (parallelism, uid) per vertex, and each edge's partitioning.
fn shape(g: &JobGraph) -> (Vec<(usize, String)>, Vec<String>) {
    (
        g.vertices.iter().map(|v| (v.parallelism, v.uid.clone())).collect(),
        g.edges.iter().map(|e| format!("{}->{} {}", e.from, e.to, e.partitioning)).collect(),
    )
}

fn vertex(g: &JobGraph, label: &str) -> usize {
    g.vertices.iter().position(|v| v.name().contains(label)).unwrap()
}

#[test]
fn overrides_set_a_vertexs_parallelism_keep_the_uids_and_rebalance_forward_edges() {
    let base = graph(&[("parallelism.default", "2".into())]).unwrap();
    let (vertices, edges) = shape(&base);
    assert!(vertices.iter().all(|(p, _)| *p == 2 || *p == 1), "{vertices:?}");
    let source = vertex(&base, "Source: s");
    let keyed = vertex(&base, "Sink: o");
    let forward: Vec<&Edge> =
        base.edges.iter().filter(|e| e.from == source && matches!(e.partitioning, Partitioning::Forward)).collect();
    assert!(!forward.is_empty(), "{edges:?}");

    let overrides = format!("{}:3,{}:4", base.vertices[source].uid, base.vertices[keyed].uid);
    let g = graph(&[("parallelism.default", "2".into()), (VERTEX_PARALLELISM_OVERRIDES, overrides)]).unwrap();
    let (got, got_edges) = shape(&g);
    let uids = |v: &[(usize, String)]| v.iter().map(|(_, u)| u.clone()).collect::<Vec<_>>();
    assert_eq!(uids(&got), uids(&vertices), "an override changed a uid");
    for (i, (p, _)) in got.iter().enumerate() {
        let want = if i == source {
            3
        } else if i == keyed {
            4
        } else {
            vertices[i].0
        };
        assert_eq!(*p, want, "vertex {i}: {got:?}");
    }
    for (before, after) in base.edges.iter().zip(&g.edges) {
        let expected = match &before.partitioning {
            Partitioning::Forward if before.from == source => "REBALANCE".to_string(),
            p => p.to_string(),
        };
        assert_eq!(after.partitioning.to_string(), expected, "{got_edges:?}");
    }
    assert_eq!(g.explain().lines().filter(|l| l.contains(VERTEX_PARALLELISM_OVERRIDES)).count(), 1);
    assert!(g.explain().contains(&format!("Vertex {source} (parallelism 3, uid {})", g.vertices[source].uid)));
}

#[test]
fn an_unknown_uid_is_ignored_and_a_global_vertex_stays_at_one() {
    let base = graph(&[("parallelism.default", "2".into())]).unwrap();
    let g = graph(&[("parallelism.default", "2".into()), (VERTEX_PARALLELISM_OVERRIDES, "0123456789abcdef:3".into())])
        .unwrap();
    assert_eq!(shape(&g), shape(&base));

    let global = base.edges.iter().find(|e| matches!(e.partitioning, Partitioning::Global)).unwrap().to;
    let uid = base.vertices[global].uid.clone();
    let with = |o: String| graph(&[("parallelism.default", "2".into()), (VERTEX_PARALLELISM_OVERRIDES, o)]);
    let e = with(format!("{uid}:2")).err().unwrap().to_string();
    assert!(e.contains(VERTEX_PARALLELISM_OVERRIDES) && e.contains(&uid) && e.contains("GLOBAL"), "{e}");
    assert_eq!(with(format!("{uid}:1")).unwrap().vertices[global].parallelism, 1);

    let e = with(format!("{uid}:200")).err().unwrap().to_string();
    assert!(e.contains(&uid) && e.contains("pipeline.max-parallelism 128"), "{e}");
}

#[test]
fn a_sink_chains_unless_a_table_option_sets_a_parallelism() {
    let sql = |scan: &str, sink: &str| {
        format!(
            "CREATE TABLE s (k INT) WITH ('connector' = 'datagen', 'number-of-rows' = '10'{scan});
CREATE TABLE o (k INT) WITH ('connector' = 'blackhole'{sink});
INSERT INTO o SELECT k FROM s;"
        )
    };
    let vertices = |text: String, p: usize| {
        let job = crate::local::compile_text(&text, "j.sql").unwrap();
        let config = Config { values: [("parallelism.default".to_string(), p.to_string())].into() };
        let g = crate::local::prepare(&job, &config, "j").unwrap().0;
        g.vertices.iter().map(|v| (v.parallelism, v.name())).collect::<Vec<_>>()
    };
    let scan = ", 'scan.parallelism' = '2'";
    let sink = ", 'sink.parallelism' = '2'";
    for p in [1, 2, 3] {
        assert_eq!(vertices(sql("", ""), p).len(), 1);
        assert_eq!(vertices(sql(scan, sink), p).len(), 1, "the options agree");
        assert_eq!(vertices(sql(scan, ""), p)[1], (p, "Sink: o [blackhole]".into()));
        assert_eq!(vertices(sql("", sink), p)[1], (2, "Sink: o [blackhole]".into()));
    }
}

#[test]
fn the_uids_are_the_same_at_any_default_parallelism() {
    let uids = |p: usize| {
        let g = graph(&[("parallelism.default", p.to_string())]).unwrap();
        g.vertices.iter().map(|v| (v.uid.clone(), v.name())).collect::<Vec<_>>()
    };
    // The sink of the global aggregation runs at 1 with it whatever the
    // default; it used to chain at 1 only, and to be a vertex of its own above.
    assert_eq!(uids(1), uids(2));
    assert_eq!(uids(1), uids(5));
}

/// Each sink's event-time column (for the event-time lag at emission), by table.
fn sink_event_times(sql: &str, config: &Config) -> Vec<(String, Option<(usize, i64)>)> {
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let (g, _) = crate::local::prepare(&job, config, "j").unwrap();
    g.vertices
        .iter()
        .flat_map(|v| &v.ops)
        .filter_map(|o| match o {
            OpSpec::Sink { table, event_time } => Some((table.name.clone(), *event_time)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_sink_reads_event_time_from_the_time_attribute_or_from_window_end() {
    let sql = "CREATE TABLE s (k INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE raw (ts TIMESTAMP(3), k INT) WITH ('connector' = 'blackhole');
CREATE TABLE wend (c BIGINT, k INT, we TIMESTAMP(3)) WITH ('connector' = 'blackhole');
CREATE TABLE wtime (wt TIMESTAMP(3), c BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE none_ (k INT, c BIGINT) WITH ('connector' = 'blackhole');
EXECUTE STATEMENT SET BEGIN
INSERT INTO raw SELECT ts, k FROM s WHERE k > 0;
INSERT INTO wend SELECT COUNT(*), k, window_end FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end HAVING COUNT(*) > 1;
INSERT INTO wtime SELECT window_time, COUNT(*) FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, window_time;
INSERT INTO none_ SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
END;";
    let got = sink_event_times(sql, &Config::default());
    let of = |t: &str| got.iter().find(|(n, _)| n == t).map(|(_, e)| *e).unwrap();
    assert_eq!(of("raw"), Some((0, 0)), "the time attribute, passed through: {got:?}");
    assert_eq!(of("wend"), Some((2, -1)), "window_end less 1 ms, through HAVING and a projection: {got:?}");
    assert_eq!(of("wtime"), Some((0, 0)), "window_time is the time attribute: {got:?}");
    assert_eq!(of("none_"), None, "no column carries the event time: {got:?}");
    // metrics.latency.interval = 0 turns latency tracking off, the event-time lag too.
    let off = Config { values: [("metrics.latency.interval".to_string(), "0".to_string())].into() };
    assert!(sink_event_times(sql, &off).iter().all(|(_, e)| e.is_none()));
}

#[test]
fn ranks_run_behind_a_hash_edge_on_their_partition_or_globally_without_one() {
    let sql = "CREATE TABLE s (k INT, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE top (k INT, v INT) WITH ('connector' = 'blackhole');
CREATE TABLE top_all (v INT) WITH ('connector' = 'blackhole');
CREATE TABLE last_k (k INT, v INT) WITH ('connector' = 'blackhole');
EXECUTE STATEMENT SET BEGIN
INSERT INTO top SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM s) WHERE rn <= 2;
INSERT INTO top_all SELECT v FROM (SELECT v, ROW_NUMBER() OVER (ORDER BY v) AS rn FROM s) WHERE rn <= 2;
INSERT INTO last_k SELECT k, v FROM (SELECT k, v, ts, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn FROM s) WHERE rn = 1;
END;";
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let config = Config { values: [("parallelism.default".to_string(), "3".to_string())].into_iter().collect() };
    let g = crate::local::prepare(&job, &config, "j").unwrap().0;
    let input_of = |label: &str| {
        let v = vertex(&g, label);
        let e = &g.edges[g.vertices[v].inputs[0]];
        (g.vertices[v].parallelism, e.partitioning.to_string())
    };
    assert_eq!(input_of("Rank(rn 1..=2) -> Calc -> Calc -> Sink: top "), (3, "HASH[s.k]".to_string()));
    assert_eq!(input_of("Sink: top_all"), (1, "GLOBAL".to_string()));
    assert_eq!(input_of("Deduplicate(keep last row)"), (3, "HASH[s.k]".to_string()));
}

#[test]
fn a_join_vertex_reads_both_inputs_by_key_and_takes_the_state_ttl() {
    let sql = "SET 'table.exec.state.ttl' = '1 h';
CREATE TABLE a (k INT, v INT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE b (k BIGINT, w INT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (k INT, v INT, w INT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT a.k, v, w FROM a LEFT JOIN b ON a.k = b.k;";
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let (g, _) = crate::local::prepare(&job, &Config::default(), "j").unwrap();
    let join = vertex(&g, "Join(LEFT)");
    let edges: Vec<String> = g.vertices[join].inputs.iter().map(|e| g.edges[*e].partitioning.to_string()).collect();
    assert_eq!(edges, ["HASH[CAST(a.k AS Int64)]", "HASH[b.k]"]);
    let Some(OpSpec::Join { ttl, interval: None, updating: true, .. }) = g.vertices[join].ops.first() else {
        panic!("the join vertex starts with the join: {}", g.vertices[join].name())
    };
    assert_eq!(*ttl, 3_600_000);
}

#[test]
fn an_over_aggregation_takes_the_state_ttl() {
    let sql = "SET 'table.exec.state.ttl' = '10 min';
CREATE TABLE s (k INT, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (k INT, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT k, COUNT(*) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM s;";
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let (g, _) = crate::local::prepare(&job, &Config::default(), "j").unwrap();
    let over = g.vertices.iter().flat_map(|v| &v.ops).find(|op| matches!(op, OpSpec::OverAggregate { .. }));
    let Some(OpSpec::OverAggregate { ttl, .. }) = over else { panic!("no OVER aggregation in the plan") };
    assert_eq!(*ttl, std::time::Duration::from_secs(600));
}

#[test]
fn a_source_reads_only_the_columns_its_projections_and_watermark_need() {
    // `a` feeds a join through a projection (the planner's pruning) and is
    // scanned a second time the same way; `b` is also read whole by a filter.
    let sql = "CREATE TABLE a (k INT, name STRING, note STRING, e BIGINT, ts AS TO_TIMESTAMP_LTZ(e, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE b (k INT, w INT, x STRING, y STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (k INT, w INT) WITH ('connector' = 'blackhole');
CREATE TABLE o2 (x STRING) WITH ('connector' = 'blackhole');
EXECUTE STATEMENT SET BEGIN
INSERT INTO o SELECT a.k, b.w FROM a JOIN b ON a.k = b.k;
INSERT INTO o SELECT a.k, b.w FROM a JOIN b ON a.name = b.x;
INSERT INTO o2 SELECT x FROM b WHERE w > 0;
END;";
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let (g, _) = crate::local::prepare(&job, &Config::default(), "j").unwrap();
    let reads = |name: &str| g.vertices[vertex(&g, &format!("Source: {name} "))].reads.clone();
    // k and name by the joins, e for the watermark's computed column; not note.
    assert_eq!(reads("a"), Some(vec![true, true, false, true]));
    // The joins alone read k, w and x of `b`; the filter's scan reads every column.
    assert_eq!(reads("b"), None);
    assert!(g.explain().contains("reads columns k, name, e (the others are not parsed)"), "{}", g.explain());
}
