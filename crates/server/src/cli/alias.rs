//! The alias file: named endpoints with their keys, in `$STRATA_CONFIG_DIR/config.json`
//! (default `~/.strata/config.json`), and the `strata alias` commands over it.
//!
//! Invariants:
//! - The directory is created with mode 0700 and the file is written with mode 0600, whole
//!   (written to a temporary file, synced, then renamed over the old one), so a crash leaves
//!   either the old or the new file.
//! - Secret keys are never printed: `Debug` redacts them and `alias list` shows access keys only.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{AliasArgs, AliasCommand};

/// Environment variable naming the config directory.
pub const CONFIG_DIR_ENV: &str = "STRATA_CONFIG_DIR";
/// Config directory below the home directory when the variable is not set.
pub const CONFIG_DIR_DEFAULT: &str = ".strata";
/// File name of the alias file.
pub const CONFIG_FILE_NAME: &str = "config.json";
/// Format version of the alias file.
pub const CONFIG_VERSION: u32 = 1;
/// Mode of the config directory.
pub const CONFIG_DIR_MODE: u32 = 0o700;
/// Mode of the alias file.
pub const CONFIG_FILE_MODE: u32 = 0o600;
/// Longest alias name, in characters.
pub const ALIAS_NAME_CHARS_MAX: usize = 64;

/// One named endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// `http://host:port` or `https://host:port`, without a trailing slash.
    pub url: String,
    /// Access key.
    pub access_key: String,
    /// Secret key; never printed.
    pub secret_key: String,
    /// Region requests are signed for.
    pub region: String,
}

impl fmt::Debug for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alias")
            .field("url", &self.url)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}

/// The alias file's contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasFile {
    /// Format version ([`CONFIG_VERSION`]).
    pub version: u32,
    /// Aliases by name.
    pub aliases: BTreeMap<String, Alias>,
}

impl Default for AliasFile {
    fn default() -> Self {
        AliasFile {
            version: CONFIG_VERSION,
            aliases: BTreeMap::new(),
        }
    }
}

/// The config directory: `$STRATA_CONFIG_DIR`, else `~/.strata`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::home_dir()
        .filter(|h| !h.as_os_str().is_empty())
        .context("no home directory; set STRATA_CONFIG_DIR")?;
    Ok(home.join(CONFIG_DIR_DEFAULT))
}

impl AliasFile {
    /// Reads `dir/config.json`; a missing file is an empty one.
    pub fn load(dir: &Path) -> anyhow::Result<AliasFile> {
        let path = dir.join(CONFIG_FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AliasFile::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file: AliasFile =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if file.version != CONFIG_VERSION {
            bail!(
                "{} has format version {}, this strata reads version {CONFIG_VERSION}",
                path.display(),
                file.version
            );
        }
        Ok(file)
    }

    /// Writes `dir/config.json` (mode 0600), creating `dir` (mode 0700) if needed.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(CONFIG_DIR_MODE)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(CONFIG_FILE_NAME);
        let tmp = dir.join(format!("{CONFIG_FILE_NAME}.tmp"));
        let mut text = serde_json::to_string_pretty(self).context("encoding the alias file")?;
        text.push('\n');
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(CONFIG_FILE_MODE)
                .open(&tmp)?;
            // A temporary file left by an earlier run keeps its old mode: set it explicitly.
            f.set_permissions(std::fs::Permissions::from_mode(CONFIG_FILE_MODE))?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().with_context(|| format!("writing {}", path.display()))
    }

    /// The alias called `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<&Alias> {
        self.aliases.get(name).with_context(|| {
            format!("no alias {name:?}; add it with `strata alias set {name} URL ACCESS_KEY SECRET_KEY`")
        })
    }
}

/// Checks an alias name: it must not contain `/` (it starts `ALIAS/BUCKET/PREFIX`).
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= ALIAS_NAME_CHARS_MAX
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "invalid alias name {name:?}: use 1 to {ALIAS_NAME_CHARS_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit"
        );
    }
    Ok(())
}

/// Checks an endpoint and returns it without a trailing slash.
pub fn normalize_url(url: &str) -> anyhow::Result<String> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("invalid URL {url:?}: expected http://HOST:PORT"))?;
    let scheme = match uri.scheme_str() {
        Some(scheme @ ("http" | "https")) => scheme,
        _ => bail!("invalid URL {url:?}: expected http://HOST:PORT or https://HOST:PORT"),
    };
    let Some(authority) = uri.authority() else {
        bail!("invalid URL {url:?}: no host");
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        bail!("invalid URL {url:?}: must not have a path or query");
    }
    Ok(format!("{scheme}://{authority}"))
}

fn validate_keys(access_key: &str, secret_key: &str) -> anyhow::Result<()> {
    if access_key.is_empty() || access_key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("invalid access key: it must be non-empty, without whitespace");
    }
    if secret_key.is_empty() || secret_key.chars().any(|c| c.is_control()) {
        // The secret itself is not repeated.
        bail!("invalid secret key: it must be non-empty, without control characters");
    }
    Ok(())
}

