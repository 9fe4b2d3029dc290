//! System records: the deployment's own state (IAM users and policies now; tier and KMS
//! configuration later), kept in the drives' `System` table beside the buckets, never as
//! buckets or objects.
//!
//! A record is a caller's opaque value under `namespace` and `key` (UTF-8 without NUL; stored
//! as `namespace 0x00 key`, see `record.rs`). It is written like a bucket record: on every
//! drive of every erasure set, each set needing write quorum. It is read back from the first
//! set: per key, the value most of its drives hold, if that is at least read quorum (two
//! values held equally often: the later write wins). Drives being healed are no evidence.
//!
//! **Invariant:** a write is acknowledged only once write quorum of every set committed it; a
//! write that misses quorum anywhere is rolled back on every drive that took it (the previous
//! value restored, or the new one removed), as far as those drives still answer.
//!
//! **Invariant:** changes of one namespace are serialised by its lock ([`SystemLock`]):
//! writers hold it across their read-modify-write, and healing a namespace takes it too, so a
//! heal never writes back a value a writer is replacing.
//!
//! Change notices: the writer calls [`ObjectLayer::announce_system_change`] after its changes;
//! every other node's layer then delivers the namespace to its subscribers
//! ([`ObjectLayer::system_changes`]), which reload it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use strata_drive::{Drive, DriveError, MetaOp, Table};
use tokio::sync::broadcast;

use crate::deployment::HeldLock;
use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;
use crate::record::{self, SystemRecord};
use crate::set::{self, ErasureSet};

/// Longest namespace, in bytes.
pub const SYSTEM_NAMESPACE_BYTES_MAX: usize = 128;
/// Longest key within a namespace, in bytes.
pub const SYSTEM_KEY_BYTES_MAX: usize = 1024;
/// The namespace whose records are never sealed (it holds the KMS's state, including the
/// sealed configuration key).
pub const UNSEALED_NAMESPACE: &str = "kms";

/// Largest value of one system record, in bytes.
pub const SYSTEM_VALUE_BYTES_MAX: usize = 1024 * 1024;
/// Change notices queued per subscriber; one that falls further behind gets
/// `RecvError::Lagged` and should reload everything it follows.
pub const SYSTEM_NOTICES_QUEUED_MAX: usize = 256;

/// The layer's system-record state: per-namespace local locks and the change-notice channel.
#[derive(Debug)]
pub(crate) struct SystemState {
    /// One async mutex per namespace ever locked on this node (namespaces are few and fixed
    /// by the code, so the map stays small).
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Namespaces changed on other nodes, to this node's subscribers.
    notices: broadcast::Sender<String>,
}

impl SystemState {
    pub(crate) fn new() -> Self {
        SystemState {
            locks: std::sync::Mutex::new(HashMap::new()),
            notices: broadcast::channel(SYSTEM_NOTICES_QUEUED_MAX).0,
        }
    }

    fn local_lock(&self, namespace: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(locks.entry(namespace.to_string()).or_default())
    }
}

/// The held lock on one namespace of system records ([`ObjectLayer::lock_system`]). Dropping
/// it releases the lock: the deployment-wide one first, then this node's.
#[derive(Debug)]
pub struct SystemLock {
    _cluster: Option<Box<dyn HeldLock>>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

/// The value read quorum agrees on for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Agreed {
    /// The value as stored (envelope included), from a holder with the newest time.
    stored: Bytes,
    /// The caller's value.
    value: Vec<u8>,
}

/// One drive's records of a namespace: key within the namespace → (stored bytes, record).
type DriveRecords = BTreeMap<String, (Bytes, SystemRecord)>;

/// The drives of one set that took a change: (drive index, stored value before the change).
type Changed<'a> = (&'a ErasureSet, Vec<(usize, Option<Bytes>)>);

impl ObjectLayer {
    /// Stores a system record under `namespace` and `key`, replacing any value there. It is
    /// committed on every drive of every erasure set, like a bucket record, and acknowledged
    /// once write quorum of each set has it; a write missing quorum anywhere is rolled back
    /// (`WriteQuorum`, or `StorageFull` when full drives are the reason). Drives that missed
    /// an acknowledged write get it from the next heal sequence or scanner cycle.
    ///
    /// A caller that read-modify-writes holds [`ObjectLayer::lock_system`] across it (this
    /// method does not take the lock, so it can be called under it), and calls
    /// [`ObjectLayer::announce_system_change`] after its changes.
    pub async fn put_system_record(&self, namespace: &str, key: &str, value: Bytes) -> ObjectResult<()> {
        check_namespace(namespace)?;
        check_key(key)?;
        if value.len() > SYSTEM_VALUE_BYTES_MAX {
            return Err(ObjectError::EntityTooLarge {
                size_bytes: value.len() as u64,
                max_bytes: SYSTEM_VALUE_BYTES_MAX as u64,
            });
        }
        let system_key = record::system_key(namespace, key);
        // The KMS namespace holds the sealing key itself: never sealed.
        let value = if namespace == UNSEALED_NAMESPACE {
            value.to_vec()
        } else {
            self.seal_value(&system_key, &value)?
        };
        let stored = record::encode(&SystemRecord {
            mod_time_ns: self.next_mod_time_ns(),
            value,
        });
        self.commit_system(&system_key, Some(stored)).await
    }

