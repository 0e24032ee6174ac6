//! Interval joins: a join of two append-only inputs whose condition bounds the
//! distance of their event times on both sides, as Flink's
//! `IntervalJoinUtil.extractWindowBoundsFromPredicate`:
//! `l.ts BETWEEN r.ts - INTERVAL '1' HOUR AND r.ts + INTERVAL '1' HOUR`, or two
//! comparisons such as `l.ts >= r.ts AND l.ts < r.ts + INTERVAL '10' MINUTE`.
//!
//! The bounds are `lower <= l.ts - r.ts <= upper` in milliseconds; a strict
//! comparison moves its bound by 1 ms, as in Flink. With only one side bounded
//! the join stays a regular one (its state is not bounded by time), as Flink
//! plans it.

use datafusion_common::{Column, ScalarValue};
use datafusion_expr::{Between, BinaryExpr, Operator};

use crate::expr::Expr;
use crate::logical::TimeInterval;

/// `column + offset` (ms) when `e` is a time column plus or minus an interval.
fn time_plus(e: &Expr) -> Option<(&Column, i64)> {
    match e {
        Expr::Column(c) => Some((c, 0)),
        Expr::BinaryExpr(BinaryExpr { left, op: op @ (Operator::Plus | Operator::Minus), right }) => {
            let Expr::Column(c) = left.as_ref() else { return None };
            let ms = match right.as_ref() {
                Expr::Literal(v, _) => interval_ms(v)?,
                _ => return None,
            };
            Some((c, if *op == Operator::Plus { ms } else { -ms }))
        }
        _ => None,
    }
}

fn interval_ms(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::IntervalDayTime(Some(d)) => Some(i64::from(d.days) * 86_400_000 + i64::from(d.milliseconds)),
        ScalarValue::IntervalMonthDayNano(Some(m)) if m.months == 0 => {
            Some(i64::from(m.days) * 86_400_000 + m.nanoseconds.div_euclid(1_000_000))
        }
        _ => None,
    }
}

/// A bound on `l - r`: `(Some(lower), None)` or `(None, Some(upper))`.
type Bound = (Option<i64>, Option<i64>);

/// `a op b` with `a = x + da`, `b = y + db` where {x, y} = {l, r}: a bound on `l - r`.
fn compare(a: &Expr, op: Operator, b: &Expr, l: &Column, r: &Column) -> Option<Bound> {
    let ((x, da), (y, db)) = (time_plus(a)?, time_plus(b)?);
    // Normalize to `l - r  op'  c`.
    let (op, c) = if x == l && y == r {
        (op, db - da)
    } else if x == r && y == l {
        (op.swap()?, da - db)
    } else {
        return None;
    };
    Some(match op {
        Operator::GtEq => (Some(c), None),
        Operator::Gt => (Some(c + 1), None),
        Operator::LtEq => (None, Some(c)),
        Operator::Lt => (None, Some(c - 1)),
        _ => return None,
    })
}

/// The bounds the conjuncts put on `l - r`, when they bound it on both sides.
pub(super) fn interval_bounds(conjuncts: &[Expr], l: &Column, r: &Column) -> Option<TimeInterval> {
    let (mut lower, mut upper): (Option<i64>, Option<i64>) = (None, None);
    let mut add = |(lo, up): Bound| {
        if let Some(v) = lo {
            lower = Some(lower.map_or(v, |x: i64| x.max(v)));
        }
        if let Some(v) = up {
            upper = Some(upper.map_or(v, |x: i64| x.min(v)));
        }
    };
    for c in conjuncts {
        match c {
            Expr::Between(Between { expr, negated: false, low, high }) => {
                if let Some(b) = compare(expr, Operator::GtEq, low, l, r) {
                    add(b);
                }
                if let Some(b) = compare(expr, Operator::LtEq, high, l, r) {
                    add(b);
                }
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if let Some(b) = compare(left, *op, right, l, r) {
                    add(b);
                }
            }
            _ => {}
        }
    }
    Some(TimeInterval { left_time: 0, right_time: 0, lower: lower?, upper: upper? })
}

#[cfg(test)]
mod tests {
    use datafusion_expr::{col, lit};

    use super::*;

    fn ms_interval(ms: i64) -> Expr {
        lit(ScalarValue::IntervalMonthDayNano(Some(arrow::datatypes::IntervalMonthDayNano::new(0, 0, ms * 1_000_000))))
    }

    #[test]
    fn bounds_come_from_between_and_comparisons_in_either_order() {
        let (l, r) = (Column::from_qualified_name("a.ts"), Column::from_qualified_name("b.ts"));
        let (lt, rt) = (col("a.ts"), col("b.ts"));
        let between = Expr::Between(Between::new(
            Box::new(lt.clone()),
            false,
            Box::new(rt.clone() - ms_interval(10)),
            Box::new(rt.clone() + ms_interval(20)),
        ));
        let b = interval_bounds(&[between], &l, &r).unwrap();
        assert_eq!((b.lower, b.upper), (-10, 20));
        // b.ts > a.ts - 5 (a - b < 5, so <= 4) and a.ts >= b.ts.
        let cs = [rt.clone().gt(lt.clone() - ms_interval(5)), lt.clone().gt_eq(rt.clone())];
        let b = interval_bounds(&cs, &l, &r).unwrap();
        assert_eq!((b.lower, b.upper), (0, 4));
        // One side only: not an interval join.
        assert!(interval_bounds(&[lt.gt_eq(rt)], &l, &r).is_none());
    }
}
