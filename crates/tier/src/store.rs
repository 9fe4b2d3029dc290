//! One tier's client: `object_store` for S3, Azure Blob Storage and Google Cloud Storage,
//! behind the three operations the object layer needs (upload a stream under a name, read a
//! byte range, delete) and a probe (`verify`).
//!
//! Uploads stream: bodies up to [`SINGLE_PUT_BYTES_MAX`] go in one request, larger ones as
//! multipart uploads of [`PART_BYTES`] parts with at most [`PARTS_IN_FLIGHT`] in flight, so
//! an upload holds a bounded amount of memory whatever its size. Errors name the tier and
//! what failed, never a credential.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use strata_object::{ObjectError, PutStream};

use crate::TierError;
use crate::config::{TierConfig, TierKind};

/// Largest body uploaded in one request.
pub const SINGLE_PUT_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// Part size of multipart uploads.
pub const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploading at once, at most.
pub const PARTS_IN_FLIGHT: usize = 2;
/// How long one request to a tier may take before it counts as down.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected tier.
pub struct TierStore {
    config: TierConfig,
    store: Arc<dyn ObjectStore>,
}

// By hand: the clients' own `Debug` may show credentials (object_store's Azure client prints
// its decoded account key).
impl std::fmt::Debug for TierStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn options() -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(true)
        .with_timeout(REQUEST_TIMEOUT)
        .with_connect_timeout(CONNECT_TIMEOUT)
}

fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