    /// Removes a system record; an absent one is no error. Committed like
    /// [`ObjectLayer::put_system_record`], but as a deletion: a full drive still takes it (the
    /// drives' deletion reserve, as for DELETE).
    pub async fn delete_system_record(&self, namespace: &str, key: &str) -> ObjectResult<()> {
        check_namespace(namespace)?;
        check_key(key)?;
        self.commit_system(&record::system_key(namespace, key), None)
            .await
    }

    /// Every record of `namespace`, sorted by key, as read quorum of the first erasure set's
    /// drives agrees: per key, the value most drives hold, if at least read quorum hold it
    /// (between two values held equally often, the later write). Keys fewer drives hold are
    /// left out. Drives being healed do not count; fewer than read quorum drives answering is
    /// `ReadQuorum`.
    pub async fn list_system_records(&self, namespace: &str) -> ObjectResult<Vec<(String, Bytes)>> {
        check_namespace(namespace)?;
        let set = self.first_set()?;
        let answers = read_namespace(set, namespace).await;
        let agreed = agree(&answers, set.read_quorum())?;
        agreed
            .into_iter()
            .map(|(key, agreed)| {
                let value = Bytes::from(agreed.value);
                if namespace == UNSEALED_NAMESPACE {
                    return Ok((key, value));
                }
                let opened = self.open_value(&record::system_key(namespace, &key), value)?;
                Ok((key, opened))
            })
            .collect()
    }

    /// Takes the lock on `namespace` for a read-modify-write of its records, waiting for a
    /// holder to release it. On one node it is this node's async mutex of the namespace; in a
    /// cluster also the deployment-wide quorum lock `system/<namespace>` (bounded wait:
    /// `LockUnavailable` without a quorum of nodes). Not reentrant: a task holding it must not
    /// ask for it again. Healing a namespace takes it as well.
    pub async fn lock_system(&self, namespace: &str) -> ObjectResult<SystemLock> {
        check_namespace(namespace)?;
        let local = self.system.local_lock(namespace).lock_owned().await;
        let cluster = match &self.cluster {
            Some(cluster) => Some(cluster.lock(&format!("system/{namespace}")).await?),
            None => None,
        };
        Ok(SystemLock {
            _cluster: cluster,
            _local: local,
        })
    }

    /// Tells every other node that records of `namespace` changed, so that their subscribers
    /// ([`ObjectLayer::system_changes`]) reload it; returns once every reachable node was
    /// told. Nothing on a single node, and nothing to this node's own subscribers: the writer
    /// knows what it changed.
    pub async fn announce_system_change(&self, namespace: &str) {
        if let Some(cluster) = &self.cluster {
            cluster.system_changed(namespace).await;
        }
    }

    /// Subscribes to the namespaces whose records changed on other nodes (each notice is the
    /// namespace's name). A subscriber that falls more than [`SYSTEM_NOTICES_QUEUED_MAX`]
    /// notices behind gets `RecvError::Lagged` and should reload everything it follows.
    pub fn system_changes(&self) -> broadcast::Receiver<String> {
        self.system.notices.subscribe()
    }

    /// Delivers a change notice that arrived from another node to this node's subscribers
    /// (called by the cluster's node service). Without subscribers it is dropped.
    pub fn notify_system_change(&self, namespace: &str) {
        let _ = self.system.notices.send(namespace.to_string());
    }

