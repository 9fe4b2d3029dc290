//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning, PutBucketVersioning.
//!
//! Invariant: a bucket is created only in this deployment's region; versioning can be set to
//! `Enabled` or `Suspended` only (never back to unversioned, as in S3).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_object::{MakeBucketOptions, VersioningState};

use crate::access_control::{AskedAcl, create_bucket_configs, grant_headers};
use crate::convert;
use crate::service::{StrataS3, err_mapper};

/// AWS's upper bound of ListBuckets' `max-buckets`.
const LIST_BUCKETS_MAX: i32 = 10_000;

/// The region S3 reports as an empty location constraint.
const DEFAULT_REGION: &str = "us-east-1";

pub(crate) async fn list_buckets(
    s3: &StrataS3,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let map_err = err_mapper(&req);
    let prefix = req.input.prefix.clone();
    let region = req.input.bucket_region.clone();
    let max = match req.input.max_buckets {
        None => usize::MAX,
        Some(n) if (1..=LIST_BUCKETS_MAX).contains(&n) => usize::try_from(n).unwrap_or(usize::MAX),
        Some(_) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "max-buckets must be between 1 and 10000",
            ));
        }
    };
    let after = req
        .input
        .continuation_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(convert::decode_continuation_token)
        .transpose()?;
    let account = s3.request_account(&req);
    // An account lists its own buckets, as in AWS; the deployment's root (the operator)
    // lists every account's.
    let all = s3.sees_all_buckets(&req);
    let mut buckets = s3.layer.list_buckets().await.map_err(map_err)?;
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    let mut listed: Vec<Bucket> = buckets
        .into_iter()
        .filter(|b| all || b.owner.as_deref().unwrap_or(&s3.account_id) == account)
        .filter(|b| prefix.as_deref().is_none_or(|p| b.name.starts_with(p)))
        .filter(|b| region.as_deref().is_none_or(|r| b.location == r))
        .filter(|b| after.as_deref().is_none_or(|a| b.name.as_str() > a))
        .take(max.saturating_add(1))
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(convert::timestamp(b.created)),
            bucket_region: Some(b.location),
        })
        .collect();
    // One more than asked tells whether there is a next page; its token is the last name.
    let continuation_token = (listed.len() > max).then(|| {
        listed.truncate(max);
        listed
            .last()
            .and_then(|b| b.name.as_deref())
            .map(convert::encode_continuation_token)
            .unwrap_or_default()
    });
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(listed),
        owner: Some(crate::convert::owner(&s3.account_owner(&account))),
        prefix,
        continuation_token,
    }))
}

pub(crate) async fn create_bucket(
    s3: &StrataS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let map_err = err_mapper(&req);
    let account = s3.request_account(&req);
    let input = req.input;
    let constraint = input
        .create_bucket_configuration
        .and_then(|c| c.location_constraint)
        .map(|l| l.as_str().to_owned())
        .filter(|l| !l.is_empty());
    let location = match constraint {
        None => s3.region.clone(),
        Some(l) if l == s3.region => l,
        Some(_) => {
            return Err(S3Error::with_message(
                S3ErrorCode::IllegalLocationConstraintException,
                format!(
                    "The specified location-constraint is not valid for this endpoint (region {})",
                    s3.region
                ),
            ));
        }
    };
    let owner = s3.account_owner(&account);
    let asked = AskedAcl::from_headers(
        input.acl.as_ref().map(BucketCannedACL::as_str),
        &grant_headers(
            input.grant_full_control.as_deref(),
            input.grant_read.as_deref(),
            input.grant_read_acp.as_deref(),
            input.grant_write.as_deref(),
            input.grant_write_acp.as_deref(),
        ),
        &owner,
    )?;
    let configs = create_bucket_configs(input.object_ownership.as_ref(), &asked, &owner, &|id| {
        s3.resolve_canonical_id(id)
    })?;
    let created = s3
        .layer
        .make_bucket(
            &input.bucket,
            MakeBucketOptions {
                location,
                owner: (account != s3.account_id).then(|| account.clone()),
                // Object lock turns versioning on with the bucket (AWS).
                object_lock: input.object_lock_enabled_for_bucket == Some(true),
                configs,
            },
        )
        .await;
    match created {
        Ok(()) => {}
        // Bucket names are global: another account's bucket is "already exists".
        Err(strata_object::ObjectError::BucketExists { .. })
            if s3
                .layer
                .bucket_info(&input.bucket)
                .await
                .is_ok_and(|b| b.owner.as_deref().unwrap_or(&s3.account_id) != account) =>
        {
            return Err(S3Error::with_message(
                S3ErrorCode::BucketAlreadyExists,
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            ));
        }
        // AWS's legacy rule: re-creating a bucket you own answers 200 in us-east-1 (its
        // configuration is left as it is), BucketAlreadyOwnedByYou in every other region.
        Err(strata_object::ObjectError::BucketExists { .. }) if s3.region == DEFAULT_REGION => {}
        Err(err) => return Err(map_err(err)),
    }
    s3.access.invalidate(&input.bucket);
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", input.bucket)),
    }))
}

