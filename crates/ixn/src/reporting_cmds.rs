//! `ixn reporting status`: the event loggers of a running server, their backlog and errors.

use std::process::ExitCode;

use serde_json::Value as Json;

use crate::cli::Connection;

/// Prints the status of every logger; exits with 1 when any of them is in alarm.
pub async fn status(conn: &Connection, json: bool) -> anyhow::Result<ExitCode> {
    let status: Json = crate::client_cmds::rest_client(conn)?
        .get_json("/v1/reporting/status")
        .await?;
    let loggers = status["loggers"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!(
            "last event seq {}, outbox depth {}",
            status["last_seq"], status["outbox_depth"]
        );
        let width = loggers
            .iter()
            .filter_map(|l| l["name"].as_str().map(str::len))
            .max()
            .unwrap_or(6)
            .max(6);
        println!(
            "{:<width$}  {:<9}  {:>10}  {:>8}  {:>11}  {:>8}  {:>7}  {:<5}  LAST ERROR",
            "LOGGER", "PROTOCOL", "CURSOR", "DEPTH", "OLDEST (s)", "EVENTS/s", "ERRORS", "ALARM"
        );
        for l in &loggers {
            let oldest = l["oldest_age_ms"]
                .as_u64()
                .map_or("-".to_owned(), |ms| format!("{:.1}", ms as f64 / 1000.0));
            println!(
                "{:<width$}  {:<9}  {:>10}  {:>8}  {:>11}  {:>8.0}  {:>7}  {:<5}  {}",
                l["name"].as_str().unwrap_or("?"),
                l["protocol"].as_str().unwrap_or("?"),
                l["cursor"],
                l["depth"],
                oldest,
                l["events_per_second"].as_f64().unwrap_or(0.0),
                l["errors_total"],
                if l["alarm"].as_bool().unwrap_or(false) {
                    "YES"
                } else {
                    "no"
                },
                l["last_error"].as_str().unwrap_or("-"),
            );
        }
    }
    let alarm = loggers.iter().any(|l| l["alarm"].as_bool().unwrap_or(false));
    Ok(if alarm {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
