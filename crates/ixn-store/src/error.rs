//! Store errors.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A query that cannot be compiled to SQL (e.g. a condition on a user-data key that is not
    /// a custom property). The client's fault.
    #[error("query: {0}")]
    Query(String),
    /// Stored data that cannot be read back (a bug or a damaged database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("store: {0}")]
    Other(String),
}
