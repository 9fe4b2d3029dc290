//! `strata ilm rule add|ls|rm ALIAS/BUCKET`: a bucket's lifecycle rules through the S3 API
//! (Get/Put/DeleteBucketLifecycleConfiguration), in the style of `mc ilm rule`. Adding and
//! removing read the configuration, change it and put it back whole; the server validates it
//! as for any client.

use anyhow::{Context, bail};
use http::Method;
use strata_client::Client;
use strata_lifecycle::config::{
    AndFilter, Expiration, Filter, LifecycleConfig, NoncurrentExpiration, NoncurrentTransition, Rule, Scope,
    TagCondition, Transition,
};

use super::{IlmRuleCommand, RuleArgs};

async fn read(client: &Client, bucket: &str) -> anyhow::Result<LifecycleConfig> {
    let answer = client
        .bucket_subresource(Method::GET, bucket, "lifecycle", None)
        .await
        .map_err(|e| super::admin::describe(e, "ilm"))?;
    match answer {
        None => Ok(LifecycleConfig::default()),
        Some(xml) => {
            strata_s3::lifecycle_from_xml(&xml).map_err(|e| anyhow::anyhow!("the bucket's rules: {e}"))
        }
    }
}

async fn write(client: &Client, bucket: &str, config: &LifecycleConfig) -> anyhow::Result<()> {
    if config.rules.is_empty() {
        client
            .bucket_subresource(Method::DELETE, bucket, "lifecycle", None)
            .await
            .map_err(|e| super::admin::describe(e, "ilm"))?;
        return Ok(());
    }
    let xml = strata_s3::lifecycle_to_xml(config);
    client
        .bucket_subresource(Method::PUT, bucket, "lifecycle", Some(xml.into()))
        .await
        .map_err(|e| super::admin::describe(e, "ilm"))?;
    Ok(())
}

fn tags(text: &str) -> anyhow::Result<Vec<TagCondition>> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => Ok(TagCondition {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
            None => bail!("tag {pair:?} is not KEY=VALUE"),
        })
        .collect()
}

fn midnight(date: &str) -> anyhow::Result<i64> {
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        bail!("date {date:?} is not YYYY-MM-DD");
    };
    let (y, m, d): (i64, i64, i64) = (y.parse()?, m.parse()?, d.parse()?);
    // Days from the civil date (proleptic Gregorian), then seconds.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400)
}