    /// Brings every drive's system records in line with what read quorum of the first set
    /// agrees on: missing or different values are written, and, when every drive of the first
    /// set answered and none is being healed, records below quorum are removed. Each namespace
    /// is healed under its lock. Returns the records written or removed (`records_healed`)
    /// and the namespaces that could not be healed fully (`objects_failed`: no quorum, no
    /// lock, or a drive refusing the repair).
    pub async fn heal_system_records(&self) -> crate::heal::HealCounters {
        let mut counters = crate::heal::HealCounters::default();
        for namespace in self.system_namespaces().await {
            match self.heal_system_namespace(&namespace).await {
                Ok((n_healed, complete)) => {
                    counters.records_healed += n_healed;
                    if !complete {
                        counters.objects_failed += 1;
                    }
                }
                Err(err) => {
                    tracing::warn!(namespace, %err, "healing system records failed");
                    counters.objects_failed += 1;
                }
            }
        }
        if counters.records_healed > 0 {
            tracing::info!(n_records = counters.records_healed, "system records healed");
        }
        counters
    }

    /// Every namespace with a record on any drive that answers.
    async fn system_namespaces(&self) -> BTreeSet<String> {
        let scans = join_all(
            self.sets
                .iter()
                .flat_map(|set| set.drives.iter())
                .map(|drive| set::scan_all(drive.as_ref(), Table::System, b"")),
        )
        .await;
        scans
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let end = entry.key.iter().position(|b| *b == 0)?;
                String::from_utf8(entry.key[..end].to_vec()).ok()
            })
            .collect()
    }

    /// Heals one namespace (see [`ObjectLayer::heal_system_records`]): the records written or
    /// removed, and whether every drive that answered took its repair.
    async fn heal_system_namespace(&self, namespace: &str) -> ObjectResult<(u64, bool)> {
        let _lock = self.lock_system(namespace).await?;
        let first = self.first_set()?;
        let answers = read_namespace(first, namespace).await;
        let agreed = agree(&answers, first.read_quorum())?;
        // Removing needs proof, as for dangling versions: every drive of the first set answered.
        let may_remove =
            answers.iter().all(Option::is_some) && !first.slots.iter().any(|slot| slot.is_healing());
        let mut n_healed = 0;
        let mut complete = true;
        for set in &self.sets {
            let held = join_all(
                set.drives
                    .iter()
                    .map(|drive| drive_records(drive.as_ref(), namespace)),
            )
            .await;
            for (drive, held) in set.drives.iter().zip(held) {
                // A drive that cannot be read now is healed once it answers again.
                let Ok(held) = held else { continue };
                let mut ops = Vec::new();
                for (key, agreed) in &agreed {
                    if held.get(key).is_none_or(|(_, rec)| rec.value != agreed.value) {
                        ops.push(MetaOp::put(
                            Table::System,
                            record::system_key(namespace, key),
                            agreed.stored.to_vec(),
                        ));
                    }
                }
                if may_remove {
                    ops.extend(
                        held.keys()
                            .filter(|key| !agreed.contains_key(*key))
                            .map(|key| MetaOp::delete(Table::System, record::system_key(namespace, key))),
                    );
                }
                if ops.is_empty() {
                    continue;
                }
                let n_ops = ops.len() as u64;
                let only_removals = ops.iter().all(|op| matches!(op, MetaOp::Delete { .. }));
                let result = if only_removals {
                    drive.meta_commit_deleting(ops).await
                } else {
                    drive.meta_commit(ops).await
                };
                match result {
                    Ok(()) => n_healed += n_ops,
                    Err(err) => {
                        tracing::warn!(drive = drive.endpoint(), namespace, %err, "healing system records on a drive failed");
                        complete = false;
                    }
                }
            }
        }
        Ok((n_healed, complete))
    }

    /// The first erasure set: where system records are read from.
    fn first_set(&self) -> ObjectResult<&ErasureSet> {
        self.sets.first().ok_or(ObjectError::Internal {
            what: "a deployment without erasure sets",
        })
    }

    /// Commits `stored` (a put) or its absence (`None`: a deletion, into the drives' deletion
    /// reserve) under `key` on every drive, set by set, each needing write quorum; on a set
    /// missing it, rolls back every drive that took the change and fails.
    async fn commit_system(&self, key: &[u8], stored: Option<Vec<u8>>) -> ObjectResult<()> {
        // Per set already changed: (drive index, value before the change) of each drive that took it.
        let mut changed: Vec<Changed<'_>> = Vec::with_capacity(self.sets.len());
        for set in &self.sets {
            let outcomes = join_all(set.drives.iter().enumerate().map(|(drive_idx, drive)| {
                let stored = stored.clone();
                async move {
                    // The value before, to restore on a rollback; a drive that cannot tell is
                    // not changed (it counts as not taking the write).
                    let previous = drive.meta_get(Table::System, key).await.ok()?;
                    let result = match stored {
                        Some(value) => {
                            drive
                                .meta_commit(vec![MetaOp::put(Table::System, key.to_vec(), value)])
                                .await
                        }
                        None => {
                            drive
                                .meta_commit_deleting(vec![MetaOp::delete(Table::System, key.to_vec())])
                                .await
                        }
                    };
                    result.ok().map(|()| (drive_idx, previous))
                }
            }))
            .await;
            let took: Vec<(usize, Option<Bytes>)> = outcomes.into_iter().flatten().collect();
            let n_ok = took.len();
            changed.push((set, took));
            if n_ok < set.write_quorum() {
                roll_back(key, &changed).await;
                return Err(set.write_quorum_error(n_ok));
            }
        }
        Ok(())
    }
}

