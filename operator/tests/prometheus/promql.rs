//! PromQL text from Prometheus's parse tree (the JSON of `/api/v1/parse_query`, which its
//! UI's tree view uses), the metric selectors in it, and an expression without its
//! thresholds: what tests/prometheus.rs evaluates.

use std::collections::BTreeSet;

use serde_json::{Value, json};

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
}

pub fn selector(n: &Value) -> String {
    assert!(n["offset"].as_i64().unwrap_or(0) == 0 && n["timestamp"].is_null(), "offset and @ are not printed: {n}");
    let matchers: Vec<String> = n["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}{}{}", m["name"].as_str().unwrap(), m["type"].as_str().unwrap(), json!(m["value"])))
        .collect();
    format!("{{{}}}", matchers.join(", "))
}

/// PromQL text for an AST node (every binary operand in parentheses).
pub fn print(n: &Value) -> String {
    match n["type"].as_str().unwrap_or_default() {
        "numberLiteral" => n["val"].as_str().unwrap().to_string(),
        "stringLiteral" => json!(n["val"]).to_string(),
        "parenExpr" => format!("({})", print(&n["expr"])),
        "unaryExpr" => format!("{}({})", n["op"].as_str().unwrap(), print(&n["expr"])),
        "vectorSelector" => selector(n),
        "matrixSelector" => format!("{}[{}ms]", selector(n), n["range"]),
        "subquery" => {
            let step = n["step"].as_i64().unwrap_or(0);
            let step = if step > 0 { format!("{step}ms") } else { String::new() };
            format!("({})[{}ms:{step}]", print(&n["expr"]), n["range"])
        }
        "call" => {
            let args: Vec<String> = n["args"].as_array().unwrap().iter().map(print).collect();
            format!("{}({})", n["func"]["name"].as_str().unwrap(), args.join(", "))
        }
        "aggregation" => {
            let grouping = strings(&n["grouping"]);
            let by = match (n["without"].as_bool().unwrap_or(false), grouping.is_empty()) {
                (true, _) => format!(" without ({})", grouping.join(", ")),
                (false, false) => format!(" by ({})", grouping.join(", ")),
                (false, true) => String::new(),
            };
            let param = if n["param"].is_null() { String::new() } else { format!("{}, ", print(&n["param"])) };
            format!("{}{by} ({param}{})", n["op"].as_str().unwrap(), print(&n["expr"]))
        }
        "binaryExpr" => {
            let mut op = n["op"].as_str().unwrap().to_string();
            if n["bool"].as_bool().unwrap_or(false) {
                op.push_str(" bool");
            }
            let m = &n["matching"];
            if !m.is_null() {
                let labels = strings(&m["labels"]);
                if m["on"].as_bool().unwrap_or(false) {
                    op.push_str(&format!(" on ({})", labels.join(", ")));
                } else if !labels.is_empty() {
                    op.push_str(&format!(" ignoring ({})", labels.join(", ")));
                }
                let include = strings(&m["include"]).join(", ");
                match m["card"].as_str() {
                    Some("many-to-one") => op.push_str(&format!(" group_left ({include})")),
                    Some("one-to-many") => op.push_str(&format!(" group_right ({include})")),
                    _ => {}
                }
            }
            format!("({}) {op} ({})", print(&n["lhs"]), print(&n["rhs"]))
        }
        other => panic!("an AST node of type '{other}' is not printed: {n}"),
    }
}

/// Every metric selector in the tree.
pub fn selectors(n: &Value, out: &mut BTreeSet<String>) {
    match n["type"].as_str() {
        Some("vectorSelector") | Some("matrixSelector") => {
            out.insert(selector(n));
        }
        _ => {
            if let Some(o) = n.as_object() {
                for (k, v) in o {
                    if k == "matchers" {
                        continue;
                    }
                    if v.is_object() {
                        selectors(v, out);
                    } else if let Some(a) = v.as_array() {
                        a.iter().for_each(|x| selectors(x, out));
                    }
                }
            }
        }
    }
}

fn is_constant(n: &Value) -> bool {
    match n["type"].as_str() {
        Some("numberLiteral") => true,
        Some("parenExpr") | Some("unaryExpr") => is_constant(&n["expr"]),
        Some("binaryExpr") => is_constant(&n["lhs"]) && is_constant(&n["rhs"]),
        _ => false,
    }
}

