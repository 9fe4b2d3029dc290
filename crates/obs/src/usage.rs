//! Objects and bytes per bucket for the cluster metrics: a background walk over every bucket's
//! listing (latest versions), repeated every `interval`, whose last complete result scrapes
//! read. Scrapes never list anything themselves.
//!
//! Invariant: one walk at a time, paced by [`USAGE_PAGE_PAUSE`] between listing pages so the
//! walk never competes with requests for long; a walk that fails keeps the previous result.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use strata_object::{LIST_KEYS_MAX, ListOptions, ObjectLayer};

/// Pause between two listing pages of a usage walk.
pub const USAGE_PAGE_PAUSE: Duration = Duration::from_millis(5);

/// Usage of one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketUsage {
    /// Bucket name.
    pub bucket: String,
    /// Latest, non-deleted objects.
    pub n_objects: u64,
    /// Their total size.
    pub size_bytes: u64,
}

/// The result of the last complete walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageSnapshot {
    /// When it completed, seconds since the epoch (0: no walk completed yet).
    pub updated_unix_secs: u64,
    /// Per bucket, in name order.
    pub buckets: Vec<BucketUsage>,
}

/// The shared last result.
#[derive(Debug, Default)]
pub struct UsageCache {
    last: Mutex<UsageSnapshot>,
}

impl UsageCache {
    /// The last complete walk.
    pub fn snapshot(&self) -> UsageSnapshot {
        match self.last.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn store(&self, s: UsageSnapshot) {
        match self.last.lock() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }

    /// Walks every bucket once and stores the result.
    pub async fn refresh(&self, layer: &ObjectLayer) -> Result<(), strata_object::ObjectError> {
        let mut out = Vec::new();
        for b in layer.list_buckets().await? {
            let mut usage = BucketUsage {
                bucket: b.name.clone(),
                n_objects: 0,
                size_bytes: 0,
            };
            let mut marker = None;
            loop {
                let page = layer
                    .list_objects(
                        &b.name,
                        ListOptions {
                            marker: marker.take(),
                            max_keys: LIST_KEYS_MAX,
                            ..ListOptions::default()
                        },
                    )
                    .await;
                let page = match page {
                    Ok(p) => p,
                    // Deleted during the walk: not a failure of the walk.
                    Err(strata_object::ObjectError::NoSuchBucket { .. }) => break,
                    Err(e) => return Err(e),
                };
                usage.n_objects += page.objects.len() as u64;
                usage.size_bytes += page.objects.iter().map(|o| o.size).sum::<u64>();
                if !page.is_truncated {
                    break;
                }
                marker = page
                    .next_marker
                    .or_else(|| page.objects.last().map(|o| o.key.clone()));
                if marker.is_none() {
                    break;
                }
                tokio::time::sleep(USAGE_PAGE_PAUSE).await;
            }
            out.push(usage);
        }
        out.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        self.store(UsageSnapshot {
            updated_unix_secs: crate::audit::unix_secs_now(),
            buckets: out,
        });
        Ok(())
    }

    /// Refreshes now and then every `interval`, until the layer is dropped.
    pub fn spawn(self: &Arc<Self>, layer: Weak<ObjectLayer>, interval: Duration) {
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let Some(l) = layer.upgrade() else { return };
                if let Err(e) = cache.refresh(&l).await {
                    tracing::warn!(error = %e, "bucket usage walk failed; keeping the previous result");
                }
                drop(l);
                tokio::time::sleep(interval).await;
            }
        });
    }
}
