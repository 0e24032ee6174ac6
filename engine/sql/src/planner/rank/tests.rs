//! Table tests of the Top-N planning decisions.

use datafusion_expr::lit;

use super::*;

/// The column `name` of a schema.
fn col(name: &str) -> Expr {
    Expr::Column(datafusion_common::Column::from_name(name))
}

fn is_rn(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == "rn")
}

fn bounds_of(conds: Vec<Expr>) -> Option<Bounds> {
    let mut b = Bounds { lo: 1, hi: None };
    for c in &conds {
        b = narrow(b, c, &is_rn)?;
    }
    Some(b)
}

#[test]
fn conditions_on_the_row_number_narrow_the_range() {
    type Range = Option<(i128, Option<i128>)>;
    let cases: Vec<(Vec<Expr>, Range)> = vec![
        (vec![col("rn").lt_eq(lit(3i64))], Some((1, Some(3)))),
        (vec![col("rn").lt(lit(3i64))], Some((1, Some(2)))),
        (vec![col("rn").eq(lit(1i64))], Some((1, Some(1)))),
        (vec![lit(5i64).gt_eq(col("rn"))], Some((1, Some(5)))),
        (vec![col("rn").gt(lit(2i64)), col("rn").lt_eq(lit(5i64))], Some((3, Some(5)))),
        (vec![col("rn").between(lit(2i64), lit(4i64))], Some((2, Some(4)))),
        (vec![col("rn").gt_eq(lit(2i64))], Some((2, None))),
        (vec![col("rn").not_eq(lit(2i64))], None),
        (vec![col("x").lt_eq(lit(2i64))], None),
        (vec![col("rn").lt_eq(col("x"))], None),
    ];
    for (conds, want) in cases {
        let text = format!("{conds:?}");
        assert_eq!(bounds_of(conds).map(|b| (b.lo, b.hi)), want, "{text}");
    }
}

/// An aggregation over a Top-N filters it with the planner's `filter`:
/// the WHERE sets the range, the row number stays, the rest is a filter.
#[test]
fn a_filter_over_a_pending_top_n_sets_its_range() {
    use crate::parser::{Statement, parse_script};
    let sql = "CREATE TABLE t (k STRING, v INT) WITH ('connector' = 'datagen');
CREATE VIEW r AS SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM t;
INSERT INTO o SELECT * FROM r WHERE rn <= 2 AND v > 0;";
    let statements = parse_script(sql).unwrap();
    let mut planner = Planner {
        exprs: crate::expr::ExprPlanner::new("UTC"),
        tz: "UTC".into(),
        tables: Default::default(),
        views: Default::default(),
    };
    let mut view = None;
    let mut where_expr = None;
    for s in &statements {
        match s {
            Statement::CreateTable(ct) => {
                let def = crate::catalog::define_table(ct, &planner.exprs, "UTC").unwrap();
                planner.tables.insert(ct.name.clone(), Arc::new(def));
            }
            Statement::CreateView(v) => view = Some(planner.plan_query(&v.query, v.position).unwrap()),
            Statement::Insert(ins) => {
                if let ast::SetExpr::Select(sel) = ins.query.body.as_ref() {
                    where_expr = sel.selection.clone();
                }
            }
            _ => {}
        }
    }
    let (view, w) = (view.unwrap(), where_expr.unwrap());
    assert!(pending_rank(&view));
    let pos = Position { line: 1, column: 1 };
    let rel = planner.filter(view, &w, pos).unwrap();
    assert!(check_ranked(&rel).is_ok());
    let PlanNode::Filter { input, predicate } = &rel.node else { panic!("{:?}", rel.node) };
    assert_eq!(predicate.to_string(), "v > Int32(0)");
    let PlanNode::Project { input, .. } = &input.node else { panic!("{:?}", input.node) };
    let PlanNode::Rank { range, output_rank, .. } = &input.node else { panic!("{:?}", input.node) };
    assert_eq!((*range, *output_rank), (Some(RankRange { start: 1, end: 2 }), true));
    assert_eq!(rel.schema.fields().len(), 3, "k, v, rn");
}

#[test]
fn a_top1_on_event_time_without_the_row_number_is_a_deduplication() {
    let top1 = RankRange { start: 1, end: 1 };
    let top3 = RankRange { start: 1, end: 3 };
    let cases = [
        (top1, false, Some(true), RankPlan::Deduplicate { keep_last: false }),
        (top1, false, Some(false), RankPlan::Deduplicate { keep_last: true }),
        (top1, true, Some(true), RankPlan::TopN { range: top1, output_rank: true }),
        (top3, false, Some(true), RankPlan::TopN { range: top3, output_rank: false }),
        (top1, false, None, RankPlan::TopN { range: top1, output_rank: false }),
    ];
    for (range, output_rank, rowtime, want) in cases {
        assert_eq!(choose(range, output_rank, rowtime), want, "{range} {output_rank} {rowtime:?}");
    }
}
