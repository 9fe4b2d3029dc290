//! `strata admin tier add|ls|edit|rm|verify|stats`: remote tiers through Strata's admin API
//! (`/strata/admin/v1/tiers`). Credentials travel sealed with the alias's secret key (madmin's
//! format), never in the clear, and are never printed.

use anyhow::Context;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use strata_client::Client;

use super::{TierCommand, TierKindArg};

async fn call(
    client: &Client,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Bytes,
) -> anyhow::Result<Value> {
    let bytes = client
        .admin_bytes(method, path, query, body)
        .await
        .map_err(|e| super::admin::describe(e, "admin tier"))?;
    serde_json::from_slice(&bytes).context("decoding the answer")
}

fn seal(secret: &str, value: &Value) -> anyhow::Result<Bytes> {
    let plain = serde_json::to_vec(value).context("encoding the request")?;
    let sealed =
        strata_s3::madmin_crypto::encrypt(secret.as_bytes(), &plain).context("sealing the request body")?;
    Ok(Bytes::from(sealed))
}

fn print(value: &Value, json: bool, line: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).context("encoding JSON")?
        );
    } else {
        println!("{}", line(value));
    }
    Ok(())
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn flag(on: bool) -> &'static str {
    if on { "true" } else { "false" }
}

/// `strata admin tier ...`.
pub async fn tier(client: &Client, secret: &str, command: TierCommand) -> anyhow::Result<()> {
    match command {
        TierCommand::Add {
            name,
            kind,
            endpoint,
            bucket,
            prefix,
            region,
            access_key,
            secret_key,
            account,
            credentials_file,
            archival,
            skip_verify,
            json,
            ..
        } => {
            let mut config = match kind {
                TierKindArg::S3 => json!({
                    "type": "s3",
                    "endpoint": endpoint.context("--endpoint is required for an S3 tier")?,
                    "bucket": bucket,
                    "prefix": prefix,
                    "region": region,
                    "access_key": access_key.context("--access-key is required for an S3 tier")?,
                    "secret_key": secret_key.context("--secret-key is required for an S3 tier")?,
                }),
                TierKindArg::Azure => json!({
                    "type": "azure",
                    "endpoint": endpoint.unwrap_or_default(),
                    "account": account.context("--account is required for an Azure tier")?,
                    "access_key": secret_key.context("--secret-key (the account key) is required for an Azure tier")?,
                    "container": bucket,
                    "prefix": prefix,
                }),
                TierKindArg::Gcs => {
                    let path = credentials_file.context("--credentials-file is required for a GCS tier")?;
                    let credentials = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    json!({
                        "type": "gcs",
                        "endpoint": endpoint.unwrap_or_default(),
                        "bucket": bucket,
                        "prefix": prefix,
                        "credentials": credentials,
                    })
                }
            };
            config["name"] = json!(name);
            config["archival"] = json!(archival);
            let answer = call(
                client,
                Method::POST,
                strata_s3::TIERS_PATH,
                &[("skip-verify", flag(skip_verify))],
                seal(secret, &config)?,
            )
            .await?;
            print(&answer, json, |_| format!("Added tier {name}."))
        }
        TierCommand::List { json, .. } => {
            let answer = call(client, Method::GET, strata_s3::TIERS_PATH, &[], Bytes::new()).await?;
            print(&answer, json, |v| {
                let tiers = v.as_array().cloned().unwrap_or_default();
                if tiers.is_empty() {
                    return "No tiers.".to_owned();
                }
                tiers
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<16} {:<6} {}  {}/{}{}",
                            text(t, "name"),
                            text(t, "type"),
                            text(t, "endpoint"),
                            text(t, "bucket"),
                            text(t, "prefix"),
                            if t.get("archival").and_then(Value::as_bool) == Some(true) {
                                "  (archival)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TierCommand::Edit {
            name,
            access_key,
            secret_key,
            credentials_file,
            kind,
            skip_verify,
            json,
            ..
        } => {
            let creds = match kind {
                TierKindArg::S3 => json!({
                    "type": "s3",
                    "access_key": access_key.context("--access-key is required")?,
                    "secret_key": secret_key.context("--secret-key is required")?,
                }),
                TierKindArg::Azure => json!({
                    "type": "azure",
                    "access_key": secret_key.context("--secret-key (the account key) is required")?,
                }),
                TierKindArg::Gcs => {
                    let path = credentials_file.context("--credentials-file is required")?;
                    json!({
                        "type": "gcs",
                        "credentials": std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    })
                }
            };
            let answer = call(
                client,
                Method::PUT,
                strata_s3::TIERS_PATH,
                &[("name", &name), ("skip-verify", flag(skip_verify))],
                seal(secret, &creds)?,
            )
            .await?;
            print(&answer, json, |_| {
                format!("Changed the credentials of tier {name}.")
            })
        }
        TierCommand::Remove {
            name, force, json, ..
        } => {
            let answer = call(
                client,
                Method::DELETE,
                strata_s3::TIERS_PATH,
                &[("name", &name), ("force", flag(force))],
                Bytes::new(),
            )
            .await?;
            print(&answer, json, |_| format!("Removed tier {name}."))
        }
        TierCommand::Verify { name, json, .. } => {
            let answer = call(
                client,
                Method::POST,
                strata_s3::TIER_VERIFY_PATH,
                &[("name", &name)],
                Bytes::new(),
            )
            .await?;
            print(&answer, json, |_| {
                format!("Tier {name} answers: objects can be written, read and deleted.")
            })
        }
        TierCommand::Stats { json, .. } => {
            let answer = call(client, Method::GET, strata_s3::TIER_STATS_PATH, &[], Bytes::new()).await?;
            print(&answer, json, |v| {
                let mut lines: Vec<String> = v
                    .get("tiers")
                    .and_then(Value::as_object)
                    .map(|tiers| {
                        tiers
                            .iter()
                            .map(|(name, usage)| {
                                format!(
                                    "{name:<16} {} objects, {} bytes",
                                    usage.get("objects").and_then(Value::as_u64).unwrap_or(0),
                                    usage.get("bytes").and_then(Value::as_u64).unwrap_or(0)
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                lines.push(format!(
                    "remote deletes waiting: {}",
                    v.get("journal_backlog").and_then(Value::as_u64).unwrap_or(0)
                ));
                lines.join("\n")
            })
        }
    }
}
