//! Writing to PostgreSQL: group-commit batches as one statement per table (UNNEST of column
//! arrays), and custom-property columns added and back-filled at run time.

use super::*;

pub(super) fn custom_sql_type(p: &CustomProperty) -> &'static str {
    if p.ty == CustomType::String {
        "text"
    } else {
        "bigint"
    }
}

pub(super) fn upsert_sql(custom: &[CustomProperty]) -> String {
    let mut cols: Vec<String> = COLUMNS.iter().map(|p| rows::quoted(p.column())).collect();
    let mut types: Vec<&str> = COLUMNS
        .iter()
        .map(|p| {
            if p.ty() == SysPropType::Str {
                "text"
            } else {
                "bigint"
            }
        })
        .collect();
    cols.push("user_data".to_owned());
    types.push("bytea");
    for p in custom {
        cols.push(rows::custom_column(p));
        types.push(custom_sql_type(p));
    }
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    let updates: Vec<String> = cols[1..].iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    format!(
        "INSERT INTO interactions ({}) SELECT * FROM UNNEST({}) ON CONFLICT (id) DO UPDATE SET {}",
        cols.join(", "),
        arrays.join(", "),
        updates.join(", ")
    )
}

/// One column of a multi-row upsert, as a PostgreSQL array parameter.
pub(super) type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// Turns rows into column arrays, in the order of [`upsert_sql`].
pub(super) fn upsert_params<'a>(rows_in: &[&'a Interaction], custom: &[CustomProperty]) -> Vec<Param<'a>> {
    let mut params: Vec<Param<'a>> = Vec::with_capacity(COLUMNS.len() + 1 + custom.len());
    for p in COLUMNS {
        if p.ty() == SysPropType::Str {
            let col: Vec<Option<&'a str>> = rows_in
                .iter()
                .map(|it| match it.system(p) {
                    Scalar::Str(s) => Some(s),
                    _ => None,
                })
                .collect();
            params.push(Box::new(col));
        } else {
            let col: Vec<Option<i64>> = rows_in
                .iter()
                .map(|it| match it.system(p) {
                    Scalar::Int(n) => Some(n),
                    Scalar::Ts(t) => Some(t.millis()),
                    Scalar::Str(_) | Scalar::Null => None,
                })
                .collect();
            params.push(Box::new(col));
        }
    }
    let user_data: Vec<Vec<u8>> = rows_in.iter().map(|it| it.user_data.encode()).collect();
    params.push(Box::new(user_data));
    for p in custom {
        let values = rows_in.iter().map(|it| rows::custom_value(&it.user_data, p));
        if p.ty == CustomType::String {
            let col: Vec<Option<String>> = values
                .map(|v| {
                    if let CustomValue::Text(s) = v {
                        Some(s)
                    } else {
                        None
                    }
                })
                .collect();
            params.push(Box::new(col));
        } else {
            let col: Vec<Option<i64>> = values
                .map(|v| {
                    if let CustomValue::Int(n) = v {
                        Some(n)
                    } else {
                        None
                    }
                })
                .collect();
            params.push(Box::new(col));
        }
    }
    params
}

/// The rows to write: a batch naming one interaction twice keeps its last row (one multi-row
/// upsert may not touch a row twice).
pub(super) fn last_rows(batch: &WriteBatch) -> Vec<&Interaction> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.interactions.len());
    for (i, it) in batch.interactions.iter().enumerate() {
        last.insert(it.id.as_str(), i);
    }
    batch
        .interactions
        .iter()
        .enumerate()
        .filter(|(i, it)| last[it.id.as_str()] == *i)
        .map(|(_, it)| it)
        .collect()
}

pub(super) async fn prepared(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, Statement>,
    sql: &str,
) -> Result<Statement, StoreError> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = tx.prepare(sql).await?;
    cache.insert(sql.to_owned(), s.clone());
    Ok(s)
}

