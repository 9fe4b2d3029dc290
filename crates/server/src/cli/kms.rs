//! `strata admin kms ...`: the KMS and its keys through Strata's admin API
//! (`/strata/admin/v1/kms/...`), with human output or `--json` (the server's answer).
//! `kms key rotate` follows the re-seal job with a progress bar (lines when stdout is not a
//! terminal) until it finishes.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::Context;
use http::Method;
use serde_json::Value;
use strata_client::Client;

use super::{KmsCommand, KmsKeyCommand};

/// How often a running rotation's progress is read.
const POLL: Duration = Duration::from_millis(500);

async fn call(client: &Client, method: Method, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
    client
        .admin_json(method, path, query, None)
        .await
        .map_err(|e| super::admin::describe(e, "admin kms"))
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encoding JSON")?
    );
    Ok(())
}

fn number(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn key_line(key: &Value) -> String {
    format!(
        "{}  {} version(s){}",
        text(key, "name"),
        number(key, "versions"),
        if key.get("default").and_then(Value::as_bool) == Some(true) {
            "  (default)"
        } else {
            ""
        }
    )
}

fn rotation_line(r: &Value) -> String {
    let state = if r.get("running").and_then(Value::as_bool) == Some(true) {
        "running"
    } else {
        "finished"
    };
    let total = if r.get("counted").and_then(Value::as_bool) == Some(true) {
        number(r, "total").to_string()
    } else {
        "?".to_owned()
    };
    format!(
        "rotation of {} to version {}: {state}, {} of {total} re-sealed, {} failed, {} versions scanned",
        text(r, "key"),
        number(r, "target_version"),
        number(r, "rewrapped"),
        number(r, "failed"),
        number(r, "scanned"),
    )
}

/// `strata admin kms ...`.
pub async fn kms(client: &Client, command: KmsCommand) -> anyhow::Result<()> {
    match command {
        KmsCommand::Status { json, .. } => {
            let answer = call(client, Method::GET, strata_s3::KMS_STATUS_PATH, &[]).await?;
            if json {
                return print_json(&answer);
            }
            println!("backend: {}", text(&answer, "backend"));
            println!("default key: {}", text(&answer, "default_key"));
            for key in answer["keys"].as_array().into_iter().flatten() {
                println!("  {}", key_line(key));
            }
            if !answer["rotation"].is_null() {
                println!("{}", rotation_line(&answer["rotation"]));
            }
            Ok(())
        }
        KmsCommand::Key { command } => key(client, command).await,
    }
}

async fn key(client: &Client, command: KmsKeyCommand) -> anyhow::Result<()> {
    match command {
        KmsKeyCommand::Create { name, json, .. } => {
            let answer = call(client, Method::POST, strata_s3::KMS_KEYS_PATH, &[("name", &name)]).await?;
            if json {
                return print_json(&answer);
            }
            println!("Created KMS key {name}.");
            Ok(())
        }
        KmsKeyCommand::List { json, .. } => {
            let answer = call(client, Method::GET, strata_s3::KMS_KEYS_PATH, &[]).await?;
            if json {
                return print_json(&answer);
            }
            for key in answer.as_array().into_iter().flatten() {
                println!("{}", key_line(key));
            }
            Ok(())
        }
        KmsKeyCommand::Status { name, json, .. } => {
            let answer = call(
                client,
                Method::GET,
                strata_s3::KMS_KEY_STATUS_PATH,
                &[("name", &name)],
            )
            .await?;
            if json {
                return print_json(&answer);
            }
            println!("{}", key_line(&answer["key"]));
            let (enc, dec) = (
                text(&answer, "encryption_error"),
                text(&answer, "decryption_error"),
            );
            println!(
                "  seal: {}  open: {}",
                if enc.is_empty() { "ok" } else { enc },
                if dec.is_empty() { "ok" } else { dec }
            );
            if !answer["rotation"].is_null() {
                println!("  {}", rotation_line(&answer["rotation"]));
            }
            Ok(())
        }
        KmsKeyCommand::Rotate {
            name,
            existing,
            no_wait,
            json,
            ..
        } => {
            let existing = if existing { "true" } else { "false" };
            let started = call(
                client,
                Method::POST,
                strata_s3::KMS_KEY_ROTATE_PATH,
                &[("name", &name), ("existing", existing)],
            )
            .await?;
            if !json {
                println!(
                    "KMS key {name} now seals with version {}; re-sealing data keys.",
                    number(&started, "target_version")
                );
            }
            if no_wait {
                return if json { print_json(&started) } else { Ok(()) };
            }
            let last = follow(client, &name, json).await?;
            if json {
                return print_json(&last);
            }
            println!("{}", rotation_line(&last));
            if number(&last, "failed") > 0 {
                anyhow::bail!(
                    "{} data keys could not be re-sealed (they still open with their old key version): {}",
                    number(&last, "failed"),
                    text(&last, "last_error")
                );
            }
            Ok(())
        }
    }
}

/// Shows the rotation of `name` until it finishes; returns its last status.
async fn follow(client: &Client, name: &str, quiet: bool) -> anyhow::Result<Value> {
    let live = !quiet && std::io::stdout().is_terminal();
    let bar = live.then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stdout());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:40} {pos}/{len} re-sealed {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut last_line = String::new();
    loop {
        let answer = call(
            client,
            Method::GET,
            strata_s3::KMS_KEY_STATUS_PATH,
            &[("name", name)],
        )
        .await?;
        let rotation = answer["rotation"].clone();
        if rotation.is_null() {
            anyhow::bail!("the server shows no rotation of key {name}");
        }
        let running = rotation.get("running").and_then(Value::as_bool) == Some(true);
        match &bar {
            Some(bar) => {
                bar.set_length(number(&rotation, "total"));
                bar.set_position(number(&rotation, "rewrapped") + number(&rotation, "failed"));
                bar.set_message(format!("({} scanned)", number(&rotation, "scanned")));
            }
            None if !quiet => {
                let line = rotation_line(&rotation);
                if line != last_line {
                    println!("{line}");
                    last_line = line;
                }
            }
            None => {}
        }
        if !running {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            return Ok(rotation);
        }
        tokio::time::sleep(POLL).await;
    }
}
