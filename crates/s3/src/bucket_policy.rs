//! Bucket policies: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy,
//! GetBucketPolicyStatus.
//!
//! The policy is stored as the bucket's `policy` configuration blob, exactly as the client sent
//! it (GetBucketPolicy answers those bytes), after [`strata_iam::policy::Policy::parse`]
//! accepted it for this bucket; a refused document is `MalformedPolicy` (400) with the reason.
//! The node that changes a policy forgets its cached copy at once; the other nodes' copies
//! expire within a second ([`crate::authz`]).

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_iam::policy::{Policy, PolicyKind};

use crate::access_control::BUCKET_POLICY_CONFIG;
use crate::service::{StrataS3, err_mapper};

/// AWS's limit on a bucket policy's size.
const BUCKET_POLICY_BYTES_MAX: usize = 20 * 1024;

fn no_such_policy() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
}

/// The bucket's stored policy document; `NoSuchBucketPolicy` when it has none.
async fn stored_policy<T>(s3: &StrataS3, req: &S3Request<T>, bucket: &str) -> S3Result<bytes::Bytes> {
    s3.layer
        .get_bucket_config(bucket, BUCKET_POLICY_CONFIG)
        .await
        .map_err(err_mapper(req))?
        .ok_or_else(no_such_policy)
}

pub(crate) async fn put_bucket_policy(
    s3: &StrataS3,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let map_err = err_mapper(&req);
    let bucket = req.input.bucket.as_str();
    let document = req.input.policy.as_bytes();
    if document.len() > BUCKET_POLICY_BYTES_MAX {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedPolicy,
            "Policy exceeds the maximum allowed document size.",
        ));
    }
    // The bucket must exist before its policy is judged (AWS answers NoSuchBucket first).
    let access = s3.access.fresh(bucket).await.map_err(&map_err)?;
    let policy = match Policy::parse(document, PolicyKind::Bucket { bucket }) {
        Ok(policy) => policy,
        Err(err) => {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedPolicy,
                err.to_string(),
            ));
        }
    };
    if access.public_access_block.block_public_policy && policy.is_public() {
        return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied"));
    }
    s3.layer
        .put_bucket_config(
            bucket,
            BUCKET_POLICY_CONFIG,
            bytes::Bytes::copy_from_slice(document),
        )
        .await
        .map_err(&map_err)?;
    s3.access.invalidate(bucket);
    let mut resp = S3Response::new(PutBucketPolicyOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_policy(
    s3: &StrataS3,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let bucket = req.input.bucket.as_str();
    let blob = stored_policy(s3, &req, bucket).await?;
    let policy = String::from_utf8(blob.to_vec()).map_err(|_| no_such_policy())?;
    Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) }))
}

pub(crate) async fn delete_bucket_policy(
    s3: &StrataS3,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let map_err = err_mapper(&req);
    let bucket = req.input.bucket.as_str();
    s3.layer
        .delete_bucket_config(bucket, BUCKET_POLICY_CONFIG)
        .await
        .map_err(&map_err)?;
    s3.access.invalidate(bucket);
    let mut resp = S3Response::new(DeleteBucketPolicyOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_policy_status(
    s3: &StrataS3,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let bucket = req.input.bucket.as_str();
    let blob = stored_policy(s3, &req, bucket).await?;
    let is_public = Policy::parse(&blob, PolicyKind::Bucket { bucket })
        .map(|p| p.is_public())
        .unwrap_or(false);
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(is_public),
        }),
    }))
}