fn rule_of(args: RuleArgs) -> anyhow::Result<Rule> {
    let tag_list = args.tags.as_deref().map(tags).transpose()?.unwrap_or_default();
    let scope = if tag_list.is_empty() && args.size_gt.is_none() && args.size_lt.is_none() {
        Scope::Filter(match args.prefix {
            Some(prefix) => Filter::Prefix(prefix),
            None => Filter::All,
        })
    } else {
        Scope::Filter(Filter::And(AndFilter {
            prefix: args.prefix,
            tags: tag_list,
            size_greater_than: args.size_gt,
            size_less_than: args.size_lt,
        }))
    };
    let expiration = if args.expire_days.is_some() || args.expire_date.is_some() || args.expire_delete_marker
    {
        Some(Expiration {
            days: args.expire_days,
            date: args.expire_date.as_deref().map(midnight).transpose()?,
            expired_object_delete_marker: args.expire_delete_marker,
        })
    } else {
        None
    };
    let transitions = match (args.transition_days, args.transition_tier) {
        (Some(days), Some(class)) => vec![Transition {
            days: Some(days),
            date: None,
            storage_class: class,
        }],
        (None, None) => Vec::new(),
        _ => bail!("--transition-days and --transition-tier go together"),
    };
    let noncurrent_transitions = match (args.noncurrent_transition_days, args.noncurrent_transition_tier) {
        (Some(days), Some(class)) => vec![NoncurrentTransition {
            noncurrent_days: days,
            newer_noncurrent_versions: None,
            storage_class: class,
        }],
        (None, None) => Vec::new(),
        _ => bail!("--noncurrent-transition-days and --noncurrent-transition-tier go together"),
    };
    Ok(Rule {
        id: args
            .id
            .unwrap_or_else(|| format!("rule-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])),
        enabled: !args.disable,
        scope,
        expiration,
        noncurrent_expiration: args.noncurrent_expire_days.map(|days| NoncurrentExpiration {
            noncurrent_days: days,
            newer_noncurrent_versions: args.noncurrent_keep,
        }),
        abort_incomplete_upload_days: args.abort_uploads_days,
        transitions,
        noncurrent_transitions,
    })
}

fn describe_rule(rule: &Rule) -> String {
    let scope = match &rule.scope {
        Scope::Prefix(p) | Scope::Filter(Filter::Prefix(p)) => format!("prefix {p:?}"),
        Scope::Filter(Filter::All) => "every object".to_owned(),
        Scope::Filter(other) => format!("{other:?}"),
    };
    let mut actions = Vec::new();
    if let Some(e) = &rule.expiration {
        if let Some(d) = e.days {
            actions.push(format!("expire after {d} days"));
        }
        if let Some(date) = e.date {
            actions.push(format!("expire on day {} (Unix)", date / 86_400));
        }
        if e.expired_object_delete_marker {
            actions.push("remove expired delete markers".to_owned());
        }
    }
    if let Some(nc) = &rule.noncurrent_expiration {
        actions.push(format!(
            "remove noncurrent after {} days{}",
            nc.noncurrent_days,
            nc.newer_noncurrent_versions
                .map_or(String::new(), |n| format!(" (keep {n})"))
        ));
    }
    for t in &rule.transitions {
        actions.push(format!(
            "to {} after {} days",
            t.storage_class,
            t.days.unwrap_or(0)
        ));
    }
    for t in &rule.noncurrent_transitions {
        actions.push(format!(
            "noncurrent to {} after {} days",
            t.storage_class, t.noncurrent_days
        ));
    }
    if let Some(d) = rule.abort_incomplete_upload_days {
        actions.push(format!("abort uploads after {d} days"));
    }
    format!(
        "{:<24} {:<8} {scope}: {}",
        rule.id,
        if rule.enabled { "enabled" } else { "disabled" },
        actions.join(", ")
    )
}

/// `strata ilm rule ...`, against `client` for `bucket`.
pub async fn rule(client: &Client, bucket: &str, command: IlmRuleCommand) -> anyhow::Result<()> {
    match command {
        IlmRuleCommand::Add { rule: args, .. } => {
            let new = rule_of(*args)?;
            let mut config = read(client, bucket).await?;
            if config.rules.iter().any(|r| r.id == new.id) {
                bail!("the bucket has a rule {} already", new.id);
            }
            let id = new.id.clone();
            config.rules.push(new);
            write(client, bucket, &config).await?;
            println!("Added rule {id} to {bucket}.");
        }
        IlmRuleCommand::List { json, .. } => {
            let config = read(client, bucket).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&config).context("encoding JSON")?
                );
            } else if config.rules.is_empty() {
                println!("No lifecycle rules on {bucket}.");
            } else {
                for rule in &config.rules {
                    println!("{}", describe_rule(rule));
                }
            }
        }
        IlmRuleCommand::Remove { id, all, .. } => {
            let mut config = read(client, bucket).await?;
            match (id, all) {
                (_, true) => config.rules.clear(),
                (Some(id), false) => {
                    let before = config.rules.len();
                    config.rules.retain(|r| r.id != id);
                    if config.rules.len() == before {
                        bail!("the bucket has no rule {id}");
                    }
                }
                (None, false) => bail!("name a rule with --id, or --all"),
            }
            write(client, bucket, &config).await?;
            println!("Removed.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_midnights() {
        assert_eq!(midnight("1970-01-01").unwrap(), 0);
        assert_eq!(midnight("2030-01-01").unwrap(), 1_893_456_000);
        assert!(midnight("2030-01").is_err());
    }
}