/// Restores the value each drive held before a change that missed quorum.
async fn roll_back(key: &[u8], changed: &[Changed<'_>]) {
    let restores = changed.iter().flat_map(|(set, took)| {
        took.iter().map(|(drive_idx, previous)| {
            let drive = &set.drives[*drive_idx];
            async move {
                let result = match previous {
                    Some(value) => {
                        drive
                            .meta_commit(vec![MetaOp::put(Table::System, key.to_vec(), value.to_vec())])
                            .await
                    }
                    None => {
                        drive
                            .meta_commit_deleting(vec![MetaOp::delete(Table::System, key.to_vec())])
                            .await
                    }
                };
                if let Err(err) = result {
                    tracing::warn!(drive = drive.endpoint(), %err, "rolling back a system record failed");
                }
            }
        })
    });
    join_all(restores).await;
}

/// Each drive's records of `namespace` in `set`, `None` for a drive that did not answer or
/// is being healed (its silence or emptiness proves nothing).
async fn read_namespace(set: &ErasureSet, namespace: &str) -> Vec<Option<DriveRecords>> {
    join_all(set.slots.iter().map(|slot| async move {
        if slot.is_healing() {
            return None;
        }
        drive_records(slot.as_ref(), namespace).await.ok()
    }))
    .await
}

/// One drive's records of `namespace`. An entry that does not decode (or whose key is not
/// UTF-8) counts as absent on that drive.
async fn drive_records(drive: &dyn Drive, namespace: &str) -> Result<DriveRecords, DriveError> {
    let prefix = record::system_prefix(namespace);
    let entries = set::scan_all(drive, Table::System, &prefix).await?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let Some(key) = entry
            .key
            .get(prefix.len()..)
            .and_then(|k| std::str::from_utf8(k).ok())
        else {
            tracing::warn!(
                drive = drive.endpoint(),
                namespace,
                "system record key is not UTF-8"
            );
            continue;
        };
        match record::decode::<SystemRecord>(&entry.value) {
            Ok(rec) => {
                out.insert(key.to_string(), (entry.value, rec));
            }
            Err(err) => {
                tracing::warn!(drive = drive.endpoint(), namespace, key, %err, "undecodable system record")
            }
        }
    }
    Ok(out)
}

/// What read quorum of `answers` (one per drive; `None`: not answering) agrees on, by key:
/// per key the value most drives hold (between equally held values the newest, then the
/// bytewise greatest, so every reader picks the same), kept when at least `read_quorum`
/// drives hold it. Fewer than `read_quorum` answers is `ReadQuorum`.
fn agree(answers: &[Option<DriveRecords>], read_quorum: usize) -> ObjectResult<BTreeMap<String, Agreed>> {
    let n_answered = answers.iter().flatten().count();
    if n_answered < read_quorum {
        return Err(ObjectError::ReadQuorum {
            needed: read_quorum,
            got: n_answered,
        });
    }
    // Per key, per distinct value: holders, and the newest stored form.
    let mut votes: BTreeMap<&str, Vec<Vote<'_>>> = BTreeMap::new();
    for records in answers.iter().flatten() {
        for (key, (stored, rec)) in records {
            let candidates = votes.entry(key.as_str()).or_default();
            match candidates
                .iter_mut()
                .find(|vote| vote.value == rec.value.as_slice())
            {
                Some(vote) => {
                    vote.holders += 1;
                    if rec.mod_time_ns > vote.newest_ns {
                        vote.newest_ns = rec.mod_time_ns;
                        vote.stored = stored;
                    }
                }
                None => candidates.push(Vote {
                    value: &rec.value,
                    holders: 1,
                    newest_ns: rec.mod_time_ns,
                    stored,
                }),
            }
        }
    }
    Ok(votes
        .into_iter()
        .filter_map(|(key, candidates)| {
            let best = candidates
                .into_iter()
                .max_by(|a, b| (a.holders, a.newest_ns, a.value).cmp(&(b.holders, b.newest_ns, b.value)))?;
            (best.holders >= read_quorum).then(|| {
                (
                    key.to_string(),
                    Agreed {
                        stored: best.stored.clone(),
                        value: best.value.to_vec(),
                    },
                )
            })
        })
        .collect())
}