pub(super) fn as_refs<'a>(params: &'a [Param<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

pub(super) async fn write_batch(
    w: &mut Writer,
    custom: &[CustomProperty],
    batch: &WriteBatch,
) -> Result<(), StoreError> {
    let Writer { client, statements } = w;
    let tx = client.transaction().await?;
    let rows_in = last_rows(batch);
    if !rows_in.is_empty() {
        let stmt = prepared(&tx, statements, &upsert_sql(custom)).await?;
        for chunk in rows_in.chunks(UPSERT_CHUNK) {
            let params = upsert_params(chunk, custom);
            tx.execute(&stmt, &as_refs(&params)).await?;
        }
    }
    if !batch.events.is_empty() {
        let stmt = prepared(&tx, statements, OUTBOX_INSERT).await?;
        let seqs: Vec<i64> = batch.events.iter().map(|e| rows::sql_u64(e.seq)).collect();
        let times: Vec<i64> = batch.events.iter().map(|e| e.time.millis()).collect();
        let names: Vec<&str> = batch.events.iter().map(|e| e.name.as_str()).collect();
        let ids: Vec<Option<&str>> = batch
            .events
            .iter()
            .map(|e| e.interaction_id.as_ref().map(InteractionId::as_str))
            .collect();
        let payloads: Vec<&str> = batch.events.iter().map(|e| e.payload.as_str()).collect();
        tx.execute(&stmt, &[&seqs, &times, &names, &ids, &payloads])
            .await?;
        let max = batch.events.iter().map(|e| e.seq).max().unwrap_or(0).to_string();
        let stmt = prepared(&tx, statements, LAST_SEQ_UPSERT).await?;
        tx.execute(&stmt, &[&max]).await?;
    }
    if !batch.meta.is_empty() {
        let mut last: HashMap<&str, &str> = HashMap::new();
        for (k, v) in &batch.meta {
            last.insert(k, v);
        }
        let (keys, values): (Vec<&str>, Vec<&str>) = last.into_iter().unzip();
        let stmt = prepared(&tx, statements, META_UPSERT).await?;
        tx.execute(&stmt, &[&keys, &values]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Adds missing custom columns and their indexes, and fills new columns of existing rows.
pub(super) async fn add_custom_columns(
    client: &mut Client,
    props: &[CustomProperty],
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    let existing: HashMap<String, String> = tx
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'interactions'",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut added = Vec::new();
    for p in props {
        rows::check_custom_name(p)?;
        let col = rows::custom_column(p);
        let sql_type = custom_sql_type(p);
        match existing.get(&col.to_ascii_lowercase()) {
            Some(ty) if ty == sql_type => {}
            Some(ty) => {
                return Err(StoreError::Other(format!(
                    "custom property {} has column type {ty} in the store but is configured as {:?}",
                    p.name, p.ty
                )));
            }
            None => {
                tracing::info!(column = %col, "adding custom property column");
                tx.batch_execute(&format!(
                    "ALTER TABLE interactions ADD COLUMN {col} {sql_type}; \
                     CREATE INDEX IF NOT EXISTS ix_interactions_{col} ON interactions (tenant, {col});"
                ))
                .await?;
                added.push(p.clone());
            }
        }
    }
    if !added.is_empty() {
        backfill(&tx, &added).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Fills newly added custom columns from the user data of rows written before they existed,
/// a page of rows at a time (keyset by id).
pub(super) async fn backfill(tx: &Transaction<'_>, added: &[CustomProperty]) -> Result<(), StoreError> {
    let sets: Vec<String> = added
        .iter()
        .map(|p| format!("{c} = u.{c}", c = rows::custom_column(p)))
        .collect();
    let cols: Vec<String> = added.iter().map(rows::custom_column).collect();
    let arrays: Vec<String> = added
        .iter()
        .enumerate()
        .map(|(j, p)| format!("${}::{}[]", j + 2, custom_sql_type(p)))
        .collect();
    let update = tx
        .prepare(&format!(
            "UPDATE interactions SET {} FROM UNNEST($1::text[], {}) AS u(id, {}) WHERE interactions.id = u.id",
            sets.join(", "),
            arrays.join(", "),
            cols.join(", ")
        ))
        .await?;
    let select = tx
        .prepare("SELECT id, user_data FROM interactions WHERE id > $1 ORDER BY id LIMIT 5000")
        .await?;
    let mut after = String::new();
    loop {
        let page = tx.query(&select, &[&after]).await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.try_get(0)?;
        let mut ids: Vec<String> = Vec::with_capacity(page.len());
        let mut values: Vec<Vec<CustomValue>> = Vec::with_capacity(page.len());
        for r in &page {
            let ud = UserData::decode(r.try_get(1)?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            ids.push(r.try_get(0)?);
            values.push(added.iter().map(|p| rows::custom_value(&ud, p)).collect());
        }
        let mut params: Vec<Param<'_>> = vec![Box::new(ids)];
        for (j, p) in added.iter().enumerate() {
            let col = values.iter().map(|v| v[j].clone());
            if p.ty == CustomType::String {
                params.push(Box::new(
                    col.map(|v| {
                        if let CustomValue::Text(s) = v {
                            Some(s)
                        } else {
                            None
                        }
                    })
                    .collect::<Vec<_>>(),
                ));
            } else {
                params.push(Box::new(
                    col.map(|v| {
                        if let CustomValue::Int(n) = v {
                            Some(n)
                        } else {
                            None
                        }
                    })
                    .collect::<Vec<_>>(),
                ));
            }
        }
        tx.execute(&update, &as_refs(&params)).await?;
    }
}
