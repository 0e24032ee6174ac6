//! What the join operators' unit tests share.

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::util::display::array_value_to_string;

use crate::operators::{StreamEvent, epoch_millis};

/// The events as lines: a watermark as `W<ms>`, a row as `[v, ...]` with
/// timestamps in epoch ms.
pub fn show(out: Vec<StreamEvent>) -> Vec<String> {
    let mut lines = Vec::new();
    for ev in out {
        match ev {
            StreamEvent::Watermark(w) => lines.push(format!("W{w}")),
            StreamEvent::Batch(b) => {
                for r in 0..b.num_rows() {
                    let vals: Vec<String> = b
                        .columns()
                        .iter()
                        .map(|c| {
                            if c.is_null(r) {
                                "null".into()
                            } else if let DataType::Timestamp(..) = c.data_type() {
                                epoch_millis(c).unwrap().value(r).to_string()
                            } else {
                                array_value_to_string(c, r).unwrap()
                            }
                        })
                        .collect();
                    lines.push(format!("[{}]", vals.join(", ")));
                }
            }
        }
    }
    lines
}
