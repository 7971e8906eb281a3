//! The connection record writes take on SQLite: a `rusqlite` connection of
//! this process's own, used inline on the task that writes.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every
//! command is a round trip there (two thread switches and sqlx's `Any`
//! conversions of arguments and rows, ~90k instructions of a PATCH's
//! ~550k). Record writes are the hot write path (external-dns, cert-manager,
//! octoDNS), and a statement of theirs takes microseconds: the WAL is
//! written without `fsync` (synchronous=NORMAL) and checkpointed elsewhere
//! (`checkpoint.rs`). So they run on the calling task, with statements
//! prepared once and kept.
//!
//! The one wait that can be long, for the write lock another connection
//! holds (the pool's, or another process's), is never slept on the
//! runtime's thread: BEGIN IMMEDIATE is tried without a busy handler and
//! retried after an async sleep until [`BUSY_TIMEOUT`].

use super::batch::{Arg, Batch, Columns};
use super::StoreError;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a write waits for the write lock (the pool's `busy_timeout`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Statements kept prepared: a record write runs about a dozen distinct ones.
const PREPARED: usize = 64;

/// The writer connection, shared by the store's clones; a write holds it
/// for its whole transaction.
pub(super) type Writer = Arc<tokio::sync::Mutex<Connection>>;

/// Opens the writer connection to the database file of `url`, or `None`
/// when there is no file another connection can share (an in-memory or
/// read-only database: writes then go through the pool, as before).
pub(super) fn open(url: &str, autocheckpoint_pages: u32) -> Option<Writer> {
    let path = file_of(url)?;
    match connect(path, autocheckpoint_pages) {
        Ok(conn) => Some(Arc::new(tokio::sync::Mutex::new(conn))),
        Err(e) => {
            tracing::warn!(error = %e, "no SQLite writer connection; record writes go through the pool");
            None
        }
    }
}

/// The file path of a `sqlite://PATH?…` or `sqlite:PATH` URL, unless it
/// names an in-memory or read-only database.
fn file_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let special = query
        .split('&')
        .any(|p| p == "mode=memory" || p == "mode=ro" || p == "immutable=1");
    if path.is_empty() || path == ":memory:" || special {
        return None;
    }
    Some(path)
}

fn connect(path: &str, autocheckpoint_pages: u32) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The pool's settings (mod.rs), but no busy handler: see the module doc.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=0; \
         PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint={autocheckpoint_pages};"
    ))?;
    conn.set_prepared_statement_cache_capacity(PREPARED);
    Ok(conn)
}

/// Begins a write transaction, waiting (asleep, off the thread) for the
/// write lock while another connection holds it. (`&mut`: a future that
/// holds a `&Connection` across the sleep would not be `Send`.)
pub(super) async fn begin(conn: &mut Connection) -> Result<(), StoreError> {
    // A transaction a failed ROLLBACK left open would refuse the BEGIN.
    rollback(conn)?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let begun = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.raw_execute());
        match begun {
            Ok(_) => return Ok(()),
            Err(e) if busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Rolls back the open transaction, if SQLite has not already (it does on
/// its own after SQLITE_FULL and some I/O errors).
pub(super) fn rollback(conn: &Connection) -> Result<(), StoreError> {
    if !conn.is_autocommit() {
        conn.prepare_cached("ROLLBACK")?.raw_execute()?;
    }
    Ok(())
}

fn busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}

/// Runs `batch`'s statements in order; returns the rows they return.
pub(super) fn run(conn: &Connection, batch: Batch) -> Result<Vec<LiteRow>, StoreError> {
    let mut rows = Vec::new();
    for (sql, args) in batch.into_statements() {
        let mut stmt = conn.prepare_cached(&sql)?;
        for i in 1..=stmt.parameter_count() {
            // `$n` is a named parameter to SQLite; n says which argument.
            let arg = stmt
                .parameter_name(i)
                .and_then(|p| p.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| args.get(n.checked_sub(1)?))
                .ok_or_else(|| {
                    StoreError::Unsupported(format!("parameter {i} of `{sql}` has no argument"))
                })?;
            match arg {
                Arg::Int(v) => stmt.raw_bind_parameter(i, v)?,
                Arg::Text(v) => stmt.raw_bind_parameter(i, v.as_str())?,
            }
        }
        // Named once, at the first row: most statements return none.
        let width = stmt.column_count();
        let mut columns: Option<Arc<[String]>> = None;
        let mut returned = stmt.raw_query();
        while let Some(row) = returned.next()? {
            let columns = match &columns {
                Some(c) => c.clone(),
                None => {
                    let named: Arc<[String]> = (0..width)
                        .map(|i| row.as_ref().column_name(i).map(String::from))
                        .collect::<Result<_, _>>()?;
                    columns.insert(named).clone()
                }
            };
            let values = (0..width)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(v) => Value::Int(v),
                        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Real(_) | ValueRef::Blob(_) => Value::Other,
                    })
                })
                .collect::<Result<Vec<_>, rusqlite::Error>>()?;
            rows.push(LiteRow { columns, values });
        }
    }
    Ok(rows)
}

