//! `strata admin prometheus generate ALIAS`: prints a bearer token for the metrics endpoints
//! and a ready Prometheus scrape config, made locally from the alias's keys (the token is an
//! HS512 JWT signed with the secret key, as MinIO's `mc admin prometheus generate` makes).
//!
//! Invariant: the secret key only signs; it is never printed. The token itself is a
//! credential for the metrics endpoints and is printed because that is the command's purpose.

use super::alias::AliasFile;

/// Job name in the printed scrape config.
pub const JOB_NAME: &str = "strata-job";

/// The text `generate` prints: the scrape config (which holds the token).
pub fn generate_text(
    file: &AliasFile,
    alias: &str,
    node: bool,
    now_unix_secs: u64,
) -> anyhow::Result<String> {
    let a = file.get(alias)?;
    let token = strata_obs::token::generate_token(&a.access_key, &a.secret_key, now_unix_secs);
    let mut config = strata_obs::token::scrape_config(JOB_NAME, &a.url, &token);
    if node {
        config = config.replace("/metrics/cluster", "/metrics/node");
    }
    Ok(config)
}

/// Runs `strata admin prometheus generate`.
pub fn generate(file: &AliasFile, alias: &str, node: bool) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    print!("{}", generate_text(file, alias, node, now)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::alias::Alias;

    #[test]
    fn token_in_config_verifies_and_secret_is_not_printed() {
        let mut file = AliasFile::default();
        file.aliases.insert(
            "local".into(),
            Alias {
                url: "http://127.0.0.1:9000".into(),
                access_key: "AKROOT".into(),
                secret_key: "the-secret-key".into(),
                region: "us-east-1".into(),
            },
        );
        let text = generate_text(&file, "local", false, 1_700_000_000).unwrap();
        assert!(!text.contains("the-secret-key"));
        assert!(text.contains("metrics_path: /metrics/cluster"));
        let token = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("bearer_token: "))
            .unwrap();
        strata_obs::token::verify_token(token, "AKROOT", "the-secret-key", 1_700_000_001).unwrap();
        assert!(
            generate_text(&file, "local", true, 0)
                .unwrap()
                .contains("/metrics/node")
        );
        assert!(generate_text(&file, "other", false, 0).is_err());
    }
}
