//! The BI questions of `warehouse/queries/`, asked of PostgreSQL's `warehouse` schema (the demo
//! prints their answers; the README shows them).

use sqlx::PgPool;

use crate::WarehouseError;

/// One question: its file and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub file: &'static str,
    pub title: &'static str,
    pub text: &'static str,
}

macro_rules! query {
    ($name:literal, $title:literal) => {
        Query {
            file: concat!("queries/", $name, ".sql"),
            title: $title,
            text: include_str!(concat!("../../../warehouse/queries/", $name, ".sql")),
        }
    };
}

/// The questions, in the order the demo asks them.
pub const QUERIES: [Query; 3] = [
    query!(
        "by_procedure_type",
        "Telemetry against outcomes, by procedure type"
    ),
    query!("by_facility", "Utilisation and upkeep, by facility"),
    query!("by_quarter", "The trend, by quarter"),
];

/// A query's answer: column names, then rows of values as text ("" for NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Runs `query` and returns every value as text, columns in the query's order.
pub async fn ask(pool: &PgPool, query: &Query) -> Result<Answer, WarehouseError> {
    // json_each_text keeps a json object's keys in the order the query named the columns.
    let sql = format!(
        "SELECT r.n, e.key, coalesce(e.value, '') FROM \
           (SELECT row_number() OVER () AS n, row_to_json(q) AS j FROM ({}) q) r, \
           json_each_text(r.j) e ORDER BY r.n",
        query.text.trim().trim_end_matches(';')
    );
    let cells: Vec<(i64, String, String)> =
        sqlx::query_as(&sql)
            .fetch_all(pool)
            .await
            .map_err(|source| WarehouseError::Postgres {
                what: format!("answer warehouse/{}", query.file),
                source,
            })?;
    let mut answer = Answer {
        columns: Vec::new(),
        rows: Vec::new(),
    };
    let mut current = None;
    for (n, key, value) in cells {
        if current != Some(n) {
            current = Some(n);
            answer.rows.push(Vec::new());
        }
        if answer.rows.len() == 1 {
            answer.columns.push(key);
        }
        if let Some(row) = answer.rows.last_mut() {
            row.push(value);
        }
    }
    Ok(answer)
}

impl std::fmt::Display for Answer {
    /// An aligned text table: text left, numbers right.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|v| v.chars().count())
                    .chain(std::iter::once(self.columns[i].chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .all(|v| v.is_empty() || v.parse::<f64>().is_ok())
            })
            .collect();
        let line = |f: &mut std::fmt::Formatter<'_>, cells: &[String]| -> std::fmt::Result {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                let w = widths.get(i).copied().unwrap_or(0);
                if numeric.get(i).copied().unwrap_or(false) {
                    out.push_str(&format!("{c:>w$}"));
                } else {
                    out.push_str(&format!("{c:<w$}"));
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(f, &self.columns)?;
        for r in &self.rows {
            line(f, r)?;
        }
        Ok(())
    }
}
