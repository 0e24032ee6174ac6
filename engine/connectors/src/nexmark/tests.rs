//! The nexmark source's streams: the event mix, determinism across runs,
//! parallelism and batch sizes, the generator model, and its errors.

use std::collections::BTreeMap;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMillisecondType};

use super::config::DEFAULT_BASE_TIME;
use super::generator::{AUCTION_ID_LEAD, FIRST_AUCTION_ID, FIRST_PERSON_ID, last_base0_auction_id};
use super::model::kind_of_event;
use super::*;
use crate::{Role, validate_table};

fn schema(kind: Kind) -> SchemaRef {
    Arc::new(Schema::new(
        kind.columns()
            .iter()
            .map(|(n, k)| {
                Field::new(
                    *n,
                    match k {
                        ColKind::Int64 => DataType::Int64,
                        ColKind::Utf8 => DataType::Utf8,
                        ColKind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
                    },
                    false,
                )
            })
            .collect::<Vec<_>>(),
    ))
}

fn ctx(table: &str, schema: SchemaRef, opts: &[(&str, &str)], subtask: usize, p: usize, batch: usize) -> SourceContext {
    let mut options: BTreeMap<String, String> = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    options.insert("connector".into(), "nexmark".into());
    options.insert("nexmark.table".into(), table.into());
    SourceContext {
        table: "nx".into(),
        options,
        schema,
        subtask,
        parallelism: p,
        batch_size: batch,
        local_time_zone: "UTC".into(),
        restored_splits: None,
        s3: crate::S3Options::default(),
    }
}

fn drain(c: &SourceContext) -> Vec<RecordBatch> {
    let mut r = crate::create_source(c).unwrap();
    let mut out = Vec::new();
    loop {
        match r.poll().unwrap() {
            SourceEvent::Batch(b) => out.push(b),
            SourceEvent::Idle => {}
            SourceEvent::End => return out,
        }
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<Vec<String>> = b
            .columns()
            .iter()
            .map(|c| {
                arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                    .map(|f| (0..b.num_rows()).map(|r| f.value(r).to_string()).collect())
                    .unwrap()
            })
            .collect();
        for r in 0..b.num_rows() {
            out.push(cols.iter().map(|c| c[r].as_str()).collect::<Vec<_>>().join("|"));
        }
    }
    out
}

#[test]
fn the_event_mix_is_1_person_3_auctions_46_bids() {
    assert_eq!((Kind::Person.count_in(50), Kind::Auction.count_in(50), Kind::Bid.count_in(50)), (1, 3, 46));
    assert_eq!(Kind::Bid.count_in(1000) + Kind::Auction.count_in(1000) + Kind::Person.count_in(1000), 1000);
    assert_eq!(Kind::Bid.count_in(3), 0);
    assert_eq!(Kind::Auction.count_in(3), 2);
    for kind in [Kind::Person, Kind::Auction, Kind::Bid] {
        for k in 0..500 {
            let n = kind.event_number(k);
            assert_eq!(kind_of_event(n), kind);
            assert_eq!(kind.count_in(n), k, "{kind:?} #{k} is event {n}");
        }
    }
    let opts = [("number-of-events", "1000")];
    let count =
        |t: &str, k: Kind| drain(&ctx(t, schema(k), &opts, 0, 1, 128)).iter().map(|b| b.num_rows()).sum::<usize>();
    assert_eq!(
        (count("person", Kind::Person), count("auction", Kind::Auction), count("bid", Kind::Bid)),
        (20, 60, 920)
    );
}

#[test]
fn output_is_deterministic_across_runs_parallelism_and_batches() {
    let opts = [("number-of-events", "3000")];
    for (t, k) in [("bid", Kind::Bid), ("auction", Kind::Auction), ("person", Kind::Person)] {
        let one = rows(&drain(&ctx(t, schema(k), &opts, 0, 1, 100)));
        assert_eq!(rows(&drain(&ctx(t, schema(k), &opts, 0, 1, 100))), one);
        assert_eq!(rows(&drain(&ctx(t, schema(k), &opts, 0, 1, 7))), one);
        let mut three: Vec<String> = (0..3).flat_map(|i| rows(&drain(&ctx(t, schema(k), &opts, i, 3, 50)))).collect();
        let mut sorted = one.clone();
        three.sort();
        sorted.sort();
        assert_eq!(three, sorted, "{t} differs at parallelism 3");
        let other = rows(&drain(&ctx(t, schema(k), &[("number-of-events", "3000"), ("seed", "9")], 0, 1, 100)));
        assert_ne!(other, one);
    }
}

