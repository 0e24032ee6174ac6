//! The Flink dialect for sqlparser.
//!
//! Flink's SQL is close to ANSI, with backtick-quoted identifiers. The one piece of
//! expression syntax sqlparser lacks is the table argument of a window TVF,
//! `TUMBLE(TABLE t [PARTITION BY k], DESCRIPTOR(ts), ...)`: the dialect parses
//! `TABLE name [PARTITION BY cols]` inside function arguments into a marker call,
//! [`TABLE_ARG_FUNCTION`], which the planner recognises. `DESCRIPTOR(col)` parses
//! as an ordinary function call. Flink's MAP value constructor `MAP[k1, v1, k2,
//! v2, ...]` parses into a call of [`crate::map_value::MAP_VALUE_CALL`] (named
//! at the `MAP` keyword, so errors point there). `FOR SYSTEM_TIME AS OF` after
//! a table name
//! parses as sqlparser's table version. `WATERMARK` and computed columns in `CREATE
//! TABLE` are parsed by [`crate::parser`].

use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    ObjectNamePart,
};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token;

/// Name of the marker call produced for a TVF table argument. Its first argument
/// is the table name as an identifier; the rest are the `PARTITION BY` columns.
pub const TABLE_ARG_FUNCTION: &str = "__sluice_table_arg";

#[derive(Debug, Default, Clone, Copy)]
pub struct FlinkDialect;

impl Dialect for FlinkDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_' || ch == '$'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    /// `MAP<K, V>` as a column type.
    fn supports_map_literal_with_angle_brackets(&self) -> bool {
        true
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    /// `GROUP BY GROUPING SETS (...)`, `ROLLUP (...)` and `CUBE (...)`.
    fn supports_group_by_expr(&self) -> bool {
        true
    }

    fn supports_multiline_comment_hints(&self) -> bool {
        true
    }

    /// `FROM t FOR SYSTEM_TIME AS OF o.ts` (a temporal join). sqlparser then
    /// also reads its other dialects' versions (`AT (...)`, `BEFORE (...)`,
    /// `CHANGES (...)`, `TIMESTAMP AS OF`, `VERSION AS OF`), which the planner
    /// refuses.
    fn supports_table_versioning(&self) -> bool {
        true
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let is_map_value = matches!(&parser.peek_token().token, Token::Word(w) if w.keyword == Keyword::MAP)
            && parser.peek_nth_token(1).token == Token::LBracket;
        if is_map_value {
            return Some(parse_map_value(parser));
        }
        let is_table_arg = matches!(&parser.peek_token().token, Token::Word(w) if w.keyword == Keyword::TABLE)
            && matches!(&parser.peek_nth_token(1).token, Token::Word(_));
        if !is_table_arg {
            return None;
        }
        Some(parse_table_arg(parser))
    }
}

/// `MAP[k1, v1, k2, v2, ...]`: at least one key and value, in pairs.
fn parse_map_value(parser: &mut Parser) -> Result<Expr, ParserError> {
    let map = parser.peek_token().span;
    parser.expect_keyword(Keyword::MAP)?;
    parser.expect_token(&Token::LBracket)?;
    let args = parser.parse_comma_separated(Parser::parse_expr)?;
    parser.expect_token(&Token::RBracket)?;
    if !args.len().is_multiple_of(2) {
        return Err(ParserError::ParserError(format!(
            "Map requires an even number of arguments (k1, v1, k2, v2, ...), not {}{}",
            args.len(),
            map.start
        )));
    }
    Ok(call(Ident::with_span(map, crate::map_value::MAP_VALUE_CALL), args))
}

/// A plain call of `name` with `args`.
pub(crate) fn call(name: Ident, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn parse_table_arg(parser: &mut Parser) -> Result<Expr, ParserError> {
    parser.expect_keyword(Keyword::TABLE)?;
    let name = parser.parse_object_name(false)?;
    let mut args = vec![Expr::CompoundIdentifier(name.0.iter().filter_map(|p| p.as_ident().cloned()).collect())];
    if parser.parse_keywords(&[Keyword::PARTITION, Keyword::BY]) {
        let parenthesized = parser.consume_token(&Token::LParen);
        loop {
            args.push(parser.parse_expr()?);
            if !parser.consume_token(&Token::Comma) {
                break;
            }
            // A comma after an unparenthesized PARTITION BY list starts the next
            // TVF argument (`DESCRIPTOR(...)`), unless another column follows.
            if !parenthesized && is_descriptor_ahead(parser) {
                parser.prev_token();
                break;
            }
        }
        if parenthesized {
            parser.expect_token(&Token::RParen)?;
        }
    }
    Ok(call(TABLE_ARG_FUNCTION.into(), args))
}

fn is_descriptor_ahead(parser: &Parser) -> bool {
    match &parser.peek_token().token {
        Token::Word(w) => w.value.eq_ignore_ascii_case("DESCRIPTOR") || w.keyword == Keyword::INTERVAL,
        _ => true,
    }
}