pub(crate) async fn head_bucket(
    s3: &StrataS3,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let map_err = err_mapper(&req);
    let info = s3.layer.bucket_info(&req.input.bucket).await.map_err(map_err)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(info.location),
        ..Default::default()
    }))
}

pub(crate) async fn delete_bucket(
    s3: &StrataS3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let map_err = err_mapper(&req);
    s3.layer
        .delete_bucket(&req.input.bucket, false)
        .await
        .map_err(map_err)?;
    s3.access.invalidate(&req.input.bucket);
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(crate) async fn get_bucket_location(
    s3: &StrataS3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let map_err = err_mapper(&req);
    let info = s3.layer.bucket_info(&req.input.bucket).await.map_err(map_err)?;
    // S3 reports us-east-1 as an empty LocationConstraint.
    let location_constraint = if info.location.is_empty() || info.location == DEFAULT_REGION {
        None
    } else {
        Some(BucketLocationConstraint::from(info.location))
    };
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
}

pub(crate) async fn get_bucket_versioning(
    s3: &StrataS3,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let map_err = err_mapper(&req);
    let info = s3.layer.bucket_info(&req.input.bucket).await.map_err(map_err)?;
    let status = match info.versioning {
        VersioningState::Unversioned => None,
        VersioningState::Enabled => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::ENABLED,
        )),
        VersioningState::Suspended => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::SUSPENDED,
        )),
    };
    Ok(S3Response::new(GetBucketVersioningOutput {
        status,
        mfa_delete: None,
    }))
}

pub(crate) async fn put_bucket_versioning(
    s3: &StrataS3,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let map_err = err_mapper(&req);
    let config = req.input.versioning_configuration;
    // MFA delete needs an MFA device of the root account to check `x-amz-mfa` against; Strata
    // has none, so enabling it is refused as S3 refuses a request without a valid token.
    // `Disabled` (the state every bucket is in) is accepted.
    match config.mfa_delete.as_ref().map(MFADelete::as_str) {
        None | Some(MFADelete::DISABLED) => {}
        Some(MFADelete::ENABLED) if req.input.mfa.is_none() => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Enabling MFA delete requires the x-amz-mfa header with the root account's MFA device serial and code.",
            ));
        }
        Some(MFADelete::ENABLED) => {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Mfa Authentication failed: no MFA device is registered with this deployment.",
            ));
        }
        Some(_) => {
            return Err(S3Error::with_message(
                S3ErrorCode::IllegalVersioningConfigurationException,
                "The versioning configuration specified in the request is invalid.",
            ));
        }
    }
    let state = versioning_state(config.status.as_ref().map(BucketVersioningStatus::as_str))?;
    s3.layer
        .set_bucket_versioning(&req.input.bucket, state)
        .await
        .map_err(map_err)?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

fn versioning_state(status: Option<&str>) -> S3Result<VersioningState> {
    match status {
        Some(BucketVersioningStatus::ENABLED) => Ok(VersioningState::Enabled),
        Some(BucketVersioningStatus::SUSPENDED) => Ok(VersioningState::Suspended),
        _ => Err(S3Error::with_message(
            S3ErrorCode::IllegalVersioningConfigurationException,
            "The versioning configuration specified in the request is invalid.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioning_status_parses() {
        assert_eq!(
            versioning_state(Some("Enabled")).unwrap(),
            VersioningState::Enabled
        );
        assert_eq!(
            versioning_state(Some("Suspended")).unwrap(),
            VersioningState::Suspended
        );
        assert!(versioning_state(Some("enabled")).is_err());
        assert!(versioning_state(None).is_err());
    }
}
