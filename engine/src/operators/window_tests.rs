//! Window assignment and time shifts: property and example tests of [`super::assign`].
use super::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn tumble_contains_ts(ts in -1_000_000_000_000i64..1_000_000_000_000, size in 1i64..100_000_000) {
        let mut w = Vec::new();
        assign(&WindowKind::Tumble { size, offset: 0 }, ts, &mut w);
        prop_assert_eq!(w.len(), 1);
        let (s, e) = w[0];
        prop_assert!(s <= ts && ts < e);
        prop_assert_eq!(e - s, size);
        prop_assert_eq!(s.rem_euclid(size), 0);
    }

    #[test]
    fn hop_windows_are_exactly_those_containing_ts(ts in -1_000_000_000i64..1_000_000_000, slide in 1i64..10_000, k in 1i64..8) {
        let size = slide * k;
        let mut w = Vec::new();
        assign(&WindowKind::Hop { slide, size, offset: 0 }, ts, &mut w);
        prop_assert_eq!(w.len() as i64, k);
        for &(s, e) in &w {
            prop_assert!(s <= ts && ts < e);
            prop_assert_eq!(e - s, size);
            prop_assert_eq!(s.rem_euclid(slide), 0);
        }
    }

    #[test]
    fn cumulate_windows_share_start_and_grow_by_step(ts in -1_000_000_000i64..1_000_000_000, step in 1i64..10_000, k in 1i64..8) {
        let max_size = step * k;
        let mut w = Vec::new();
        assign(&WindowKind::Cumulate { step, max_size, offset: 0 }, ts, &mut w);
        prop_assert!(!w.is_empty());
        let start = w[0].0;
        prop_assert_eq!(start.rem_euclid(max_size), 0);
        for (i, &(s, e)) in w.iter().enumerate() {
            prop_assert_eq!(s, start);
            prop_assert!(s <= ts && ts < e);
            prop_assert_eq!((e - s) % step, 0);
            if i > 0 { prop_assert_eq!(e - w[i - 1].1, step); }
        }
        prop_assert_eq!(w.last().map(|x| x.1), Some(start + max_size));
        // The first window is the smallest one that contains ts.
        prop_assert!(w[0].1 - step <= ts);
    }
}

#[test]
fn negative_timestamps_align_down() {
    let mut w = Vec::new();
    assign(&WindowKind::Tumble { size: 10, offset: 0 }, -1, &mut w);
    assert_eq!(w, vec![(-10, 0)]);
}

#[test]
fn offsets_shift_where_windows_start() {
    let mut w = Vec::new();
    // TUMBLE of 10 with offset 3: [3, 13), [-7, 3).
    assign(&WindowKind::Tumble { size: 10, offset: 3 }, 12, &mut w);
    assert_eq!(w, vec![(3, 13)]);
    assign(&WindowKind::Tumble { size: 10, offset: 3 }, 2, &mut w);
    assert_eq!(w, vec![(-7, 3)]);
    // A negative offset is the same as size - |offset|.
    assign(&WindowKind::Tumble { size: 10, offset: -7 }, 2, &mut w);
    assert_eq!(w, vec![(-7, 3)]);
    // HOP starts on the slide's grid, shifted.
    assign(&WindowKind::Hop { slide: 5, size: 10, offset: 1 }, 12, &mut w);
    assert_eq!(w, vec![(11, 21), (6, 16)]);
    // CUMULATE's windows start on the max size's grid, shifted.
    assign(&WindowKind::Cumulate { step: 5, max_size: 20, offset: 4 }, 12, &mut w);
    assert_eq!(w, vec![(4, 14), (4, 19), (4, 24)]);
}

#[test]
fn shift_to_local_and_back() {
    let s = TimeShift::new(Some("Asia/Shanghai")).unwrap();
    assert_eq!(s.to_local(0), 8 * 3600 * 1000);
    assert_eq!(s.to_utc(8 * 3600 * 1000, 0), 0);
}