const COMPARISONS: [&str; 6] = ["==", "!=", ">", "<", ">=", "<="];

/// The node without its thresholds: a comparison with a constant becomes its other side,
/// and `absent(x)` becomes `x`.
pub fn strip(n: &Value) -> Value {
    let mut n = n.clone();
    match n["type"].as_str().unwrap_or_default() {
        "binaryExpr" => {
            let op = n["op"].as_str().unwrap_or_default();
            if COMPARISONS.contains(&op) && !n["bool"].as_bool().unwrap_or(false) {
                if is_constant(&n["rhs"]) {
                    return strip(&n["lhs"]);
                }
                if is_constant(&n["lhs"]) {
                    return strip(&n["rhs"]);
                }
            }
            n["lhs"] = strip(&n["lhs"]);
            n["rhs"] = strip(&n["rhs"]);
        }
        "call" if ["absent", "absent_over_time"].contains(&n["func"]["name"].as_str().unwrap_or_default()) => {
            return strip(&n["args"][0]);
        }
        "call" => {
            let args: Vec<Value> = n["args"].as_array().unwrap().iter().map(strip).collect();
            n["args"] = Value::Array(args);
        }
        "aggregation" | "parenExpr" | "unaryExpr" | "subquery" => n["expr"] = strip(&n["expr"]),
        _ => {}
    }
    n
}

/// The parts of a rule's expression that must each return data: split at the top-level
/// `or` and `unless`, thresholds stripped.
pub fn parts(n: &Value) -> Vec<Value> {
    match n["type"].as_str() {
        Some("parenExpr") => parts(&n["expr"]),
        Some("binaryExpr") if ["or", "unless"].contains(&n["op"].as_str().unwrap_or_default()) => {
            let mut v = parts(&n["lhs"]);
            v.extend(parts(&n["rhs"]));
            v
        }
        _ => vec![strip(n)],
    }
}

#[test]
fn promql_is_printed_back_from_the_ast_and_thresholds_are_stripped() {
    // A hand-written AST as /api/v1/parse_query gives it, for
    // `sum by (job) (rate(x{a="b"}[5m])) > (14.4 * (1 - 0.99)) unless absent(y)`.
    let sel = |name: &str| {
        json!({"type": "vectorSelector", "name": name, "offset": 0, "timestamp": null,
        "matchers": [{"name": "__name__", "type": "=", "value": name}]})
    };
    let x = json!({"type": "matrixSelector", "name": "x", "range": 300000, "offset": 0, "timestamp": null,
        "matchers": [{"name": "a", "type": "=", "value": "b"}, {"name": "__name__", "type": "=", "value": "x"}]});
    let lit = |v: &str| json!({"type": "numberLiteral", "val": v});
    let bin = |op: &str, lhs: Value, rhs: Value| {
        let mut n = json!({"type": "binaryExpr", "op": op, "matching": null, "bool": false});
        n["lhs"] = lhs;
        n["rhs"] = rhs;
        n
    };
    let paren = |e: Value| json!({"type": "parenExpr", "expr": e});
    let threshold = paren(bin("*", lit("14.4"), paren(bin("-", lit("1"), lit("0.99")))));
    let sum = json!({"type": "aggregation", "op": "sum", "grouping": ["job"], "without": false, "param": null,
        "expr": {"type": "call", "func": {"name": "rate"}, "args": [x]}});
    let cmp = bin(">", sum, threshold);
    let absent = json!({"type": "call", "func": {"name": "absent"}, "args": [sel("y")]});
    let all = json!({"type": "binaryExpr", "op": "unless", "lhs": cmp, "rhs": absent, "bool": false,
        "matching": {"card": "many-to-many", "labels": [], "on": false, "include": []}});
    assert_eq!(
        print(&all),
        r#"((sum by (job) (rate({a="b", __name__="x"}[300000ms]))) > (((14.4) * (((1) - (0.99)))))) unless (absent({__name__="y"}))"#
    );
    let p: Vec<String> = parts(&all).iter().map(print).collect();
    assert_eq!(p, [r#"sum by (job) (rate({a="b", __name__="x"}[300000ms]))"#, r#"{__name__="y"}"#]);
    let mut s = BTreeSet::new();
    selectors(&all, &mut s);
    assert_eq!(s.into_iter().collect::<Vec<_>>(), [r#"{__name__="y"}"#, r#"{a="b", __name__="x"}"#]);
}
