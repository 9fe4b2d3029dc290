//! `strata admin user|group|policy|svcacct ...`: identities and policies through MinIO's admin
//! API (`/minio/admin/v3/`), as `mc admin user|group|policy|svcacct` does, with human output or
//! `--json` (the server's answer as JSON).
//!
//! Invariant: secret keys travel only inside madmin's sealed bodies (keyed by the alias's
//! secret key); a secret key is printed only where the command creates one (`svcacct add`
//! without `--secret-key`), because that is the only time it can be seen.

use anyhow::{Context, bail};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use strata_client::Client;

use super::{GroupCommand, PolicyCommand, SvcacctCommand, UserCommand};

/// The admin API's path prefix.
const PREFIX: &str = strata_s3::MINIO_ADMIN_PREFIX;

/// One call: method, endpoint below the prefix, query, body; the answer's bytes.
async fn call(
    client: &Client,
    method: Method,
    endpoint: &str,
    query: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<Bytes> {
    client
        .admin_bytes(method, &format!("{PREFIX}{endpoint}"), query, Bytes::from(body))
        .await
        .map_err(|e| super::admin::describe(e, &format!("admin {endpoint}")))
}

fn seal(secret: &str, value: &Value) -> anyhow::Result<Vec<u8>> {
    let plain = serde_json::to_vec(value).context("encoding the request")?;
    strata_s3::madmin_crypto::encrypt(secret.as_bytes(), &plain).context("sealing the request body")
}

fn open(secret: &str, sealed: &[u8]) -> anyhow::Result<Value> {
    let plain = strata_s3::madmin_crypto::decrypt(secret.as_bytes(), sealed).context("opening the answer")?;
    serde_json::from_slice(&plain).context("decoding the answer")
}

fn json_of(bytes: &[u8]) -> anyhow::Result<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).context("decoding the answer")
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("encoding JSON")?
    );
    Ok(())
}

/// Prints `value` as JSON, or runs `human` for the terminal.
fn show(value: &Value, json: bool, human: impl FnOnce(&Value)) -> anyhow::Result<()> {
    if json {
        print_json(value)
    } else {
        human(value);
        Ok(())
    }
}

fn done(json: bool, what: String) -> anyhow::Result<()> {
    if json {
        print_json(&json!({ "status": "success", "message": what }))
    } else {
        println!("{what}");
        Ok(())
    }
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn read_policy_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str::<Value>(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(text)
}

/// `strata admin user ...`.
pub async fn user(client: &Client, secret: &str, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            secret_key,
            json,
            ..
        } => {
            let body = seal(secret, &json!({ "secretKey": secret_key, "status": "enabled" }))?;
            call(client, Method::PUT, "add-user", &[("accessKey", &name)], body).await?;
            done(json, format!("Added user {name}."))
        }
        UserCommand::Remove { name, json, .. } => {
            call(
                client,
                Method::DELETE,
                "remove-user",
                &[("accessKey", &name)],
                Vec::new(),
            )
            .await?;
            done(json, format!("Removed user {name}."))
        }
        UserCommand::Enable { name, json, .. } => {
            let query = [("accessKey", name.as_str()), ("status", "enabled")];
            call(client, Method::PUT, "set-user-status", &query, Vec::new()).await?;
            done(json, format!("Enabled user {name}."))
        }
        UserCommand::Disable { name, json, .. } => {
            let query = [("accessKey", name.as_str()), ("status", "disabled")];
            call(client, Method::PUT, "set-user-status", &query, Vec::new()).await?;
            done(json, format!("Disabled user {name}."))
        }
        UserCommand::List { json, .. } => {
            let sealed = call(client, Method::GET, "list-users", &[], Vec::new()).await?;
            let users = open(secret, &sealed)?;
            show(&users, json, |users| {
                if let Some(map) = users.as_object() {
                    for (name, info) in map {
                        println!(
                            "{:<10} {:<32} {}",
                            text(info, "status"),
                            name,
                            text(info, "policyName")
                        );
                    }
                }
            })
        }
        UserCommand::Info { name, json, .. } => {
            let answer = call(
                client,
                Method::GET,
                "user-info",
                &[("accessKey", &name)],
                Vec::new(),
            )
            .await?;
            let info = json_of(&answer)?;
            show(&info, json, |info| {
                println!("AccessKey: {name}");
                println!("Status:    {}", text(info, "status"));
                println!("Policies:  {}", text(info, "policyName"));
                println!("MemberOf:  {}", text(info, "memberOf"));
            })
        }
    }
}

