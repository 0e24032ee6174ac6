//! The kafka connector against a real Apache Kafka broker (scripts/kafka.sh, one per test
//! binary): source startup modes, bounds, restore at another parallelism and errors; the
//! sink's guarantees, its recovery, and the fencing of zombie writers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod kafka_common;
use kafka_common::*;

#[test]
fn the_source_starts_where_its_startup_mode_says_and_a_bounded_read_ends() {
    let b = shared();
    let topic = unique_topic("startup");
    b.create_topic(&topic, 2);
    produce(&topic, 0, 10, 2);
    let t_mid = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    std::thread::sleep(Duration::from_millis(20));
    produce(&topic, 10, 10, 2);
    let bounded = [("scan.bounded.mode", "latest-offset")];
    let run = |extra: &[(&str, &str)]| {
        let mut o = options(&topic, &bounded);
        o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut r = source(&o, 0, 1, None);
        let (mut got, ended) = read(r.as_mut(), usize::MAX);
        assert!(ended, "a bounded read must end");
        got.sort();
        got
    };
    assert_eq!(run(&[("scan.startup.mode", "earliest-offset")]), (0..20).collect::<Vec<_>>());
    assert_eq!(run(&[("scan.startup.mode", "latest-offset")]), Vec::<i64>::new());
    let t = t_mid.to_string();
    assert_eq!(
        run(&[("scan.startup.mode", "timestamp"), ("scan.startup.timestamp-millis", &t)]),
        (10..20).collect::<Vec<_>>()
    );
    // Partition 0 holds the even ids, partition 1 the odd ones, in order.
    let got = run(&[
        ("scan.startup.mode", "specific-offsets"),
        ("scan.startup.specific-offsets", "partition:0,offset:8;partition:1,offset:9"),
    ]);
    assert_eq!(got, vec![16, 18, 19]);
    // group-offsets without a committed offset and without a reset policy is refused by name.
    let mut o = options(&topic, &[("properties.group.id", "nobody")]);
    o.extend(bounded.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let e = source_error(o);
    assert!(e.contains("group 'nobody' has no committed offset") && e.contains("auto.offset.reset"), "{e}");
    // An unbounded reader sees records produced after it started.
    let mut r = source(&options(&topic, &[("scan.startup.mode", "latest-offset")]), 0, 1, None);
    assert_eq!(read(r.as_mut(), 1).0, Vec::<i64>::new());
    produce(&topic, 100, 4, 2);
    let (mut got, _) = read(r.as_mut(), 4);
    got.sort();
    assert_eq!(got, vec![100, 101, 102, 103]);
    // The lag is asked in the background of polls; it is known within a few polls.
    let deadline = Instant::now() + Duration::from_secs(20);
    while r.pending_records().is_none() && Instant::now() < deadline {
        let _ = r.poll().unwrap();
    }
    assert_eq!(r.pending_records(), Some(0), "every record was read");
    assert_eq!(r.splits(), Some(2));
}

#[test]
fn a_restore_at_another_parallelism_reads_every_record_exactly_once() {
    let topic = unique_topic("restore");
    shared().create_topic(&topic, 5);
    produce(&topic, 0, 200, 5);
    let o = options(&topic, &[("scan.startup.mode", "earliest-offset")]);
    // Two subtasks read part of it, then snapshot.
    let mut seen = Vec::new();
    let mut snaps = Vec::new();
    for s in 0..2 {
        let mut r = source(&o, s, 2, None);
        seen.extend(read(r.as_mut(), 40).0);
        snaps.extend(r.snapshot().unwrap());
    }
    assert_eq!(snaps.len(), 5, "one split per partition");
    // Records written meanwhile, then three subtasks go on from the snapshot.
    produce(&topic, 200, 50, 5);
    let mut readers: Vec<_> = (0..3).map(|s| source(&o, s, 3, Some(snaps.clone()))).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 250 && Instant::now() < deadline {
        for r in &mut readers {
            if let SourceEvent::Batch(b) = r.poll().unwrap() {
                seen.extend(ids(&b));
            }
        }
    }
    seen.sort();
    assert_eq!(seen, (0..250).collect::<Vec<_>>(), "every record once");
}

#[test]
fn records_that_cannot_be_read_and_missing_topics_are_named() {
    let topic = unique_topic("bad");
    shared().create_topic(&topic, 1);
    shared().produce_all(&topic, &[Record::new(json(1)), Record::new(b"{not json".to_vec()), Record::new(json(3))]);
    let bounded = [("scan.startup.mode", "earliest-offset"), ("scan.bounded.mode", "latest-offset")];
    let mut r = source(&options(&topic, &bounded), 0, 1, None);
    let e = loop {
        match r.poll() {
            Err(e) => break e.to_string(),
            Ok(SourceEvent::End) => panic!("the malformed record was not reported"),
            Ok(_) => {}
        }
    };
    assert!(e.contains(&format!("topic '{topic}' partition 0 offset 1")) && e.contains("ignore-parse-errors"), "{e}");
    let mut o = options(&topic, &bounded);
    o.insert("json.ignore-parse-errors".into(), "true".into());
    let mut r = source(&o, 0, 1, None);
    let (got, ended) = read(r.as_mut(), usize::MAX);
    assert!(ended);
    assert_eq!(got, vec![1, 3]);
    assert_eq!(r.skipped_records(), 1);
    let missing = source_error(options("no-such-topic", &bounded));
    assert!(missing.contains("topic 'no-such-topic' does not exist"), "{missing}");
}

#[test]
fn exactly_once_output_is_visible_at_commit_and_recovery_commits_what_a_checkpoint_covers() {
    let topic = unique_topic("eos");
    shared().create_topic(&topic, 3);
    let prefix = unique_topic("txn");
    let o = options(&topic, &[("sink.delivery-guarantee", "exactly-once"), ("sink.transactional-id-prefix", &prefix)]);
    recover_sink(&sink_ctx(&o, 0, 2, None), &[]).unwrap();
    let mut w0 = create_sink(&sink_ctx(&o, 0, 2, None)).unwrap();
    let mut w1 = create_sink(&sink_ctx(&o, 1, 2, None)).unwrap();
    w0.write(&batch(0..10)).unwrap();
    w1.write(&batch(10..20)).unwrap();
    let c0 = w0.pre_commit(1).unwrap();
    let c1 = w1.pre_commit(1).unwrap();
    assert_eq!(committed_ids(&topic), Vec::<i64>::new(), "nothing is visible before the commit");
    // (One writer's commit alone may show only part of its rows: the other's open
    // transaction holds back the last stable offset of the partitions they share.)
    w0.commit(&[c0]).unwrap();
    w1.commit(&[c1]).unwrap();
    let want: Vec<i64> = (0..20).collect();
    assert_eq!(committed_ids_when(&topic, &want), want);
    // Checkpoint 2 completes, then the process dies before the writers commit it;
    // rows after checkpoint 2 are in open or pre-committed transactions.
    w0.write(&batch(20..25)).unwrap();
    w1.write(&batch(25..30)).unwrap();
    let c0b = w0.pre_commit(2).unwrap();
    let c1b = w1.pre_commit(2).unwrap();
    let states = vec![w0.snapshot_state().unwrap(), w1.snapshot_state().unwrap()];
    w0.write(&batch(1000..1005)).unwrap();
    w1.write(&batch(2000..2005)).unwrap();
    w0.pre_commit(3).unwrap();
    w1.write(&batch(3000..3001)).unwrap();
    std::mem::forget(w0);
    std::mem::forget(w1);
    // Restored from checkpoint 2 at parallelism 3: its committables are committed, the
    // later transactions aborted, and nothing of them is visible.
    let restored = sink_ctx(&o, 0, 3, Some(states.clone()));
    recover_sink(&restored, &[c0b, c1b]).unwrap();
    let want: Vec<i64> = (0..30).collect();
    assert_eq!(committed_ids_when(&topic, &want), want);
    // Recovery is idempotent (a crash during recovery runs it again).
    recover_sink(&restored, &[]).unwrap();
    // The restored writers go on, and their output is committed once.
    let mut w = create_sink(&sink_ctx(&o, 2, 3, Some(states))).unwrap();
    w.write(&batch(30..35)).unwrap();
    let c = w.pre_commit(3).unwrap();
    w.commit(&[c]).unwrap();
    let want: Vec<i64> = (0..35).collect();
    assert_eq!(committed_ids_when(&topic, &want), want);
    // A read_uncommitted consumer does see the aborted rows: they were written, then aborted.
    assert!(shared().read_uncommitted(&topic).len() > 35);
}

#[test]
fn a_zombie_writer_cannot_commit_after_recovery() {
    let topic = unique_topic("zombie");
    shared().create_topic(&topic, 1);
    let prefix = unique_topic("ztxn");
    let o = options(&topic, &[("sink.delivery-guarantee", "exactly-once"), ("sink.transactional-id-prefix", &prefix)]);
    let mut zombie = create_sink(&sink_ctx(&o, 0, 1, None)).unwrap();
    zombie.write(&batch(0..5)).unwrap();
    let state = zombie.snapshot_state().unwrap();
    // Another attempt restores from before those rows: it aborts and fences the zombie's transaction.
    recover_sink(&sink_ctx(&o, 0, 1, Some(vec![state])), &[]).unwrap();
    let c = zombie.pre_commit(1);
    let committed = c.and_then(|c| zombie.commit(&[c]));
    assert!(committed.is_err(), "the fenced zombie committed");
    assert_eq!(committed_ids(&topic), Vec::<i64>::new());
}

#[test]
fn at_least_once_flushes_at_each_checkpoint_and_keys_follow_key_fields() {
    let topic = unique_topic("alo");
    shared().create_topic(&topic, 4);
    let o = options(&topic, &[("key.format", "json"), ("key.fields", "id"), ("value.fields-include", "EXCEPT_KEY")]);
    let mut w = create_sink(&sink_ctx(&o, 0, 1, None)).unwrap();
    w.write(&batch(0..20)).unwrap();
    assert!(w.pre_commit(1).unwrap().is_empty());
    let msgs = shared().read_committed(&topic);
    assert_eq!(msgs.len(), 20);
    let m = msgs.iter().find(|m| m.key.as_deref() == Some(&b"{\"id\":7}"[..])).expect("a record keyed by id 7");
    assert_eq!(m.value.as_deref(), Some(&b"{\"name\":\"n7\"}"[..]));
    // The same key always goes to the same partition (murmur2, as the Java client).
    let parts: std::collections::BTreeSet<i32> = msgs.iter().map(|m| m.partition).collect();
    assert!(parts.len() > 1, "keys spread over partitions");
    // Options are checked with the table named.
    let bad =
        options(&topic, &[("sink.delivery-guarantee", "exactly-once"), ("properties.transaction.timeout.ms", "500")]);
    let e = create_sink(&sink_ctx(&bad, 0, 1, None)).err().unwrap().to_string();
    assert!(e.contains("table `dst`") && e.contains("must be longer than the checkpoint interval"), "{e}");
}

#[test]
fn a_bounded_read_ends_past_transaction_markers_and_waits_for_records_still_arriving() {
    let topic = unique_topic("markers");
    shared().create_topic(&topic, 1);
    // Input in two committed transactions: the last offset below the end is a commit marker.
    let o = options(
        &topic,
        &[("sink.delivery-guarantee", "exactly-once"), ("sink.transactional-id-prefix", &unique_topic("in"))],
    );
    let mut w = create_sink(&sink_ctx(&o, 0, 1, None)).unwrap();
    for (cp, ids) in [(1, 0..10), (2, 10..20)] {
        w.write(&batch(ids)).unwrap();
        let c = w.pre_commit(cp).unwrap();
        w.commit(&[c]).unwrap();
    }
    let latest = options(&topic, &[("scan.startup.mode", "earliest-offset"), ("scan.bounded.mode", "latest-offset")]);
    let (got, ended) = read(source(&latest, 0, 1, None).as_mut(), usize::MAX);
    assert!(ended, "a bounded read must end though its last offsets are markers");
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    // Bounded at offsets that do not exist yet: the read waits for the records still to come,
    // even when the partition's end it saw a moment ago was already reached.
    let stop = shared().end_offsets(&topic)[0] + 10;
    let feed = topic.clone();
    let feeder = std::thread::spawn(move || {
        for part in 0..5 {
            std::thread::sleep(Duration::from_millis(150));
            let records: Vec<Record> = (20 + part * 2..22 + part * 2).map(|i| Record::new(json(i))).collect();
            shared().produce_all(&feed, &records);
        }
    });
    let stop = format!("partition:0,offset:{stop}");
    let specific = options(
        &topic,
        &[
            ("scan.startup.mode", "earliest-offset"),
            ("scan.bounded.mode", "specific-offsets"),
            ("scan.bounded.specific-offsets", &stop),
        ],
    );
    let (got, ended) = read(source(&specific, 0, 1, None).as_mut(), usize::MAX);
    feeder.join().unwrap();
    assert!(ended);
    assert_eq!(got, (0..30).collect::<Vec<_>>(), "every record below the stop offset");
}

#[test]
fn a_completed_checkpoint_commits_its_offsets_to_the_consumer_group() {
    let topic = unique_topic("group");
    shared().create_topic(&topic, 2);
    produce(&topic, 0, 40, 2);
    let group = unique_topic("g");
    let o = options(&topic, &[("properties.group.id", &group), ("scan.startup.mode", "earliest-offset")]);
    let mut r = source(&o, 0, 1, None);
    let (got, _) = read(r.as_mut(), 40);
    assert_eq!(got.len(), 40);
    r.checkpoint_taken(1);
    r.checkpoint_complete(1);
    // The asynchronous commit completes while the reader polls.
    let deadline = Instant::now() + Duration::from_secs(20);
    while shared().committed_offsets(&group, &topic) != vec![Some(20), Some(20)] {
        assert!(Instant::now() < deadline, "offsets not committed: {:?}", shared().committed_offsets(&group, &topic));
        let _ = r.poll().unwrap();
    }
    // A new reader in group-offsets mode starts from them.
    produce(&topic, 40, 4, 2);
    let mut again = source(&options(&topic, &[("properties.group.id", &group)]), 0, 1, None);
    let (mut got, _) = read(again.as_mut(), 4);
    got.sort();
    assert_eq!(got, vec![40, 41, 42, 43]);
}