#[test]
fn events_follow_the_generator_model() {
    let b = drain(&ctx("bid", schema(Kind::Bid), &[("number-of-events", "50000")], 0, 1, 100_000));
    let b = &b[0];
    let auction = b.column(0).as_primitive::<Int64Type>();
    let bidder = b.column(1).as_primitive::<Int64Type>();
    let price = b.column(2).as_primitive::<Int64Type>();
    let channel = b.column(3).as_string::<i32>();
    let ts = b.column(5).as_primitive::<TimestampMillisecondType>();
    let extra = b.column(6).as_string::<i32>();
    let mut hot = 0;
    for k in 0..b.num_rows() {
        let n = Kind::Bid.event_number(k as u64);
        // 10 000 events per second of event time from 2024-01-01.
        assert_eq!(ts.value(k), DEFAULT_BASE_TIME + (n / 10) as i64);
        let last_auction = last_base0_auction_id(n) as i64 + FIRST_AUCTION_ID;
        assert!(auction.value(k) >= FIRST_AUCTION_ID && auction.value(k) <= last_auction + AUCTION_ID_LEAD as i64);
        if auction.value(k) == (last_base0_auction_id(n) / 100 * 100) as i64 + FIRST_AUCTION_ID {
            hot += 1;
        }
        assert!(bidder.value(k) >= FIRST_PERSON_ID);
        assert!((100..=100_000_000).contains(&price.value(k)), "{}", price.value(k));
        let len = extra.value(k).len();
        assert!((54..=82).contains(&len), "extra of {len}");
    }
    // P(hot auction) = 1/2 plus the random picks that land on it.
    let share = hot as f64 / b.num_rows() as f64;
    assert!((0.48..0.6).contains(&share), "hot share {share}");
    let google = channel.iter().filter(|c| *c == Some("Google")).count() as f64 / b.num_rows() as f64;
    assert!((0.1..0.15).contains(&google), "Google share {google}");
    let persons = drain(&ctx("person", schema(Kind::Person), &[("number-of-events", "500")], 0, 1, 100));
    let ids: Vec<i64> = persons[0].column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, (1000..1010).collect::<Vec<_>>());
    let card = persons[0].column(3).as_string::<i32>().value(0);
    assert!(card.len() == 19 && card.split(' ').all(|g| g.len() == 4), "{card}");
    let auctions = drain(&ctx("auction", schema(Kind::Auction), &[("number-of-events", "100")], 0, 1, 100));
    let a = &auctions[0];
    let ids: Vec<i64> = a.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, vec![1000, 1001, 1002, 1003, 1004, 1005]);
    let (dt, exp) = (
        a.column(5).as_primitive::<TimestampMillisecondType>(),
        a.column(6).as_primitive::<TimestampMillisecondType>(),
    );
    assert!((0..a.num_rows()).all(|r| exp.value(r) > dt.value(r)));
    let (ib, rs) = (a.column(3).as_primitive::<Int64Type>(), a.column(4).as_primitive::<Int64Type>());
    assert!((0..a.num_rows()).all(|r| rs.value(r) >= ib.value(r)));
}

#[test]
fn declared_columns_are_matched_case_insensitively_in_any_order() {
    let s = Arc::new(Schema::new(vec![
        Field::new("DATETIME", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("price", DataType::Int64, false),
    ]));
    let full = drain(&ctx("bid", schema(Kind::Bid), &[("number-of-events", "200")], 0, 1, 1000));
    let part = drain(&ctx("bid", s, &[("number-of-events", "200")], 0, 1, 1000));
    assert_eq!(part[0].num_columns(), 2);
    assert_eq!(
        part[0].column(1).as_primitive::<Int64Type>().values(),
        full[0].column(2).as_primitive::<Int64Type>().values()
    );
    assert_eq!(
        part[0].column(0).as_primitive::<TimestampMillisecondType>().values(),
        full[0].column(5).as_primitive::<TimestampMillisecondType>().values()
    );
}

#[test]
fn bad_tables_are_clear_errors() {
    let opts = |t: &str| -> BTreeMap<String, String> {
        [("connector", "nexmark"), ("nexmark.table", t)].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let s = Arc::new(Schema::new(vec![Field::new("bogus", DataType::Int64, false)]));
    let e = validate_table("bids", &opts("bid"), &s, Role::Source).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "table `bids`: column `bogus` is not a column of nexmark table 'bid'; its columns are: auction BIGINT"
        ),
        "{e}"
    );
    let s = Arc::new(Schema::new(vec![Field::new("price", DataType::Int32, false)]));
    let e = validate_table("bids", &opts("bid"), &s, Role::Source).unwrap_err().to_string();
    assert_eq!(e, "table `bids`: column `price` has type INT, but nexmark table 'bid' makes it BIGINT");
    let e = validate_table("x", &opts("bids"), &schema(Kind::Bid), Role::Source).unwrap_err().to_string();
    assert_eq!(e, "table `x`: option 'nexmark.table' = 'bids' is invalid: expected 'bid', 'auction' or 'person'");
}

#[test]
fn lag_is_the_events_behind_the_rate_or_left_or_unknown() {
    let s = || schema(Kind::Bid);
    let reader = |opts: &[(&str, &str)]| crate::create_source(&ctx("bid", s(), opts, 0, 1, 10)).unwrap();
    // Unthrottled: the events left when bounded, unknown (not 0) when not.
    assert_eq!(reader(&[]).pending_records(), None);
    let bids_of_100 = drain(&ctx("bid", s(), &[("number-of-events", "100")], 0, 1, 10));
    let total: usize = bids_of_100.iter().map(|b| b.num_rows()).sum();
    assert_eq!(reader(&[("number-of-events", "100")]).pending_records(), Some(total as u64));
    // Throttled: the events behind the schedule, capped by those left.
    let mut r = reader(&[("events-per-second", "1000000000"), ("number-of-events", "100")]);
    assert_eq!(r.pending_records(), Some(0), "nothing is due before the first poll");
    assert!(matches!(r.poll().unwrap(), SourceEvent::Batch(_)));
    std::thread::sleep(std::time::Duration::from_millis(2));
    assert_eq!(r.pending_records(), Some(total as u64 - 10));
}
