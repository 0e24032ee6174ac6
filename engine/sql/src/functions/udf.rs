//! One shape for Flink's scalar functions: a definition names the function,
//! its arity with a usage text, a rule for its return type (which also checks
//! the argument types) and a kernel over whole arrays.
//!
//! Arguments arrive as `variadic_any`, so DataFusion never coerces them: every
//! type error comes from the function's own rule and names the function.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion_common::{DataFusionError, Result, ScalarValue};
use datafusion_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use crate::types::flink_name;

/// What a function's rules can see besides their arguments.
pub struct Ctx<'a> {
    /// The session time zone (`table.local-time-zone`).
    pub tz: &'a str,
    /// Rows to produce: the length of the argument arrays, or 1 for a call
    /// without arguments.
    pub rows: usize,
}

/// The return type of a call, from its argument types and any constant arguments.
pub type ReturnRule = fn(&Def, &[DataType], &[Option<&ScalarValue>], &str) -> Result<DataType>;
/// Evaluates a call on arrays of equal length, given the planned return type.
pub type Kernel = fn(&Ctx, &[ArrayRef], &DataType) -> Result<ArrayRef>;

/// A function that is not volatile: its name, usage, argument counts
/// (min, max), return rule and kernel.
pub const fn def(name: &'static str, usage: &'static str, args: (usize, usize), ret: ReturnRule, eval: Kernel) -> Def {
    Def { name, usage, min_args: args.0, max_args: args.1, volatile: false, ret, eval }
}

/// A Flink function: what the SQL front end registers under `name`.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// The lowercase SQL name.
    pub name: &'static str,
    /// The arguments, as the arity error shows them: `(string, regex)`.
    pub usage: &'static str,
    pub min_args: usize,
    pub max_args: usize,
    /// The result changes between calls with the same arguments (the clock).
    pub volatile: bool,
    pub ret: ReturnRule,
    pub eval: Kernel,
}

impl Def {
    /// The name as Flink users write it, for messages.
    pub fn upper(&self) -> String {
        self.name.to_ascii_uppercase()
    }

    /// A planning error about this function.
    pub fn err(&self, msg: impl std::fmt::Display) -> DataFusionError {
        DataFusionError::Plan(format!("{} {msg}", self.upper()))
    }

    /// Checks that argument `i` (0-based) has a type `ok` accepts, or says
    /// which type `what` names was expected.
    pub fn expect(&self, args: &[DataType], i: usize, what: &str, ok: fn(&DataType) -> bool) -> Result<()> {
        match args.get(i) {
            Some(t) if ok(t) || t.is_null() => Ok(()),
            Some(t) => Err(self.err(format_args!("takes {what} as argument {}, not {}", i + 1, flink_name(t)))),
            None => Ok(()),
        }
    }
}

pub fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

pub fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

pub fn is_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, _))
}

pub fn is_boolean(t: &DataType) -> bool {
    matches!(t, DataType::Boolean)
}

/// The element type of an ARRAY type.
pub fn element_type(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) => Some(f.data_type()),
        _ => None,
    }
}

pub fn is_array(t: &DataType) -> bool {
    element_type(t).is_some()
}

/// The function registered for `def` in the session time zone `tz`.
pub fn udf(def: Def, tz: &str) -> Arc<ScalarUDF> {
    let volatility = if def.volatile { Volatility::Volatile } else { Volatility::Immutable };
    let signature = match (def.min_args, def.max_args) {
        // Calls with arguments reach the arity check, which names the function.
        (0, _) => Signature::one_of(vec![TypeSignature::Nullary, TypeSignature::VariadicAny], volatility),
        _ => Signature::variadic_any(volatility),
    };
    Arc::new(ScalarUDF::new_from_impl(FlinkUdf { def, tz: tz.to_string(), signature }))
}

#[derive(Debug)]
struct FlinkUdf {
    def: Def,
    tz: String,
    signature: Signature,
}

impl PartialEq for FlinkUdf {
    fn eq(&self, other: &Self) -> bool {
        self.def.name == other.def.name && self.tz == other.tz
    }
}

impl Eq for FlinkUdf {}

impl Hash for FlinkUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.def.name.hash(state);
        self.tz.hash(state);
    }
}

impl FlinkUdf {
    fn plan(&self, types: &[DataType], scalars: &[Option<&ScalarValue>]) -> Result<DataType> {
        let d = &self.def;
        if types.len() < d.min_args || types.len() > d.max_args {
            return Err(d.err(format_args!("takes {}, not {} argument(s)", d.usage, types.len())));
        }
        (d.ret)(d, types, scalars, &self.tz)
    }
}

impl ScalarUDFImpl for FlinkUdf {
    fn name(&self) -> &str {
        self.def.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.plan(args, &[])
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let t = self.plan(&types, args.scalar_arguments)?;
        Ok(Arc::new(Field::new(self.def.name, t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // Constant arguments (and no arguments) are evaluated once, for one row.
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if all_scalar { 1 } else { args.number_rows };
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(n)).collect::<Result<_>>()?;
        let ctx = Ctx { tz: &self.tz, rows: n };
        let out = (self.def.eval)(&ctx, &arrays, args.return_field.data_type())?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Argument `a` as STRING.
pub fn strings(a: &ArrayRef) -> Result<StringArray> {
    Ok(cast(a, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Argument `a` as BIGINT.
pub fn longs(a: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// The value of a string argument in row `i`, or None when it is NULL.
pub fn str_at(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// The value of an integer argument in row `i`, or None when it is NULL.
pub fn long_at(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// An error raised while evaluating, naming the function.
pub fn exec_err(name: &str, msg: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("{} {msg}", name.to_ascii_uppercase()))
}