/// One distinct value of a key and the drives that hold it.
struct Vote<'a> {
    value: &'a [u8],
    holders: usize,
    newest_ns: i64,
    stored: &'a Bytes,
}

fn check_namespace(namespace: &str) -> ObjectResult<()> {
    if namespace.is_empty() {
        return Err(ObjectError::InvalidRequest {
            reason: "a system record namespace must not be empty",
        });
    }
    if namespace.len() > SYSTEM_NAMESPACE_BYTES_MAX {
        return Err(ObjectError::InvalidRequest {
            reason: "a system record namespace is longer than allowed",
        });
    }
    if namespace.contains('\0') {
        return Err(ObjectError::InvalidRequest {
            reason: "a system record namespace must not contain NUL",
        });
    }
    Ok(())
}

fn check_key(key: &str) -> ObjectResult<()> {
    if key.is_empty() {
        return Err(ObjectError::InvalidRequest {
            reason: "a system record key must not be empty",
        });
    }
    if key.len() > SYSTEM_KEY_BYTES_MAX {
        return Err(ObjectError::InvalidRequest {
            reason: "a system record key is longer than allowed",
        });
    }
    if key.contains('\0') {
        return Err(ObjectError::InvalidRequest {
            reason: "a system record key must not contain NUL",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(records: &[(&str, &str, i64)]) -> Option<DriveRecords> {
        Some(
            records
                .iter()
                .map(|(key, value, mod_time_ns)| {
                    let rec = SystemRecord {
                        mod_time_ns: *mod_time_ns,
                        value: value.as_bytes().to_vec(),
                    };
                    (key.to_string(), (Bytes::from(record::encode(&rec)), rec))
                })
                .collect(),
        )
    }

    fn values(agreed: &BTreeMap<String, Agreed>) -> Vec<(&str, &str)> {
        agreed
            .iter()
            .map(|(k, a)| (k.as_str(), std::str::from_utf8(&a.value).unwrap()))
            .collect()
    }

    #[test]
    fn the_most_held_value_wins_if_read_quorum_holds_it() {
        let answers = vec![
            held(&[("a", "new", 2), ("b", "x", 1), ("c", "only", 1)]),
            held(&[("a", "new", 2), ("b", "x", 1)]),
            held(&[("a", "old", 1), ("b", "y", 3)]),
            None,
        ];
        let agreed = agree(&answers, 2).unwrap();
        assert_eq!(values(&agreed), [("a", "new"), ("b", "x")]);
        // With a higher quorum, two holders are not enough.
        let agreed = agree(&answers, 3).unwrap();
        assert!(agreed.is_empty());
        // Too few answers.
        assert!(matches!(
            agree(&answers, 4),
            Err(ObjectError::ReadQuorum { needed: 4, got: 3 })
        ));
    }

    #[test]
    fn equally_held_values_go_to_the_later_write_whatever_the_drive_order() {
        let new_first = vec![
            held(&[("k", "new", 20)]),
            held(&[("k", "new", 20)]),
            held(&[("k", "old", 10)]),
            held(&[("k", "old", 10)]),
        ];
        let mut old_first = new_first.clone();
        old_first.reverse();
        for answers in [new_first, old_first] {
            let agreed = agree(&answers, 2).unwrap();
            assert_eq!(values(&agreed), [("k", "new")]);
        }
        // The same value written twice counts as one value; the newest copy is the one kept.
        let answers = vec![
            held(&[("k", "v", 10)]),
            held(&[("k", "v", 30)]),
            held(&[("k", "w", 20)]),
        ];
        let agreed = agree(&answers, 2).unwrap();
        let kept: SystemRecord = record::decode(&agreed["k"].stored).unwrap();
        assert_eq!(kept.mod_time_ns, 30);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_namespace("iam").is_ok());
        assert!(check_namespace("").is_err());
        assert!(check_namespace("a\0b").is_err());
        assert!(check_namespace(&"n".repeat(SYSTEM_NAMESPACE_BYTES_MAX)).is_ok());
        assert!(check_namespace(&"n".repeat(SYSTEM_NAMESPACE_BYTES_MAX + 1)).is_err());
        assert!(check_key("users/alice").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("a\0").is_err());
        assert!(check_key(&"k".repeat(SYSTEM_KEY_BYTES_MAX + 1)).is_err());
    }
}