impl TierStore {
    /// A client for `config` (nothing is contacted yet).
    pub fn connect(config: &TierConfig) -> Result<TierStore, TierError> {
        let build_error =
            |err: object_store::Error| TierError::Invalid(format!("tier {}: {err}", config.name));
        let store: Arc<dyn ObjectStore> = match &config.kind {
            TierKind::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key,
                ..
            } => Arc::new(
                AmazonS3Builder::new()
                    .with_endpoint(endpoint)
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key)
                    .with_secret_access_key(secret_key)
                    .with_virtual_hosted_style_request(false)
                    .with_client_options(options())
                    .with_retry(retry())
                    .build()
                    .map_err(build_error)?,
            ),
            TierKind::Azure {
                endpoint,
                account,
                access_key,
                container,
                ..
            } => {
                let mut builder = MicrosoftAzureBuilder::new()
                    .with_account(account)
                    .with_access_key(access_key)
                    .with_container_name(container)
                    .with_client_options(options())
                    .with_retry(retry());
                if !endpoint.is_empty() {
                    builder = builder.with_endpoint(endpoint.clone()).with_allow_http(true);
                }
                Arc::new(builder.build().map_err(build_error)?)
            }
            TierKind::Gcs {
                endpoint,
                bucket,
                credentials,
                ..
            } => {
                let mut builder = GoogleCloudStorageBuilder::new()
                    .with_bucket_name(bucket)
                    .with_service_account_key(credentials)
                    .with_client_options(options())
                    .with_retry(retry());
                if !endpoint.is_empty() {
                    builder = builder.with_base_url(endpoint);
                }
                Arc::new(builder.build().map_err(build_error)?)
            }
        };
        Ok(TierStore {
            config: config.clone(),
            store,
        })
    }

    /// The tier's configuration.
    pub fn config(&self) -> &TierConfig {
        &self.config
    }

    fn path(&self, name: &str) -> Path {
        let prefix = self.config.prefix().trim_matches('/');
        if prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{prefix}/{name}"))
        }
    }

    fn unavailable(&self, what: &str, err: impl std::fmt::Display) -> ObjectError {
        ObjectError::TierUnavailable {
            tier: self.config.name.clone(),
            reason: format!("{what}: {err}"),
        }
    }

    /// Uploads `size` bytes from `body` as `name`.
    pub async fn put(&self, name: &str, mut body: PutStream, size: u64) -> Result<(), ObjectError> {
        let path = self.path(name);
        if size <= SINGLE_PUT_BYTES_MAX {
            let mut chunks = Vec::new();
            let mut got = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(body_error)?;
                got += chunk.len() as u64;
                chunks.push(chunk);
            }
            check_size(got, size)?;
            self.store
                .put(&path, PutPayload::from_iter(chunks))
                .await
                .map_err(|e| self.unavailable("upload", e))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.unavailable("starting an upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut got = 0u64;
        let result: Result<(), ObjectError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(body_error)?;
                got += chunk.len() as u64;
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.unavailable("uploading a part", e))?;
                writer.write(&chunk);
            }
            check_size(got, size)
        }
        .await;
        match result {
            Ok(()) => {
                writer
                    .finish()
                    .await
                    .map_err(|e| self.unavailable("completing an upload", e))?;
                Ok(())
            }
            Err(err) => {
                if let Err(abort) = writer.abort().await {
                    tracing::debug!(tier = %self.config.name, %abort, "aborting a failed upload failed");
                }
                Err(err)
            }
        }
    }

    /// The bytes `[offset, offset + length)` of `name`.
    pub async fn get(&self, name: &str, offset: u64, length: u64) -> Result<PutStream, ObjectError> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + length)),
            ..Default::default()
        };
        let result = match self.store.get_opts(&self.path(name), opts).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ObjectError::Corrupt {
                    what: format!("the object {name} is missing from tier {}", self.config.name),
                });
            }
            Err(e) => return Err(self.unavailable("reading", e)),
        };
        let tier = self.config.name.clone();
        Ok(Box::pin(result.into_stream().map(move |chunk| {
            chunk.map_err(|e| {
                Box::new(ObjectError::TierUnavailable {
                    tier: tier.clone(),
                    reason: format!("reading: {e}"),
                }) as strata_object::BoxError
            })
        })))
    }

    /// Deletes `name` (gone already is fine).
    pub async fn delete(&self, name: &str) -> Result<(), ObjectError> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.unavailable("deleting", e)),
        }
    }

    /// Whether `name` is there.
    pub async fn exists(&self, name: &str) -> Result<bool, ObjectError> {
        match self.store.head(&self.path(name)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.unavailable("checking an object", e)),
        }
    }

    /// Writes, reads back and deletes a probe object: the tier is reachable, the credentials
    /// work and the bucket exists.
    pub async fn verify(&self) -> Result<(), TierError> {
        let name = format!("strata-probe-{}", uuid::Uuid::new_v4().as_simple());
        let probe = Bytes::from_static(b"strata tier probe");
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            TierError::Unreachable(format!("tier {} ({what}): {e}", self.config.name))
        };
        self.store
            .put(&self.path(&name), PutPayload::from(probe.clone()))
            .await
            .map_err(|e| fail("writing a probe", &e))?;
        let read = self
            .store
            .get(&self.path(&name))
            .await
            .map_err(|e| fail("reading the probe", &e))?
            .bytes()
            .await
            .map_err(|e| fail("reading the probe", &e))?;
        self.store
            .delete(&self.path(&name))
            .await
            .map_err(|e| fail("deleting the probe", &e))?;
        if read != probe {
            return Err(TierError::Unreachable(format!(
                "tier {}: the probe read back differs",
                self.config.name
            )));
        }
        Ok(())
    }
}

fn check_size(got: u64, size: u64) -> Result<(), ObjectError> {
    if got == size {
        Ok(())
    } else {
        Err(ObjectError::Corrupt {
            what: format!("a tier upload got {got} bytes, not {size}"),
        })
    }
}

/// A body error: the object layer's own (a read of the version failed), or another.
fn body_error(err: strata_object::BoxError) -> ObjectError {
    match err.downcast::<ObjectError>() {
        Ok(err) => *err,
        Err(_) => ObjectError::Internal {
            what: "reading the version's stored bytes for a tier upload",
        },
    }
}
