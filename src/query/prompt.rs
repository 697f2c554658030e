//! The interactive prompt of `query` (when no SQL is given and stdin is a terminal): a line
//! editor with history, statements ended by `;` (over several lines if need be), and a few
//! backslash commands (`\d`, `\d TABLE`, `\format`, `\functions`, `\?`, `\q`).

use std::io::Write;
use std::path::PathBuf;

use deltalake::arrow::datatypes::DataType;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::{QueryFormat, QuerySession, kind_label, parse_format};
use crate::error::{Error, Result};

const HELP: &str = "\
Statements end with `;` and may span lines. Ctrl-C drops the statement being typed; Ctrl-D quits.
  \\d             list the tables (outputs, ledger, inputs, reference) and the absent ones
  \\d TABLE       the columns of TABLE and their types
  \\format NAME   print results as table, csv or json
  \\functions     the project's own SQL functions
  \\q             quit
The dialect is DataFusion's SQL (docs/QUERY.md); SHOW TABLES and information_schema work too.";

const FUNCTIONS: &str = "\
gateway_usage(response STRING) -> STRUCT<kind, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, error_code, limit_source>
    reads a payload response body once: its shape (`kind`), normalised token counts, the
    error code of an error envelope and, for REQUEST_LIMIT_EXCEEDED, which limit refused it.
    Example: SELECT gateway_usage(response)['kind'] AS kind, count(*) FROM payload GROUP BY 1;
trace_token_usage(json STRING) -> STRUCT<input_tokens, output_tokens>
    MLflow's mlflow.trace.tokenUsage metadata as token counts (NULL when absent or unreadable).
    Example: SELECT trace_token_usage(trace_metadata['mlflow.trace.tokenUsage']) FROM traces LIMIT 5;";

/// Where the prompt keeps its history: `$GATEWAY_ANALYTICS_HISTORY`, else
/// `~/.gateway_analytics_history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GATEWAY_ANALYTICS_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".gateway_analytics_history"))
}

/// Whether `buffer` holds a complete statement: its last character outside string literals,
/// quoted names and comments is `;`.
pub fn statement_complete(buffer: &str) -> bool {
    let mut last = None;
    let mut chars = buffer.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                // A doubled quote inside a literal closes and reopens it: the same outcome.
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return false;
                }
                last = Some(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                let mut closed = false;
                for d in chars.by_ref() {
                    if previous == '*' && d == '/' {
                        closed = true;
                        break;
                    }
                    previous = d;
                }
                if !closed {
                    return false;
                }
            }
            c if c.is_whitespace() => {}
            c => last = Some(c),
        }
    }
    last == Some(';')
}

enum Next {
    Continue,
    Quit,
}

