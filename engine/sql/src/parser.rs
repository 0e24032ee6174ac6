//! Splits a job script into Flink statements and parses each one.
//!
//! sqlparser parses queries, `CREATE VIEW` and `INSERT`; Flink's `CREATE TABLE`
//! (computed columns, `WATERMARK FOR`, `WITH` options), `SET 'k' = 'v'` and
//! `EXECUTE STATEMENT SET BEGIN ... END` are parsed here with sqlparser's token
//! API, so positions in errors stay exact.

use sqlparser::ast::{self, DataType as SqlType, Expr, Ident, ObjectName, Query, Spanned};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use crate::dialect::FlinkDialect;
use crate::error::{Position, SqlError, from_parser_error};

/// One statement of a job.
#[derive(Debug, Clone)]
pub enum Statement {
    CreateTable(Box<CreateTable>),
    CreateView(CreateView),
    Set { key: String, value: String, position: Position },
    Insert(Insert),
}

#[derive(Debug, Clone)]
pub struct CreateTable {
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY (a, b) NOT ENFORCED`: its columns and where it is declared.
    pub primary_key: Option<(Vec<String>, Position)>,
    pub options: Vec<(String, String)>,
    pub position: Position,
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub kind: ColumnKind,
    pub position: Position,
}

#[derive(Debug, Clone)]
pub enum ColumnKind {
    Physical {
        data_type: SqlType,
        not_null: bool,
    },
    Computed(Box<Expr>),
    /// `TYPE METADATA [FROM 'key'] [VIRTUAL]`: a value of the record's metadata
    /// (Kafka's `partition`, `offset`, `timestamp`, ...), read by the
    /// connector. `key` is the column's name when `FROM` is absent.
    Metadata {
        data_type: SqlType,
        not_null: bool,
        key: String,
        is_virtual: bool,
    },
}

#[derive(Debug, Clone)]
pub struct WatermarkDef {
    pub column: String,
    pub expr: Expr,
    pub position: Position,
}

#[derive(Debug, Clone)]
pub struct CreateView {
    pub name: String,
    pub columns: Vec<String>,
    pub query: Box<Query>,
    pub position: Position,
}

#[derive(Debug, Clone)]
pub struct Insert {
    pub table: String,
    pub columns: Vec<Ident>,
    pub query: Box<Query>,
    pub position: Position,
}

/// Parses a whole job script.
pub fn parse_script(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let dialect = FlinkDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::new(Position { line: e.location.line, column: e.location.column }, e.message))?;
    reject_hints(&tokens)?;
    let tokens = local_time_zone_types(tokens);
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let tok = parser.peek_token();
        if tok.token == Token::EOF {
            break;
        }
        let position: Position = tok.span.start.into();
        if parser.parse_keywords(&[Keyword::EXECUTE, Keyword::STATEMENT, Keyword::SET]) {
            expect_word(&mut parser, "BEGIN")?;
            out.extend(parse_set_body(&mut parser)?);
            continue;
        }
        if peek_words(&parser, &["BEGIN", "STATEMENT", "SET"]) {
            for _ in 0..3 {
                parser.next_token();
            }
            let _ = parser.consume_token(&Token::SemiColon);
            out.extend(parse_set_body(&mut parser)?);
            continue;
        }
        let stmt = parse_statement(&mut parser, position)?;
        out.push(stmt);
        let next = parser.peek_token();
        if next.token != Token::SemiColon && next.token != Token::EOF {
            return Err(SqlError::new(
                next.span.start,
                format!("expected ';' after the statement, found {}", next.token),
            ));
        }
    }
    Ok(out)
}

fn parse_set_body(parser: &mut Parser) -> Result<Vec<Statement>, SqlError> {
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let tok = parser.peek_token();
        if tok.token == Token::EOF {
            return Err(SqlError::new(tok.span.start, "statement set is not closed: expected END"));
        }
        if parser.parse_keyword(Keyword::END) {
            return Ok(out);
        }
        let position: Position = tok.span.start.into();
        match parse_statement(parser, position)? {
            s @ Statement::Insert(_) => out.push(s),
            _ => {
                return Err(SqlError::new(position, "a statement set may contain only INSERT INTO statements"));
            }
        }
    }
}

fn parse_statement(parser: &mut Parser, position: Position) -> Result<Statement, SqlError> {
    let perr = |e| from_parser_error(e, position);
    if peek_create(parser, "TABLE") {
        return parse_create_table(parser, position);
    }
    if parser.parse_keyword(Keyword::SET) {
        let key = parse_string_or_ident(parser)?;
        parser.expect_token(&Token::Eq).map_err(perr)?;
        let value = parse_string_or_ident(parser)?;
        return Ok(Statement::Set { key, value, position });
    }
    let stmt = parser.parse_statement().map_err(perr)?;
    match stmt {
        ast::Statement::CreateView(v) => {
            if v.materialized {
                return Err(SqlError::new(position, "materialized views are not supported; use CREATE VIEW"));
            }
            Ok(Statement::CreateView(CreateView {
                name: object_name(&v.name),
                columns: v.columns.iter().map(|c| c.name.value.clone()).collect(),
                query: v.query,
                position,
            }))
        }
        ast::Statement::Insert(ins) => {
            let table = match &ins.table {
                ast::TableObject::TableName(n) => object_name(n),
                ast::TableObject::TableFunction(_) => {
                    return Err(SqlError::new(position, "INSERT INTO a table function is not supported"));
                }
                other => return Err(SqlError::new(position, format!("INSERT INTO {other} is not supported"))),
            };
            if ins.overwrite {
                return Err(SqlError::new(
                    position,
                    "INSERT OVERWRITE is not supported in streaming jobs; use INSERT INTO",
                ));
            }
            if ins.partitioned.is_some() {
                return Err(SqlError::new(position, "INSERT INTO ... PARTITION (...) is not supported"));
            }
            let query =
                ins.source.ok_or_else(|| SqlError::new(position, "INSERT INTO needs a SELECT or VALUES query"))?;
            Ok(Statement::Insert(Insert {
                table,
                columns: ins.columns.iter().filter_map(|c| c.0.last().and_then(|p| p.as_ident()).cloned()).collect(),
                query,
                position,
            }))
        }
        ast::Statement::Query(_) => Err(SqlError::new(
            position,
            "a job runs INSERT INTO statements; a bare SELECT has no sink. Write INSERT INTO a table with 'connector' = 'print' to see results",
        )),
        other => Err(SqlError::new(
            position,
            format!(
                "unsupported statement `{}`; a job supports CREATE TABLE, CREATE VIEW, SET and INSERT INTO (bare or in EXECUTE STATEMENT SET)",
                first_words(&other.to_string())
            ),
        )),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn parse_create_table(parser: &mut Parser, position: Position) -> Result<Statement, SqlError> {
    let perr = |e| from_parser_error(e, position);
    parser.expect_keyword(Keyword::CREATE).map_err(perr)?;
    let _ = parser.parse_keyword(Keyword::TEMPORARY);
    parser.expect_keyword(Keyword::TABLE).map_err(perr)?;
    let _ = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&parser.parse_object_name(false).map_err(perr)?);
    parser.expect_token(&Token::LParen).map_err(perr)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    let mut primary_key = None;
    loop {
        let tok = parser.peek_token();
        let col_pos: Position = tok.span.start.into();
        if is_word(&tok.token, "WATERMARK") {
            parser.next_token();
            parser.expect_keyword(Keyword::FOR).map_err(perr)?;
            let column = parser.parse_identifier().map_err(perr)?.value;
            parser.expect_keyword(Keyword::AS).map_err(perr)?;
            let expr = parser.parse_expr().map_err(perr)?;
            if watermark.is_some() {
                return Err(SqlError::new(col_pos, format!("table `{name}` declares more than one WATERMARK")));
            }
            watermark = Some(WatermarkDef { column, expr, position: col_pos });
        } else if is_word(&tok.token, "PRIMARY") || is_word(&tok.token, "CONSTRAINT") {
            parser.next_token();
            if is_word(&tok.token, "CONSTRAINT") {
                parser.parse_identifier().map_err(perr)?;
                expect_word(parser, "PRIMARY")?;
            }
            parser.expect_keyword(Keyword::KEY).map_err(perr)?;
            let columns = parser
                .parse_parenthesized_column_list(sqlparser::parser::IsOptional::Mandatory, false)
                .map_err(perr)?;
            if !parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]) {
                return Err(SqlError::new(
                    col_pos,
                    "Flink doesn't support ENFORCED mode for PRIMARY KEY constraint. ENFORCED/NOT ENFORCED controls if the constraint checks are performed on the incoming/outgoing data. Flink does not own the data therefore the only supported mode is the NOT ENFORCED mode",
                ));
            }
            if primary_key.is_some() {
                return Err(SqlError::new(col_pos, format!("table `{name}` declares more than one PRIMARY KEY")));
            }
            primary_key = Some((columns.into_iter().map(|c| c.value).collect(), col_pos));
        } else {
            let col_name = parser.parse_identifier().map_err(perr)?.value;
            let kind = if parser.parse_keyword(Keyword::AS) {
                ColumnKind::Computed(Box::new(parser.parse_expr().map_err(perr)?))
            } else {
                let mut data_type = parser.parse_data_type().map_err(perr)?;
                if parser.parse_keywords(&[Keyword::WITH, Keyword::LOCAL, Keyword::TIME, Keyword::ZONE]) {
                    let precision = match &data_type {
                        SqlType::Timestamp(p, _) => p.map(|p| p.to_string()),
                        _ => None,
                    };
                    data_type = SqlType::Custom(
                        ObjectName::from(vec![Ident::new("TIMESTAMP_LTZ")]),
                        precision.into_iter().collect(),
                    );
                }
                let not_null = parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]);
                if !not_null {
                    let _ = parser.parse_keyword(Keyword::NULL);
                }
                if is_word(&parser.peek_token().token, "METADATA") {
                    parser.next_token();
                    let key = if parser.parse_keyword(Keyword::FROM) {
                        parser.parse_literal_string().map_err(perr)?
                    } else {
                        col_name.clone()
                    };
                    let is_virtual = is_word(&parser.peek_token().token, "VIRTUAL");
                    if is_virtual {
                        parser.next_token();
                    }
                    ColumnKind::Metadata { data_type, not_null, key, is_virtual }
                } else {
                    ColumnKind::Physical { data_type, not_null }
                }
            };
            if parser.parse_keyword(Keyword::COMMENT) {
                parser.parse_literal_string().map_err(perr)?;
            }
            columns.push(ColumnDef { name: col_name, kind, position: col_pos });
        }
        if parser.consume_token(&Token::Comma) {
            if parser.peek_token().token == Token::RParen {
                break;
            }
            continue;
        }
        break;
    }
    parser.expect_token(&Token::RParen).map_err(perr)?;
    if parser.parse_keyword(Keyword::COMMENT) {
        parser.parse_literal_string().map_err(perr)?;
    }
    if parser.parse_keywords(&[Keyword::PARTITIONED, Keyword::BY]) {
        return Err(SqlError::new(position, "PARTITIONED BY is not supported yet"));
    }
    let mut options = Vec::new();
    if parser.parse_keyword(Keyword::WITH) {
        parser.expect_token(&Token::LParen).map_err(perr)?;
        loop {
            if parser.peek_token().token == Token::RParen {
                break;
            }
            let key = parser.parse_literal_string().map_err(perr)?;
            parser.expect_token(&Token::Eq).map_err(perr)?;
            let value = parser.parse_literal_string().map_err(perr)?;
            options.push((key, value));
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen).map_err(perr)?;
    }
    if parser.parse_keyword(Keyword::LIKE) {
        return Err(SqlError::new(position, "CREATE TABLE ... LIKE is not supported yet"));
    }
    Ok(Statement::CreateTable(Box::new(CreateTable { name, columns, watermark, primary_key, options, position })))
}

fn parse_string_or_ident(parser: &mut Parser) -> Result<String, SqlError> {
    let tok = parser.next_token();
    match tok.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Word(w) => {
            // An unquoted key such as parallelism.default: join dotted words.
            let mut s = w.value;
            while parser.consume_token(&Token::Period) {
                match parser.next_token().token {
                    Token::Word(w) => {
                        s.push('.');
                        s.push_str(&w.value);
                    }
                    other => return Err(SqlError::new(tok.span.start, format!("expected a key, found {other}"))),
                }
            }
            Ok(s)
        }
        Token::Number(n, _) => Ok(n),
        other => Err(SqlError::new(tok.span.start, format!("expected a quoted string such as 'value', found {other}"))),
    }
}

fn reject_hints(tokens: &[sqlparser::tokenizer::TokenWithSpan]) -> Result<(), SqlError> {
    for t in tokens {
        if let Token::Whitespace(Whitespace::MultiLineComment(c)) = &t.token
            && c.starts_with('+')
        {
            return Err(SqlError::new(
                t.span.start,
                "SQL hints (/*+ ... */) are not supported yet; put the options in the table's WITH clause",
            ));
        }
    }
    Ok(())
}

/// Flink's long form of TIMESTAMP_LTZ, `TIMESTAMP[(p)] WITH LOCAL TIME ZONE`,
/// which sqlparser does not read, as `TIMESTAMP_LTZ[(p)]`: the words after the
/// precision become spaces, so that positions stay those of the script.
fn local_time_zone_types(
    mut tokens: Vec<sqlparser::tokenizer::TokenWithSpan>,
) -> Vec<sqlparser::tokenizer::TokenWithSpan> {
    let significant: Vec<usize> =
        (0..tokens.len()).filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_))).collect();
    let mut k = 0;
    while k < significant.len() {
        let at = |j: usize| significant.get(j).map(|&i| &tokens[i].token);
        if !at(k).is_some_and(|t| is_word(t, "TIMESTAMP")) {
            k += 1;
            continue;
        }
        // TIMESTAMP ( n ) or TIMESTAMP, then WITH LOCAL TIME ZONE.
        let after = if at(k + 1) == Some(&Token::LParen) && at(k + 3) == Some(&Token::RParen) { k + 4 } else { k + 1 };
        let words = ["WITH", "LOCAL", "TIME", "ZONE"];
        if !words.iter().enumerate().all(|(n, w)| at(after + n).is_some_and(|t| is_word(t, w))) {
            k += 1;
            continue;
        }
        if let Token::Word(w) = &mut tokens[significant[k]].token {
            w.value = "TIMESTAMP_LTZ".into();
            w.keyword = sqlparser::keywords::Keyword::NoKeyword;
        }
        for n in 0..words.len() {
            tokens[significant[after + n]].token = Token::Whitespace(Whitespace::Space);
        }
        k = after + words.len();
    }
    tokens
}

fn is_word(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}

fn peek_words(parser: &Parser, words: &[&str]) -> bool {
    words.iter().enumerate().all(|(i, w)| is_word(&parser.peek_nth_token(i).token, w))
}

fn peek_create(parser: &Parser, what: &str) -> bool {
    peek_words(parser, &["CREATE", what]) || peek_words(parser, &["CREATE", "TEMPORARY", what])
}

fn expect_word(parser: &mut Parser, w: &str) -> Result<(), SqlError> {
    let tok = parser.next_token();
    if is_word(&tok.token, w) {
        Ok(())
    } else {
        Err(SqlError::new(tok.span.start, format!("expected {w}, found {}", tok.token)))
    }
}

/// The name of an object as Flink users write it: the last part of a possibly
/// qualified name (catalogs and databases are not modelled yet).
pub fn object_name(n: &ObjectName) -> String {
    n.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()).unwrap_or_default()
}

/// Position of an AST expression, or `fallback` when it has none.
pub fn expr_position(e: &Expr, fallback: Position) -> Position {
    let s = e.span();
    if s.start.line == 0 { fallback } else { s.start.into() }
}
