//! Statements sent to the database together. On SQLite every statement is
//! a round trip to the connection's worker thread (two thread switches), so
//! a write of six statements pays twelve; a batch is one round trip there:
//! its statements go as one multi-statement query whose `$n` name the
//! batch's arguments. Postgres prepares one command per statement, so there
//! each statement runs on its own, with its own arguments. A write's BEGIN
//! and COMMIT ride in its batches too (`write.rs`).

use super::sqlite_writer::LiteRow;
use super::StoreError;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

/// Reading a row's columns by name, whichever connection returned it.
pub(super) trait Columns {
    /// An INTEGER / BIGINT column.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// A TEXT column.
    fn text(&self, column: &str) -> Result<String, StoreError>;
}

impl Columns for AnyRow {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }

    fn text(&self, column: &str) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
}

/// A row a write transaction's batch returned (`write.rs`).
pub(super) enum Row {
    /// From a connection of the pool.
    Pool(AnyRow),
    /// From the SQLite writer connection.
    Sqlite(LiteRow),
}

impl Columns for Row {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        match self {
            Row::Pool(r) => r.int(column),
            Row::Sqlite(r) => r.int(column),
        }
    }

    fn text(&self, column: &str) -> Result<String, StoreError> {
        match self {
            Row::Pool(r) => r.text(column),
            Row::Sqlite(r) => r.text(column),
        }
    }
}

/// One bound value.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    /// A BIGINT.
    Int(i64),
    /// A TEXT.
    Text(String),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

/// Statements run in order, in the caller's transaction.
#[derive(Debug, Default)]
pub(super) struct Batch {
    statements: Vec<(String, Vec<Arg>)>,
}

impl Batch {
    /// Adds `sql`, whose `$1`, `$2`, … are `args` in order. `sql` holds no
    /// `$` other than its placeholders (no literal with one).
    pub(super) fn push(&mut self, sql: impl Into<String>, args: Vec<Arg>) {
        self.statements.push((sql.into(), args));
    }

    /// Puts `sql`, a statement without arguments, before the others.
    pub(super) fn prepend(&mut self, sql: &str) {
        self.statements.insert(0, (sql.to_string(), Vec::new()));
    }

    /// The statements and their arguments, in order.
    pub(super) fn into_statements(self) -> Vec<(String, Vec<Arg>)> {
        self.statements
    }

    /// Runs the statements; returns the rows they return (`RETURNING`), in
    /// order. Stops at the first error (the caller's transaction then rolls
    /// back, as with separate statements).
    pub(super) async fn run(self, conn: &mut AnyConnection) -> Result<Vec<AnyRow>, StoreError> {
        if self.statements.is_empty() {
            return Ok(Vec::new());
        }
        if conn.backend_name() != "SQLite" || self.statements.len() == 1 {
            let mut rows = Vec::new();
            for (sql, args) in &self.statements {
                rows.extend(bind(sqlx::query(sql), args).fetch_all(&mut *conn).await?);
            }
            return Ok(rows);
        }
        let (sql, args) = self.joined();
        Ok(bind(sqlx::query(&sql), &args).fetch_all(&mut *conn).await?)
    }

    /// One SQL text of all statements, each statement's placeholders moved
    /// past those of the statements before it, and the arguments of all.
    fn joined(self) -> (String, Vec<Arg>) {
        let len = self.statements.iter().map(|(t, _)| t.len() + 8).sum();
        let mut sql = String::with_capacity(len);
        let mut all = Vec::with_capacity(self.statements.iter().map(|(_, a)| a.len()).sum());
        for (text, args) in self.statements {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            renumber_into(&mut sql, &text, all.len());
            all.extend(args);
        }
        (sql, all)
    }
}

/// Appends `sql` to `out` with each `$n` made `$(n + offset)`. Digits by
/// hand: `write!` cost ~300 instructions a placeholder, 17k a PATCH.
fn renumber_into(out: &mut String, sql: &str, offset: usize) {
    if offset == 0 {
        out.push_str(sql);
        return;
    }
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => push_decimal(out, n + offset),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// `sql` with each `$n` made `$(n + offset)`.
#[cfg(test)]
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::new();
    renumber_into(&mut out, sql, offset);
    out
}

fn bind<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Int(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.as_str()),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Row};

    #[test]
    fn placeholders_move_past_the_earlier_statements() {
        assert_eq!(renumbered("a = $1 AND b = $12", 3), "a = $4 AND b = $15");
        assert_eq!(renumbered("no placeholders", 5), "no placeholders");
        assert_eq!(renumbered("x = $2", 0), "x = $2");
        assert_eq!(renumbered("$9, $10, $99", 1), "$10, $11, $100");
        assert_eq!(renumbered("cost $", 4), "cost $");
        let mut b = Batch::default();
        b.push(
            "UPDATE t SET v = $1 WHERE k = $2",
            vec![1.into(), "a".into()],
        );
        b.push(
            "INSERT INTO t (k, v) VALUES ($1, $2) RETURNING k",
            vec!["b".into(), 2.into()],
        );
        let (sql, args) = b.joined();
        assert_eq!(
            sql,
            "UPDATE t SET v = $1 WHERE k = $2;\nINSERT INTO t (k, v) VALUES ($3, $4) RETURNING k"
        );
        assert_eq!(args.len(), 4);
    }

    /// The batch's statements all run, in order, with their own arguments,
    /// and an error in one stops it (on SQLite, one query of all of them).
    #[tokio::test]
    async fn a_batch_runs_each_statement_with_its_arguments() {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (k, v) VALUES ('a', 0)")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut b = Batch::default();
        b.push(
            "UPDATE t SET v = $1 WHERE k = $2",
            vec![7.into(), "a".into()],
        );
        b.push(
            "INSERT INTO t (k, v) VALUES ($1, $2) RETURNING v",
            vec!["b".into(), 9.into()],
        );
        b.push(
            "INSERT INTO t (k, v) VALUES ($1, $2) RETURNING v",
            vec!["c".into(), 11.into()],
        );
        let rows = b.run(&mut conn).await.unwrap();
        let returned: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>("v")).collect();
        assert_eq!(returned, vec![9, 11]);
        let a: i64 = sqlx::query("SELECT v FROM t WHERE k = 'a'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get("v");
        assert_eq!(a, 7);

        let mut bad = Batch::default();
        bad.push(
            "UPDATE t SET v = $1 WHERE k = $2",
            vec![1.into(), "a".into()],
        );
        bad.push(
            "INSERT INTO t (k, v) VALUES ($1, $2)",
            vec!["a".into(), 2.into()],
        );
        bad.push(
            "UPDATE t SET v = $1 WHERE k = $2",
            vec![3.into(), "b".into()],
        );
        assert!(bad.run(&mut conn).await.is_err(), "duplicate key");
        let b: i64 = sqlx::query("SELECT v FROM t WHERE k = 'b'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get("v");
        assert_eq!(b, 9, "the statement after the failing one did not run");
    }
}