/// `strata admin group ...`.
pub async fn group(client: &Client, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Add {
            group, members, json, ..
        } => {
            let body = serde_json::to_vec(&json!({ "group": group, "members": members, "isRemove": false }))
                .context("encoding the request")?;
            call(client, Method::PUT, "update-group-members", &[], body).await?;
            done(json, format!("Added {} to group {group}.", members.join(", ")))
        }
        GroupCommand::Remove {
            group, members, json, ..
        } => {
            let body = serde_json::to_vec(&json!({ "group": group, "members": members, "isRemove": true }))
                .context("encoding the request")?;
            call(client, Method::PUT, "update-group-members", &[], body).await?;
            if members.is_empty() {
                done(json, format!("Removed group {group}."))
            } else {
                done(
                    json,
                    format!("Removed {} from group {group}.", members.join(", ")),
                )
            }
        }
        GroupCommand::Enable { group, json, .. } => {
            let query = [("group", group.as_str()), ("status", "enabled")];
            call(client, Method::PUT, "set-group-status", &query, Vec::new()).await?;
            done(json, format!("Enabled group {group}."))
        }
        GroupCommand::Disable { group, json, .. } => {
            let query = [("group", group.as_str()), ("status", "disabled")];
            call(client, Method::PUT, "set-group-status", &query, Vec::new()).await?;
            done(json, format!("Disabled group {group}."))
        }
        GroupCommand::List { json, .. } => {
            let groups = json_of(&call(client, Method::GET, "groups", &[], Vec::new()).await?)?;
            show(&groups, json, |groups| {
                for g in groups.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    println!("{g}");
                }
            })
        }
        GroupCommand::Info { group, json, .. } => {
            let info = json_of(&call(client, Method::GET, "group", &[("group", &group)], Vec::new()).await?)?;
            show(&info, json, |info| {
                println!("Group:    {group}");
                println!("Status:   {}", text(info, "status"));
                println!("Policies: {}", text(info, "policy"));
                println!("Members:  {}", text(info, "members"));
            })
        }
    }
}

/// `strata admin policy ...`.
pub async fn policy(client: &Client, secret: &str, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Create { name, file, json, .. } => {
            let document = read_policy_file(&file)?;
            call(
                client,
                Method::PUT,
                "add-canned-policy",
                &[("name", &name)],
                document.into_bytes(),
            )
            .await?;
            done(json, format!("Created policy {name}."))
        }
        PolicyCommand::Remove { name, json, .. } => {
            call(
                client,
                Method::DELETE,
                "remove-canned-policy",
                &[("name", &name)],
                Vec::new(),
            )
            .await?;
            done(json, format!("Removed policy {name}."))
        }
        PolicyCommand::List { json, .. } => {
            let policies =
                json_of(&call(client, Method::GET, "list-canned-policies", &[], Vec::new()).await?)?;
            show(&policies, json, |policies| {
                for name in policies.as_object().into_iter().flat_map(|m| m.keys()) {
                    println!("{name}");
                }
            })
        }
        PolicyCommand::Info { name, json, .. } => {
            let query = [("name", name.as_str()), ("v", "2")];
            let info = json_of(&call(client, Method::GET, "info-canned-policy", &query, Vec::new()).await?)?;
            if json {
                return print_json(&info);
            }
            let document = info.get("Policy").cloned().unwrap_or(Value::Null);
            print_json(&document)
        }
        PolicyCommand::Attach {
            policies,
            user,
            group,
            json,
            ..
        } => attach(client, secret, "attach", policies, user, group, json).await,
        PolicyCommand::Detach {
            policies,
            user,
            group,
            json,
            ..
        } => attach(client, secret, "detach", policies, user, group, json).await,
        PolicyCommand::Entities {
            users,
            groups,
            policies,
            json,
            ..
        } => {
            let mut query: Vec<(&str, &str)> = Vec::new();
            query.extend(users.iter().map(|u| ("user", u.as_str())));
            query.extend(groups.iter().map(|g| ("group", g.as_str())));
            query.extend(policies.iter().map(|p| ("policy", p.as_str())));
            let sealed = call(
                client,
                Method::GET,
                "idp/builtin/policy-entities",
                &query,
                Vec::new(),
            )
            .await?;
            let entities = open(secret, &sealed)?;
            show(&entities, json, |e| {
                for m in e["policyMappings"].as_array().into_iter().flatten() {
                    println!(
                        "{}: users [{}] groups [{}]",
                        text(m, "policy"),
                        text(m, "users"),
                        text(m, "groups")
                    );
                }
                for m in e["userMappings"].as_array().into_iter().flatten() {
                    println!("user {}: [{}]", text(m, "user"), text(m, "policies"));
                }
                for m in e["groupMappings"].as_array().into_iter().flatten() {
                    println!("group {}: [{}]", text(m, "group"), text(m, "policies"));
                }
            })
        }
    }
}

