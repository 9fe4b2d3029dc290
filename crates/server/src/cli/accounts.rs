//! `strata admin account ...`: accounts (tenants) through Strata's admin API
//! (`/strata/admin/v1/accounts`), with human output or `--json` (the server's answer).
//!
//! Invariant: an account root's secret key arrives sealed as madmin seals secrets (keyed by
//! the alias's secret key) and is printed only by `account add`, the one time it can be seen.

use anyhow::Context;
use http::Method;
use serde_json::{Value, json};
use strata_client::Client;

use super::AccountCommand;

const ACCOUNTS: &str = strata_s3::ADMIN_ACCOUNTS_PATH;

async fn call(client: &Client, method: Method, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
    client
        .admin_json(method, path, query, None)
        .await
        .map_err(|e| super::admin::describe(e, "admin account"))
}

fn print(value: &Value, json: bool, human: impl FnOnce(&Value)) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).context("encoding JSON")?
        );
    } else {
        human(value);
    }
    Ok(())
}

fn field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn describe(account: &Value) {
    println!(
        "{}  {}  {}  root {}  canonical id {}",
        field(account, "id"),
        field(account, "name"),
        field(account, "status").to_lowercase(),
        field(account, "root_access_key"),
        field(account, "canonical_id"),
    );
}

/// `strata admin account ...`.
pub async fn account(client: &Client, secret: &str, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Add { name, json, .. } => {
            let answer = call(client, Method::POST, ACCOUNTS, &[("name", &name)]).await?;
            let sealed = base64_simd::STANDARD
                .decode_to_vec(field(&answer, "credentials"))
                .context("the answer's credentials are not base64")?;
            let plain = strata_s3::madmin_crypto::decrypt(secret.as_bytes(), &sealed)
                .context("opening the account's credentials")?;
            let credentials: Value = serde_json::from_slice(&plain).context("decoding the credentials")?;
            let account = answer.get("account").cloned().unwrap_or(Value::Null);
            let out = json!({ "account": account, "credentials": credentials });
            print(&out, json, |_| {
                println!(
                    "Added account {} ({}).",
                    field(&account, "id"),
                    field(&account, "name")
                );
                println!("Root access key: {}", field(&credentials, "accessKey"));
                println!("Root secret key: {}", field(&credentials, "secretKey"));
            })
        }
        AccountCommand::List { json, .. } => {
            let answer = call(client, Method::GET, ACCOUNTS, &[]).await?;
            print(&answer, json, |list| {
                for account in list.as_array().into_iter().flatten() {
                    describe(account);
                }
            })
        }
        AccountCommand::Info { id, json, .. } => {
            let path = format!("{ACCOUNTS}/info");
            let answer = call(client, Method::GET, &path, &[("id", &id)]).await?;
            print(&answer, json, describe)
        }
        AccountCommand::Enable { id, json, .. } => set_status(client, &id, "enabled", json).await,
        AccountCommand::Disable { id, json, .. } => set_status(client, &id, "disabled", json).await,
        AccountCommand::Remove { id, json, .. } => {
            let answer = call(client, Method::DELETE, ACCOUNTS, &[("id", &id)]).await?;
            print(&answer, json, |_| println!("Removed account {id}."))
        }
    }
}

async fn set_status(client: &Client, id: &str, status: &str, json: bool) -> anyhow::Result<()> {
    let path = format!("{ACCOUNTS}/status");
    let answer = call(client, Method::POST, &path, &[("id", id), ("status", status)]).await?;
    print(&answer, json, |_| println!("Account {id} is {status}."))
}
