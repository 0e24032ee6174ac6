use super::*;
use crate::config::Config;

#[test]
fn a_forward_edge_has_one_channel_and_a_keyed_edge_one_per_producer() {
    let sql = "CREATE TABLE s (k INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (k INT, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;";
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let mut cfg = Config::default();
    cfg.values.insert("parallelism.default".into(), "3".into());
    let (graph, _) = crate::local::prepare(&job, &cfg, "j").unwrap();
    let layout = ChannelLayout::of(&graph);
    let keyed = graph.edges.iter().position(|e| !matches!(e.partitioning, Partitioning::Forward)).unwrap();
    let (from, to) = (graph.edges[keyed].from, graph.edges[keyed].to);
    // Every producer subtask has its own channel at each consumer subtask.
    assert_eq!(layout.sources(to, 1), &[(from, 0), (from, 1), (from, 2)]);
    assert_eq!((0..3).map(|i| layout.channel(&graph, keyed, i)).collect::<Vec<_>>(), [0, 1, 2]);
    for (e, edge) in graph.edges.iter().enumerate() {
        if matches!(edge.partitioning, Partitioning::Forward) {
            assert_eq!(layout.sources(edge.to, 2), &[(edge.from, 2)]);
            assert_eq!(layout.channel(&graph, e, 2), 0);
        }
    }
}

#[test]
fn a_joins_channels_say_which_input_they_belong_to() {
    // A self-join: both inputs come from the one source vertex of `s` (both read
    // every column: a pruned side would get its own projection vertex).
    let sql = "CREATE TABLE s (k INT, v INT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (k INT, v INT, w INT, x INT) WITH ('connector' = 'blackhole');
INSERT INTO o SELECT a.k, a.v, b.k, b.v FROM s AS a JOIN s AS b ON a.k = b.v;";
    let job = crate::local::compile_text(sql, "j.sql").unwrap();
    let mut cfg = Config::default();
    cfg.values.insert("parallelism.default".into(), "2".into());
    let (graph, _) = crate::local::prepare(&job, &cfg, "j").unwrap();
    let join = graph.vertices.iter().position(|v| v.name().starts_with("Join(INNER)")).unwrap();
    let inputs = &graph.vertices[join].inputs;
    assert_eq!(inputs.len(), 2);
    assert_eq!(graph.edges[inputs[0]].from, graph.edges[inputs[1]].from, "one source vertex feeds both sides");
    let layout = ChannelLayout::of(&graph);
    // Two producer subtasks per input edge: channels 0-1 left, 2-3 right.
    assert_eq!(layout.inputs(join, layout.sources(join, 1).len()), [0, 0, 1, 1]);
    assert_eq!(layout.channel(&graph, inputs[1], 0), 2);
}