/// A column's value as pdm stores them.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    /// A REAL or a BLOB: pdm stores neither.
    Other,
}

/// A row a statement on the writer connection returned.
#[derive(Debug, Clone)]
pub struct LiteRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl LiteRow {
    fn value(&self, column: &str) -> Result<&Value, StoreError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))
    }
}

impl Columns for LiteRow {
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        match self.value(column)? {
            Value::Int(v) => Ok(*v),
            v => Err(StoreError::Corrupt(format!(
                "{column}: {v:?} is not an integer"
            ))),
        }
    }

    fn text(&self, column: &str) -> Result<String, StoreError> {
        match self.value(column)? {
            Value::Text(v) => Ok(v.clone()),
            v => Err(StoreError::Corrupt(format!("{column}: {v:?} is not text"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_get_a_writer() {
        assert_eq!(file_of("sqlite:///tmp/a.db"), Some("/tmp/a.db"));
        assert_eq!(file_of("sqlite://pdm.db?mode=rwc"), Some("pdm.db"));
        assert_eq!(file_of("sqlite:pdm.db"), Some("pdm.db"));
        assert_eq!(file_of("sqlite::memory:"), None);
        assert_eq!(file_of("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(file_of("sqlite://x.db?mode=ro"), None);
        assert_eq!(file_of("postgres://u@h/db"), None);
    }

    fn batch(statements: &[(&str, Vec<Arg>)]) -> Batch {
        let mut b = Batch::default();
        for (sql, args) in statements {
            b.push(*sql, args.clone());
        }
        b
    }

    /// Arguments go where their `$n` says, in any order and repeated, and
    /// the rows come back with their columns by name.
    #[test]
    fn statements_bind_by_number_and_return_rows() {
        let conn = Connection::open_in_memory().unwrap();
        let rows = run(
            &conn,
            batch(&[
                ("CREATE TABLE t (k TEXT, v BIGINT, n BIGINT)", vec![]),
                (
                    "INSERT INTO t (k, v, n) VALUES ($2, $1, $1) RETURNING k, v, n",
                    vec![7.into(), "a".into()],
                ),
                ("SELECT NULL AS z", vec![]),
            ]),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].text("k").unwrap(), "a");
        assert_eq!(rows[0].int("v").unwrap(), 7);
        assert_eq!(rows[0].int("n").unwrap(), 7);
        assert!(rows[0].int("k").is_err(), "text is not an integer");
        assert!(rows[0].text("missing").is_err());
        assert!(rows[1].text("z").is_err(), "NULL is not text");
        let missing = run(&conn, batch(&[("SELECT $2 AS x", vec![1.into()])]));
        assert!(matches!(missing, Err(StoreError::Unsupported(_))));
    }

    /// BEGIN IMMEDIATE waits for a write lock another connection holds and
    /// then takes it, without a busy handler of SQLite's.
    #[tokio::test]
    async fn begin_waits_for_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        // The file exists first: in pdm the pool creates it.
        let theirs = Connection::open(&path).unwrap();
        theirs
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v BIGINT)")
            .unwrap();
        let ours = connect(path.to_str().unwrap(), 1000).unwrap();
        theirs.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            theirs
                .execute_batch("INSERT INTO t VALUES (1); COMMIT")
                .unwrap();
        });
        let started = Instant::now();
        let mut ours = ours;
        begin(&mut ours).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
        run(&ours, batch(&[("INSERT INTO t VALUES (2)", vec![])])).unwrap();
        ours.execute_batch("COMMIT").unwrap();
        release.join().unwrap();
        let n: i64 = ours
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        rollback(&ours).unwrap();
    }
}