/// Runs the prompt until `\q` or end of input.
pub async fn prompt(session: &QuerySession, format: QueryFormat) -> Result<()> {
    let readline = |e: ReadlineError| Error::Io { context: "the prompt".into(), source: std::io::Error::other(e) };
    let mut editor = DefaultEditor::new().map_err(readline)?;
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is the first session.
        let _ = editor.load_history(path);
    }
    let names: Vec<&str> = session.tables.iter().map(|t| t.name.as_str()).collect();
    eprintln!("gateway-analytics query: DataFusion SQL over {}.", names.join(", "));
    for note in session.absent_notes() {
        eprintln!("{note}");
    }
    eprintln!("End statements with `;`. \\? for help, \\q to quit.");
    let mut format = if format == QueryFormat::Parquet {
        eprintln!("(Parquet cannot be printed at the prompt: results are shown as tables)");
        QueryFormat::Table
    } else {
        format
    };
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "sql> " } else { "...> " };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && line.trim_start().starts_with('\\') {
                    let _ = editor.add_history_entry(line.trim());
                    match command(line.trim(), session, &mut format).await {
                        Next::Continue => continue,
                        Next::Quit => break,
                    }
                }
                if buffer.is_empty() && line.trim().is_empty() {
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !statement_complete(&buffer) {
                    continue;
                }
                let sql = std::mem::take(&mut buffer);
                let _ = editor.add_history_entry(sql.trim());
                if let Some(path) = &history {
                    let _ = editor.save_history(path);
                }
                match session.run(&sql).await {
                    Ok(results) => {
                        let mut out = std::io::stdout().lock();
                        for result in &results {
                            if let Err(error) = result.write(format, &mut out) {
                                eprintln!("error: {error}");
                            }
                        }
                        let _ = out.flush();
                    }
                    Err(error) => eprintln!("error: {error}"),
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(error) => return Err(readline(error)),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

async fn command(line: &str, session: &QuerySession, format: &mut QueryFormat) -> Next {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default();
    let argument = words.next();
    match (name, argument) {
        ("\\q" | "\\quit", _) => return Next::Quit,
        ("\\?" | "\\h" | "\\help", _) => eprintln!("{HELP}"),
        ("\\functions", _) => eprintln!("{FUNCTIONS}"),
        ("\\format", Some(value)) => match parse_format(value) {
            Some(QueryFormat::Parquet) => {
                eprintln!("Parquet cannot be printed at the prompt: use `query ... --out FILE`")
            }
            Some(chosen) => *format = chosen,
            None => eprintln!("unknown format `{value}`: table, csv or json"),
        },
        ("\\format", None) => eprintln!("format: {format:?}"),
        ("\\d", None) => {
            for table in &session.tables {
                println!("{:<28} {:<10} {}", table.name, kind_label(table), table.location);
            }
            for absent in &session.absent {
                println!("{:<28} {:<10} {}", absent.name, "absent", absent.why);
            }
        }
        ("\\d", Some(table)) => match session.ctx.table_provider(table).await {
            Ok(provider) => {
                for field in provider.schema().fields() {
                    let nullable = if field.is_nullable() { "" } else { " NOT NULL" };
                    println!("{:<32} {}{nullable}", field.name(), sql_type(field.data_type()));
                }
            }
            Err(_) => match session.absent.iter().find(|a| a.name == table) {
                Some(absent) => eprintln!("`{table}` is absent: {}", absent.why),
                None => eprintln!("no table `{table}`: \\d lists them"),
            },
        },
        _ => eprintln!("unknown command `{line}`: \\? lists the commands"),
    }
    Next::Continue
}

/// A column type as SQL spells it (`STRING`, `BIGINT`, `DECIMAL(38,12)`, `MAP<STRING, STRING>`).
pub fn sql_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "STRING".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP_NTZ".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
            format!("ARRAY<{}>", sql_type(item.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => {
                format!("MAP<{}, {}>", sql_type(fields[0].data_type()), sql_type(fields[1].data_type()))
            }
            other => other.to_string(),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> =
                fields.iter().map(|f| format!("{}: {}", f.name(), sql_type(f.data_type()))).collect();
            format!("STRUCT<{}>", inner.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_ends_at_a_semicolon_outside_literals_and_comments() {
        assert!(statement_complete("SELECT 1;"));
        assert!(statement_complete("SELECT 1;\n  "));
        assert!(statement_complete("SELECT 1 -- a comment;\n;"));
        assert!(!statement_complete("SELECT 1"));
        assert!(!statement_complete("SELECT ';"));
        assert!(!statement_complete("SELECT 1 -- done;"));
        assert!(!statement_complete("SELECT 1 /* ; */"));
        assert!(statement_complete("SELECT 'it''s';"));
        assert!(statement_complete("SELECT \"a;b\" FROM t;"));
        assert!(!statement_complete("SELECT 1 /* open;"));
    }

    #[test]
    fn types_read_as_sql() {
        use deltalake::arrow::datatypes::{Field, Fields};
        assert_eq!(sql_type(&DataType::Utf8View), "STRING");
        assert_eq!(sql_type(&DataType::Decimal128(38, 12)), "DECIMAL(38,12)");
        let entries = Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ])),
            false,
        );
        assert_eq!(sql_type(&DataType::Map(entries.into(), false)), "MAP<STRING, STRING>");
    }
}