/// Runs `strata alias ...`.
pub fn run(args: AliasArgs) -> anyhow::Result<()> {
    let dir = config_dir()?;
    let mut file = AliasFile::load(&dir)?;
    match args.command {
        AliasCommand::Set {
            name,
            url,
            access_key,
            secret_key,
            region,
        } => {
            validate_name(&name)?;
            let url = normalize_url(&url)?;
            validate_keys(&access_key, &secret_key)?;
            let alias = Alias {
                url,
                access_key,
                secret_key,
                region,
            };
            let replaced = file.aliases.insert(name.clone(), alias).is_some();
            file.save(&dir)?;
            let verb = if replaced { "Updated" } else { "Added" };
            println!(
                "{verb} alias `{name}` in {}.",
                dir.join(CONFIG_FILE_NAME).display()
            );
        }
        AliasCommand::List { json } => print!("{}", list_text(&file, json)?),
        AliasCommand::Remove { name } => {
            if file.aliases.remove(&name).is_none() {
                bail!("no alias {name:?}");
            }
            file.save(&dir)?;
            println!("Removed alias `{name}`.");
        }
    }
    Ok(())
}

/// What `alias list` prints: a table, or JSON; secret keys never.
fn list_text(file: &AliasFile, json: bool) -> anyhow::Result<String> {
    if json {
        let shown: BTreeMap<&str, serde_json::Value> = file
            .aliases
            .iter()
            .map(|(name, a)| {
                let value = serde_json::json!({
                    "url": a.url, "access_key": a.access_key, "region": a.region,
                });
                (name.as_str(), value)
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&shown).context("encoding the list")?;
        text.push('\n');
        return Ok(text);
    }
    if file.aliases.is_empty() {
        return Ok("No aliases. Add one with `strata alias set NAME URL ACCESS_KEY SECRET_KEY`.\n".into());
    }
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "URL".to_owned(),
        "ACCESS KEY".to_owned(),
        "REGION".to_owned(),
    ]];
    for (name, a) in &file.aliases {
        rows.push(vec![
            name.clone(),
            a.url.clone(),
            a.access_key.clone(),
            a.region.clone(),
        ]);
    }
    Ok(super::format::table(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(url: &str) -> Alias {
        Alias {
            url: url.into(),
            access_key: "AKIAEXAMPLE".into(),
            secret_key: "very-secret-value".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn save_and_load_round_trip_with_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("cfg");
        assert_eq!(AliasFile::load(&dir).unwrap(), AliasFile::default());
        let mut file = AliasFile::default();
        file.aliases
            .insert("local".into(), alias("http://127.0.0.1:9000"));
        file.save(&dir).unwrap();
        file.aliases.insert("other".into(), alias("http://10.0.0.1:9000"));
        file.save(&dir).unwrap();
        assert_eq!(AliasFile::load(&dir).unwrap(), file);
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, CONFIG_DIR_MODE);
        let file_mode = std::fs::metadata(dir.join(CONFIG_FILE_NAME))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(file_mode, CONFIG_FILE_MODE);
        assert!(!dir.join("config.json.tmp").exists());
    }

    #[test]
    fn load_refuses_garbage_and_other_versions() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(CONFIG_FILE_NAME), "{not json").unwrap();
        assert!(AliasFile::load(tmp.path()).is_err());
        std::fs::write(tmp.path().join(CONFIG_FILE_NAME), r#"{"version":2,"aliases":{}}"#).unwrap();
        let err = AliasFile::load(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn names_and_urls_are_checked() {
        for ok in ["local", "a", "prod-1", "x.y_z"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "a/b", "-x", "has space", &"n".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalize_url("http://127.0.0.1:9000/").unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(normalize_url("http://host:1").unwrap(), "http://host:1");
        assert_eq!(normalize_url("https://host:1/").unwrap(), "https://host:1");
        for bad in [
            "ftp://h:1",
            "h:1",
            "http://h:1/path",
            "http://h:1/?q=1",
            "not a url",
        ] {
            assert!(normalize_url(bad).is_err(), "{bad:?}");
        }
        assert!(validate_keys("AK", "").is_err());
        assert!(validate_keys("A K", "secret").is_err());
        let err = validate_keys("AK", "bad\u{1}secret").unwrap_err();
        assert!(!err.to_string().contains("bad\u{1}secret"));
    }

    #[test]
    fn listings_never_show_secrets() {
        let mut file = AliasFile::default();
        file.aliases
            .insert("local".into(), alias("http://127.0.0.1:9000"));
        for json in [false, true] {
            let text = list_text(&file, json).unwrap();
            assert!(text.contains("AKIAEXAMPLE"), "{text}");
            assert!(text.contains("http://127.0.0.1:9000"), "{text}");
            assert!(!text.contains("very-secret-value"), "{text}");
        }
        let shown = format!("{:?}", file);
        assert!(!shown.contains("very-secret-value"), "{shown}");
    }
}
