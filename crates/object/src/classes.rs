//! Storage classes: each pool has a media class (`NVME`, `HDD`, any name), and each storage
//! class (`STANDARD`, `STANDARD_IA`, `WARM`...) names the media class its data lives on.
//!
//! A version's storage class is part of its metadata (`ObjectMetadata::storage_class`, `None`
//! for `STANDARD`). A new key is placed in a pool of its class's media class; a key keeps its
//! home pool for later versions (its records stay there), and a version whose data should live
//! elsewhere has it moved by a transition (`transition.rs`).
//!
//! Without configuration every pool is of media class `STANDARD` and `STANDARD` maps to it:
//! placement is what it always was.

use std::collections::BTreeMap;

use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;

/// The storage class of versions written without one.
pub const STANDARD_CLASS: &str = "STANDARD";
/// The media class of a pool the configuration names none for.
pub const DEFAULT_POOL_CLASS: &str = "STANDARD";

/// The deployment's media and storage classes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageClassConfig {
    /// The media class of each pool, in pool order; pools past the end are
    /// [`DEFAULT_POOL_CLASS`].
    pub pool_classes: Vec<String>,
    /// Storage class → media class. `STANDARD` maps to the first pool's class unless named.
    pub storage_classes: BTreeMap<String, String>,
}

impl StorageClassConfig {
    /// The media class of pool `pool`.
    pub fn pool_class(&self, pool: usize) -> &str {
        self.pool_classes
            .get(pool)
            .map_or(DEFAULT_POOL_CLASS, String::as_str)
    }

    /// The media class a storage class lives on (`None`: `STANDARD`); `None` when the
    /// storage class does not exist.
    pub fn media_class_of(&self, storage_class: Option<&str>) -> Option<&str> {
        let name = storage_class.unwrap_or(STANDARD_CLASS);
        match self.storage_classes.get(name) {
            Some(media) => Some(media.as_str()),
            None if name == STANDARD_CLASS => Some(self.pool_class(0)),
            None => None,
        }
    }

    /// Every storage class that exists (`STANDARD` first).
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![STANDARD_CLASS.to_owned()];
        names.extend(
            self.storage_classes
                .keys()
                .filter(|name| *name != STANDARD_CLASS)
                .cloned(),
        );
        names
    }

    /// Checks the configuration against a deployment of `n_pools` pools: at most one class
    /// per pool, and every storage class maps to a media class some pool has.
    pub fn validate(&self, n_pools: usize) -> Result<(), String> {
        if self.pool_classes.len() > n_pools {
            return Err(format!(
                "{} pool classes are configured for {n_pools} pools",
                self.pool_classes.len()
            ));
        }
        if let Some(empty) = self.pool_classes.iter().find(|c| c.trim().is_empty()) {
            return Err(format!("a pool class is empty ({empty:?})"));
        }
        for (name, media) in &self.storage_classes {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "storage class {name:?}: names are letters, digits, '_' and '-'"
                ));
            }
            if !(0..n_pools).any(|p| self.pool_class(p) == media) {
                return Err(format!(
                    "storage class {name} maps to media class {media}, which no pool has"
                ));
            }
        }
        Ok(())
    }
}

impl ObjectLayer {
    /// Sets the deployment's media and storage classes (at start, before serving).
    pub fn set_storage_classes(&self, config: StorageClassConfig) -> ObjectResult<()> {
        config
            .validate(self.pools.len())
            .map_err(|reason| ObjectError::InvalidTopology { reason })?;
        *self.write_classes() = config;
        Ok(())
    }

    /// The deployment's media and storage classes.
    pub fn storage_classes(&self) -> StorageClassConfig {
        self.read_classes().clone()
    }

    /// Whether `name` is a storage class of this deployment.
    pub fn storage_class_exists(&self, name: &str) -> bool {
        self.read_classes().media_class_of(Some(name)).is_some()
    }

    /// The media class of a storage class, or `UnknownStorageClass`.
    pub(crate) fn media_class_of(&self, storage_class: Option<&str>) -> ObjectResult<String> {
        self.read_classes()
            .media_class_of(storage_class)
            .map(str::to_owned)
            .ok_or_else(|| ObjectError::UnknownStorageClass {
                name: storage_class.unwrap_or(STANDARD_CLASS).to_owned(),
            })
    }

    /// The media class of pool `pool`.
    pub(crate) fn pool_media_class(&self, pool: usize) -> String {
        self.read_classes().pool_class(pool).to_owned()
    }

    fn read_classes(&self) -> std::sync::RwLockReadGuard<'_, StorageClassConfig> {
        match self.classes.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn write_classes(&self) -> std::sync::RwLockWriteGuard<'_, StorageClassConfig> {
        match self.classes.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_to_pools() {
        let config = StorageClassConfig {
            pool_classes: vec!["NVME".into(), "HDD".into()],
            storage_classes: [("WARM".to_owned(), "HDD".to_owned())].into(),
        };
        assert!(config.validate(2).is_ok());
        assert_eq!(config.media_class_of(None), Some("NVME"));
        assert_eq!(config.media_class_of(Some("WARM")), Some("HDD"));
        assert_eq!(config.media_class_of(Some("COLD")), None);
        assert_eq!(config.names(), vec!["STANDARD", "WARM"]);
        assert!(config.validate(1).is_err());
        let bad = StorageClassConfig {
            storage_classes: [("WARM".to_owned(), "SSD".to_owned())].into(),
            ..config
        };
        assert!(bad.validate(2).is_err());
        assert_eq!(
            StorageClassConfig::default().media_class_of(None),
            Some(DEFAULT_POOL_CLASS)
        );
    }
}