async fn attach(
    client: &Client,
    secret: &str,
    verb: &str,
    policies: Vec<String>,
    user: Option<String>,
    group: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let mut body = json!({ "policies": policies });
    let whom = match (&user, &group) {
        (Some(u), None) => {
            body["user"] = json!(u);
            format!("user {u}")
        }
        (None, Some(g)) => {
            body["group"] = json!(g);
            format!("group {g}")
        }
        _ => bail!("name exactly one of --user and --group"),
    };
    let endpoint = format!("idp/builtin/policy/{verb}");
    let sealed = call(client, Method::POST, &endpoint, &[], seal(secret, &body)?).await?;
    let answer = open(secret, &sealed)?;
    show(&answer, json, |_| {
        println!("{}ed {} for {whom}.", capitalized(verb), policies.join(", "));
    })
}

fn capitalized(verb: &str) -> String {
    let mut chars = verb.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// `strata admin svcacct ...`.
pub async fn svcacct(client: &Client, secret: &str, command: SvcacctCommand) -> anyhow::Result<()> {
    match command {
        SvcacctCommand::Add {
            user,
            access_key,
            secret_key,
            policy,
            name,
            description,
            expiry,
            json,
            ..
        } => {
            let mut body = json!({ "targetUser": user, "status": "enabled" });
            if let Some(ak) = &access_key {
                body["accessKey"] = json!(ak);
            }
            if let Some(sk) = &secret_key {
                body["secretKey"] = json!(sk);
            }
            if let Some(path) = &policy {
                let document: Value =
                    serde_json::from_str(&read_policy_file(path)?).context("decoding the policy")?;
                body["policy"] = document;
            }
            if let Some(n) = &name {
                body["name"] = json!(n);
            }
            if let Some(d) = &description {
                body["description"] = json!(d);
            }
            if let Some(e) = &expiry {
                body["expiration"] = json!(e);
            }
            let sealed = call(
                client,
                Method::PUT,
                "add-service-account",
                &[],
                seal(secret, &body)?,
            )
            .await?;
            let answer = open(secret, &sealed)?;
            show(&answer, json, |a| {
                let creds = &a["credentials"];
                println!("AccessKey: {}", text(creds, "accessKey"));
                if secret_key.is_none() {
                    // Generated: this is the only time it can be seen.
                    println!("SecretKey: {}", text(creds, "secretKey"));
                }
                let expiration = text(creds, "expiration");
                if !expiration.starts_with("1970") {
                    println!("Expiry:    {expiration}");
                }
            })
        }
        SvcacctCommand::List { user, json, .. } => {
            let sealed = call(
                client,
                Method::GET,
                "list-service-accounts",
                &[("user", &user)],
                Vec::new(),
            )
            .await?;
            let accounts = open(secret, &sealed)?;
            show(&accounts, json, |a| {
                for acct in a["accounts"].as_array().into_iter().flatten() {
                    println!(
                        "{:<4} {:<24} {}",
                        text(acct, "accountStatus"),
                        text(acct, "accessKey"),
                        text(acct, "name")
                    );
                }
            })
        }
        SvcacctCommand::Info { access_key, json, .. } => {
            let sealed = call(
                client,
                Method::GET,
                "info-service-account",
                &[("accessKey", &access_key)],
                Vec::new(),
            )
            .await?;
            let info = open(secret, &sealed)?;
            show(&info, json, |i| {
                println!("AccessKey:   {access_key}");
                println!("ParentUser:  {}", text(i, "parentUser"));
                println!("Status:      {}", text(i, "accountStatus"));
                println!("Name:        {}", text(i, "name"));
                println!("Description: {}", text(i, "description"));
                println!(
                    "Policy:      {}",
                    if i["impliedPolicy"] == Value::Bool(true) {
                        "implied (the parent's)".to_owned()
                    } else {
                        text(i, "policy")
                    }
                );
            })
        }
        SvcacctCommand::Remove { access_key, json, .. } => {
            call(
                client,
                Method::DELETE,
                "delete-service-account",
                &[("accessKey", &access_key)],
                Vec::new(),
            )
            .await?;
            done(json, format!("Removed service account {access_key}."))
        }
        SvcacctCommand::Enable { access_key, json, .. } => {
            set_svcacct_status(client, secret, &access_key, "on", json).await
        }
        SvcacctCommand::Disable { access_key, json, .. } => {
            set_svcacct_status(client, secret, &access_key, "off", json).await
        }
    }
}

async fn set_svcacct_status(
    client: &Client,
    secret: &str,
    access_key: &str,
    status: &str,
    json: bool,
) -> anyhow::Result<()> {
    let body = seal(
        secret,
        &json!({ "newStatus": if status == "on" { "enabled" } else { "disabled" } }),
    )?;
    call(
        client,
        Method::POST,
        "update-service-account",
        &[("accessKey", access_key)],
        body,
    )
    .await?;
    let word = if status == "on" { "Enabled" } else { "Disabled" };
    done(json, format!("{word} service account {access_key}."))
}

impl UserCommand {
    /// The alias the command talks to.
    pub fn alias(&self) -> &str {
        match self {
            UserCommand::Add { alias, .. }
            | UserCommand::Remove { alias, .. }
            | UserCommand::Enable { alias, .. }
            | UserCommand::Disable { alias, .. }
            | UserCommand::List { alias, .. }
            | UserCommand::Info { alias, .. } => alias,
        }
    }
}

impl GroupCommand {
    /// The alias the command talks to.
    pub fn alias(&self) -> &str {
        match self {
            GroupCommand::Add { alias, .. }
            | GroupCommand::Remove { alias, .. }
            | GroupCommand::Enable { alias, .. }
            | GroupCommand::Disable { alias, .. }
            | GroupCommand::List { alias, .. }
            | GroupCommand::Info { alias, .. } => alias,
        }
    }
}

impl PolicyCommand {
    /// The alias the command talks to.
    pub fn alias(&self) -> &str {
        match self {
            PolicyCommand::Create { alias, .. }
            | PolicyCommand::Remove { alias, .. }
            | PolicyCommand::List { alias, .. }
            | PolicyCommand::Info { alias, .. }
            | PolicyCommand::Attach { alias, .. }
            | PolicyCommand::Detach { alias, .. }
            | PolicyCommand::Entities { alias, .. } => alias,
        }
    }
}

impl SvcacctCommand {
    /// The alias the command talks to.
    pub fn alias(&self) -> &str {
        match self {
            SvcacctCommand::Add { alias, .. }
            | SvcacctCommand::List { alias, .. }
            | SvcacctCommand::Info { alias, .. }
            | SvcacctCommand::Enable { alias, .. }
            | SvcacctCommand::Disable { alias, .. }
            | SvcacctCommand::Remove { alias, .. } => alias,
        }
    }
}
