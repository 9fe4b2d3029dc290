//! Media and storage classes: `pool_classes` (each pool's media class, in pool order, e.g.
//! `["NVME", "HDD"]`) and `storage_classes` (storage class name → media class, e.g.
//! `{ WARM = "HDD" }`), from the command line, the environment (`STRATA_POOL_CLASSES=NVME,HDD`,
//! `STRATA_STORAGE_CLASSES=WARM=HDD,STANDARD_IA=HDD`) or the config file, in that order.
//!
//! Invariant: every node of a deployment is given the same classes (placement of new keys
//! and transitions follow them); the object layer refuses a storage class whose media class no
//! pool has, so a typo stops the start instead of placing data somewhere unexpected.

use std::collections::BTreeMap;

use serde::Deserialize;
use strata_object::StorageClassConfig;

/// Command-line flags (with their environment variables).
#[derive(Debug, Default, clap::Args)]
pub struct ClassesArgs {
    /// Media class of each pool, in pool order, comma-separated (e.g. NVME,HDD) [default:
    /// STANDARD for every pool].
    #[arg(long, env = "STRATA_POOL_CLASSES")]
    pub pool_classes: Option<String>,
    /// Storage classes and the media class each lives on, comma-separated NAME=MEDIA pairs
    /// (e.g. WARM=HDD,STANDARD_IA=HDD); STANDARD lives on the first pool's media class unless
    /// named.
    #[arg(long, env = "STRATA_STORAGE_CLASSES")]
    pub storage_classes: Option<String>,
}

/// The same settings as config-file keys.
#[derive(Debug, Default, Deserialize)]
pub struct ClassesFile {
    /// See [`ClassesArgs`].
    pub pool_classes: Option<Vec<String>>,
    /// See [`ClassesArgs`].
    pub storage_classes: Option<BTreeMap<String, String>>,
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn pairs(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    list(text)
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, media)) if !name.trim().is_empty() && !media.trim().is_empty() => {
                Ok((name.trim().to_owned(), media.trim().to_owned()))
            }
            _ => anyhow::bail!("storage class {pair:?} is not NAME=MEDIA"),
        })
        .collect()
}

/// Resolves the classes (checked against the pools when the layer takes them).
pub fn resolve(args: ClassesArgs, file: ClassesFile) -> anyhow::Result<StorageClassConfig> {
    let pool_classes = match args.pool_classes {
        Some(text) => list(&text),
        None => file.pool_classes.unwrap_or_default(),
    };
    let storage_classes = match args.storage_classes {
        Some(text) => pairs(&text)?,
        None => file.storage_classes.unwrap_or_default(),
    };
    Ok(StorageClassConfig {
        pool_classes,
        storage_classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_lists_and_pairs() {
        let args = ClassesArgs {
            pool_classes: Some("NVME, HDD".into()),
            storage_classes: Some("WARM=HDD,STANDARD_IA = HDD".into()),
        };
        let c = resolve(args, ClassesFile::default()).unwrap();
        assert_eq!(c.pool_classes, vec!["NVME", "HDD"]);
        assert_eq!(
            c.storage_classes.get("STANDARD_IA").map(String::as_str),
            Some("HDD")
        );
        let bad = ClassesArgs {
            storage_classes: Some("WARM".into()),
            ..Default::default()
        };
        assert!(resolve(bad, ClassesFile::default()).is_err());
        let file = ClassesFile {
            pool_classes: Some(vec!["SSD".into()]),
            storage_classes: None,
        };
        assert_eq!(
            resolve(ClassesArgs::default(), file).unwrap().pool_classes,
            vec!["SSD"]
        );
    }
}
