//! Every S3 operation's AWS action name, and the action lists that validate a policy's
//! `Action` entries.
//!
//! [`action_for`] is the only table the front door consults: it maps an s3s operation name
//! (`GetObject`, `ListObjectsV2`, `PutBucketPolicy`, ...) to the action AWS authorizes it
//! with and the kind of resource the action applies to. Every operation s3s 0.14.1 defines
//! is mapped (a unit test lists them all).
//!
//! A few operations need more than one check, which the front door makes itself:
//! - `CopyObject` and `UploadPartCopy` need `s3:PutObject` on the destination (returned here)
//!   and `s3:GetObject` (`s3:GetObjectVersion` with a source version id) on the source;
//! - `DeleteObjects` is a bucket-level request returned here as `s3:DeleteObject` on the
//!   bucket, but AWS authorizes each key it names: the front door checks `s3:DeleteObject`
//!   (or `s3:DeleteObjectVersion`) on every `arn:aws:s3:::bucket/key`.

/// The kind of resource an operation acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// The whole service (`arn:aws:s3:::*`): `ListBuckets`.
    Service,
    /// A bucket (`arn:aws:s3:::bucket`).
    Bucket,
    /// An object (`arn:aws:s3:::bucket/key`).
    Object,
}

/// The AWS action an S3 operation (s3s operation name, e.g. `GetObject`, `ListObjectsV2`,
/// `PutBucketPolicy`) needs, given whether the request names a version id; None for an
/// unknown name.
///
/// Operations that are not S3 proper map to their own services' actions:
/// `CreateSession` → `s3express:CreateSession`, `ListDirectoryBuckets` →
/// `s3express:ListAllMyDirectoryBuckets`, `WriteGetObjectResponse` →
/// `s3-object-lambda:WriteGetObjectResponse` (policies cannot name those services, so only
/// the root user or an `"Action": "*"` statement allows them).
pub fn action_for(operation: &str, versioned: bool) -> Option<(&'static str, ResourceKind)> {
    use ResourceKind::{Bucket, Object, Service};
    let pick = |plain: &'static str, version: &'static str| if versioned { version } else { plain };
    Some(match operation {
        // Objects.
        "GetObject" => (pick("s3:GetObject", "s3:GetObjectVersion"), Object),
        "HeadObject" => (pick("s3:GetObject", "s3:GetObjectVersion"), Object),
        "SelectObjectContent" => ("s3:GetObject", Object),
        "GetObjectAcl" => (pick("s3:GetObjectAcl", "s3:GetObjectVersionAcl"), Object),
        "PutObjectAcl" => (pick("s3:PutObjectAcl", "s3:PutObjectVersionAcl"), Object),
        "GetObjectAttributes" => (
            pick("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
            Object,
        ),
        "GetObjectTagging" => (pick("s3:GetObjectTagging", "s3:GetObjectVersionTagging"), Object),
        "PutObjectTagging" => (pick("s3:PutObjectTagging", "s3:PutObjectVersionTagging"), Object),
        "DeleteObjectTagging" => (
            pick("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
            Object,
        ),
        "GetObjectTorrent" => (pick("s3:GetObjectTorrent", "s3:GetObjectVersionTorrent"), Object),
        "GetObjectRetention" => ("s3:GetObjectRetention", Object),
        "PutObjectRetention" => ("s3:PutObjectRetention", Object),
        "GetObjectLegalHold" => ("s3:GetObjectLegalHold", Object),
        "PutObjectLegalHold" => ("s3:PutObjectLegalHold", Object),
        "DeleteObject" => (pick("s3:DeleteObject", "s3:DeleteObjectVersion"), Object),
        "DeleteObjects" => ("s3:DeleteObject", Bucket),
        "PutObject" | "PostObject" | "CopyObject" => ("s3:PutObject", Object),
        "CreateMultipartUpload" | "UploadPart" | "UploadPartCopy" | "CompleteMultipartUpload" => {
            ("s3:PutObject", Object)
        }
        "AbortMultipartUpload" => ("s3:AbortMultipartUpload", Object),
        "ListParts" => ("s3:ListMultipartUploadParts", Object),
        "RestoreObject" => ("s3:RestoreObject", Object),

        // The service.
        "ListBuckets" => ("s3:ListAllMyBuckets", Service),
        "ListDirectoryBuckets" => ("s3express:ListAllMyDirectoryBuckets", Service),
        "WriteGetObjectResponse" => ("s3-object-lambda:WriteGetObjectResponse", Service),

        // Buckets.
        "CreateSession" => ("s3express:CreateSession", Bucket),
        "CreateBucket" => ("s3:CreateBucket", Bucket),
        "DeleteBucket" => ("s3:DeleteBucket", Bucket),
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => ("s3:ListBucket", Bucket),
        "ListObjectVersions" => ("s3:ListBucketVersions", Bucket),
        "ListMultipartUploads" => ("s3:ListBucketMultipartUploads", Bucket),
        "GetBucketLocation" => ("s3:GetBucketLocation", Bucket),
        "GetBucketVersioning" => ("s3:GetBucketVersioning", Bucket),
        "PutBucketVersioning" => ("s3:PutBucketVersioning", Bucket),
        "GetBucketPolicy" => ("s3:GetBucketPolicy", Bucket),
        "PutBucketPolicy" => ("s3:PutBucketPolicy", Bucket),
        "DeleteBucketPolicy" => ("s3:DeleteBucketPolicy", Bucket),
        "GetBucketPolicyStatus" => ("s3:GetBucketPolicyStatus", Bucket),
        "GetBucketAcl" => ("s3:GetBucketAcl", Bucket),
        "PutBucketAcl" => ("s3:PutBucketAcl", Bucket),
        "GetBucketCors" => ("s3:GetBucketCORS", Bucket),
        "PutBucketCors" | "DeleteBucketCors" => ("s3:PutBucketCORS", Bucket),
        "GetBucketTagging" => ("s3:GetBucketTagging", Bucket),
        "PutBucketTagging" | "DeleteBucketTagging" => ("s3:PutBucketTagging", Bucket),
        "GetBucketLifecycleConfiguration" => ("s3:GetLifecycleConfiguration", Bucket),
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => {
            ("s3:PutLifecycleConfiguration", Bucket)
        }
        "GetBucketEncryption" => ("s3:GetEncryptionConfiguration", Bucket),
        "PutBucketEncryption" | "DeleteBucketEncryption" => ("s3:PutEncryptionConfiguration", Bucket),
        "GetObjectLockConfiguration" => ("s3:GetBucketObjectLockConfiguration", Bucket),
        "PutObjectLockConfiguration" => ("s3:PutBucketObjectLockConfiguration", Bucket),
        "GetBucketOwnershipControls" => ("s3:GetBucketOwnershipControls", Bucket),
        "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => {
            ("s3:PutBucketOwnershipControls", Bucket)
        }
        "GetPublicAccessBlock" => ("s3:GetBucketPublicAccessBlock", Bucket),
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => ("s3:PutBucketPublicAccessBlock", Bucket),
        "GetBucketNotificationConfiguration" => ("s3:GetBucketNotification", Bucket),
        "PutBucketNotificationConfiguration" => ("s3:PutBucketNotification", Bucket),
        "GetBucketReplication" => ("s3:GetReplicationConfiguration", Bucket),
        "PutBucketReplication" | "DeleteBucketReplication" => ("s3:PutReplicationConfiguration", Bucket),
        "GetBucketWebsite" => ("s3:GetBucketWebsite", Bucket),
        "PutBucketWebsite" => ("s3:PutBucketWebsite", Bucket),
        "DeleteBucketWebsite" => ("s3:DeleteBucketWebsite", Bucket),
        "GetBucketLogging" => ("s3:GetBucketLogging", Bucket),
        "PutBucketLogging" => ("s3:PutBucketLogging", Bucket),
        "GetBucketRequestPayment" => ("s3:GetBucketRequestPayment", Bucket),
        "PutBucketRequestPayment" => ("s3:PutBucketRequestPayment", Bucket),
        "GetBucketAccelerateConfiguration" => ("s3:GetAccelerateConfiguration", Bucket),
        "PutBucketAccelerateConfiguration" => ("s3:PutAccelerateConfiguration", Bucket),
        "GetBucketAnalyticsConfiguration" | "ListBucketAnalyticsConfigurations" => {
            ("s3:GetAnalyticsConfiguration", Bucket)
        }
        "PutBucketAnalyticsConfiguration" | "DeleteBucketAnalyticsConfiguration" => {
            ("s3:PutAnalyticsConfiguration", Bucket)
        }
        "GetBucketMetricsConfiguration" | "ListBucketMetricsConfigurations" => {
            ("s3:GetMetricsConfiguration", Bucket)
        }
        "PutBucketMetricsConfiguration" | "DeleteBucketMetricsConfiguration" => {
            ("s3:PutMetricsConfiguration", Bucket)
        }
        "GetBucketInventoryConfiguration" | "ListBucketInventoryConfigurations" => {
            ("s3:GetInventoryConfiguration", Bucket)
        }
        "PutBucketInventoryConfiguration" | "DeleteBucketInventoryConfiguration" => {
            ("s3:PutInventoryConfiguration", Bucket)
        }
        "GetBucketIntelligentTieringConfiguration" | "ListBucketIntelligentTieringConfigurations" => {
            ("s3:GetIntelligentTieringConfiguration", Bucket)
        }
        "PutBucketIntelligentTieringConfiguration" | "DeleteBucketIntelligentTieringConfiguration" => {
            ("s3:PutIntelligentTieringConfiguration", Bucket)
        }
        "CreateBucketMetadataTableConfiguration" => ("s3:CreateBucketMetadataTableConfiguration", Bucket),
        "GetBucketMetadataTableConfiguration" => ("s3:GetBucketMetadataTableConfiguration", Bucket),
        "DeleteBucketMetadataTableConfiguration" => ("s3:DeleteBucketMetadataTableConfiguration", Bucket),
        _ => return None,
    })
}

/// Every S3 action name AWS defines ("Actions, resources, and condition keys for Amazon
/// S3"), including those for features Strata does not implement, so that any policy valid
/// on AWS validates here.
pub const S3_ACTIONS: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:AllowVendedLogDeliveryForResource",
    "s3:AssociateAccessGrantsIdentityCenter",
    "s3:BypassGovernanceRetention",
    "s3:CreateAccessGrant",
    "s3:CreateAccessGrantsInstance",
    "s3:CreateAccessGrantsLocation",
    "s3:CreateAccessPoint",
    "s3:CreateAccessPointForObjectLambda",
    "s3:CreateBucket",
    "s3:CreateBucketMetadataTableConfiguration",
    "s3:CreateJob",
    "s3:CreateMultiRegionAccessPoint",
    "s3:CreateStorageLensGroup",
    "s3:DeleteAccessGrant",
    "s3:DeleteAccessGrantsInstance",
    "s3:DeleteAccessGrantsInstanceResourcePolicy",
    "s3:DeleteAccessGrantsLocation",
    "s3:DeleteAccessPoint",
    "s3:DeleteAccessPointForObjectLambda",
    "s3:DeleteAccessPointPolicy",
    "s3:DeleteAccessPointPolicyForObjectLambda",
    "s3:DeleteBucket",
    "s3:DeleteBucketMetadataTableConfiguration",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucketWebsite",
    "s3:DeleteJobTagging",
    "s3:DeleteMultiRegionAccessPoint",
    "s3:DeleteObject",
    "s3:DeleteObjectAnnotation",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectVersionAnnotation",
    "s3:DeleteObjectVersionTagging",
    "s3:DeleteStorageLensConfiguration",
    "s3:DeleteStorageLensConfigurationTagging",
    "s3:DeleteStorageLensGroup",
    "s3:DescribeJob",
    "s3:DescribeMultiRegionAccessPointOperation",
    "s3:DissociateAccessGrantsIdentityCenter",
    "s3:GetAccelerateConfiguration",
    "s3:GetAccessGrant",
    "s3:GetAccessGrantsInstance",
    "s3:GetAccessGrantsInstanceForPrefix",
    "s3:GetAccessGrantsInstanceResourcePolicy",
    "s3:GetAccessGrantsLocation",
    "s3:GetAccessPoint",
    "s3:GetAccessPointConfigurationForObjectLambda",
    "s3:GetAccessPointForObjectLambda",
    "s3:GetAccessPointPolicy",
    "s3:GetAccessPointPolicyForObjectLambda",
    "s3:GetAccessPointPolicyStatus",
    "s3:GetAccessPointPolicyStatusForObjectLambda",
    "s3:GetAccountPublicAccessBlock",
    "s3:GetAnalyticsConfiguration",
    "s3:GetBucketAbac",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketMetadataTableConfiguration",
    "s3:GetBucketNotification",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetDataAccess",
    "s3:GetEncryptionConfiguration",
    "s3:GetIntelligentTieringConfiguration",
    "s3:GetInventoryConfiguration",
    "s3:GetJobTagging",
    "s3:GetLifecycleConfiguration",
    "s3:GetMetricsConfiguration",
    "s3:GetMultiRegionAccessPoint",
    "s3:GetMultiRegionAccessPointPolicy",
    "s3:GetMultiRegionAccessPointPolicyStatus",
    "s3:GetMultiRegionAccessPointRoutes",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectAnnotation",
    "s3:GetObjectAttributes",
    "s3:GetObjectLegalHold",
    "s3:GetObjectRetention",
    "s3:GetObjectTagging",
    "s3:GetObjectTorrent",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionAnnotation",
    "s3:GetObjectVersionAnnotationForReplication",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionTagging",
    "s3:GetObjectVersionTorrent",
    "s3:GetReplicationConfiguration",
    "s3:GetStorageLensConfiguration",
    "s3:GetStorageLensConfigurationTagging",
    "s3:GetStorageLensDashboard",
    "s3:GetStorageLensGroup",
    "s3:InitiateReplication",
    "s3:ListAccessGrants",
    "s3:ListAccessGrantsInstances",
    "s3:ListAccessGrantsLocations",
    "s3:ListAccessPoints",
    "s3:ListAccessPointsForObjectLambda",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:ListCallerAccessGrants",
    "s3:ListJobs",
    "s3:ListMultiRegionAccessPoints",
    "s3:ListMultipartUploadParts",
    "s3:ListObjectAnnotations",
    "s3:ListObjectVersionAnnotations",
    "s3:ListStorageLensConfigurations",
    "s3:ListStorageLensGroups",
    "s3:ListTagsForResource",
    "s3:ObjectOwnerOverrideToBucketOwner",
    "s3:PauseReplication",
    "s3:PutAccelerateConfiguration",
    "s3:PutAccessGrantsInstanceResourcePolicy",
    "s3:PutAccessPointConfigurationForObjectLambda",
    "s3:PutAccessPointPolicy",
    "s3:PutAccessPointPolicyForObjectLambda",
    "s3:PutAccessPointPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
    "s3:PutAnalyticsConfiguration",
    "s3:PutBucketAbac",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketLogging",
    "s3:PutBucketNotification",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    "s3:PutIntelligentTieringConfiguration",
    "s3:PutInventoryConfiguration",
    "s3:PutJobTagging",
    "s3:PutLifecycleConfiguration",
    "s3:PutMetricsConfiguration",
    "s3:PutMultiRegionAccessPointPolicy",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectAnnotation",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectVersionAnnotation",
    "s3:PutObjectVersionTagging",
    "s3:PutReplicationConfiguration",
    "s3:PutStorageLensConfiguration",
    "s3:PutStorageLensConfigurationTagging",
    "s3:ReplicateDelete",
    "s3:ReplicateObject",
    "s3:ReplicateObjectAnnotation",
    "s3:ReplicateTags",
    "s3:RestoreObject",
    "s3:SubmitMultiRegionAccessPointRoutes",
    "s3:TagResource",
    "s3:UntagResource",
    "s3:UpdateAccessGrantsLocation",
    "s3:UpdateBucketMetadataAnnotationTableConfiguration",
    "s3:UpdateBucketMetadataInventoryTableConfiguration",
    "s3:UpdateBucketMetadataJournalTableConfiguration",
    "s3:UpdateJobPriority",
    "s3:UpdateJobStatus",
    "s3:UpdateObjectEncryption",
    "s3:UpdateStorageLensGroup",
];

/// S3 actions MinIO adds for its extensions, accepted in policies so that MinIO policies
/// validate here.
pub const MINIO_S3_ACTIONS: &[&str] = &[
    "s3:ForceDeleteBucket",
    "s3:ListenBucketNotification",
    "s3:ListenNotification",
    "s3:PutObjectFanOut",
    "s3:ResetBucketReplicationState",
];

/// Admin actions (MinIO's names), for the admin API.
pub const ADMIN_ACTIONS: &[&str] = &[
    // Users, groups, policies, service accounts.
    "admin:CreateUser",
    "admin:DeleteUser",
    "admin:ListUsers",
    "admin:GetUser",
    "admin:EnableUser",
    "admin:DisableUser",
    "admin:ChangeMyPassword",
    "admin:AddUserToGroup",
    "admin:RemoveUserFromGroup",
    "admin:GetGroup",
    "admin:ListGroups",
    "admin:EnableGroup",
    "admin:DisableGroup",
    "admin:CreatePolicy",
    "admin:DeletePolicy",
    "admin:GetPolicy",
    "admin:AttachUserOrGroupPolicy",
    "admin:UpdatePolicyAssociation",
    "admin:ListUserPolicies",
    "admin:CreateServiceAccount",
    "admin:UpdateServiceAccount",
    "admin:RemoveServiceAccount",
    "admin:ListServiceAccounts",
    "admin:ListTemporaryAccounts",
    "admin:ExportIAM",
    "admin:ImportIAM",
    // Accounts (Strata's; deployment-wide).
    "admin:CreateAccount",
    "admin:DeleteAccount",
    "admin:ListAccounts",
    "admin:GetAccount",
    "admin:UpdateAccount",
    // The server.
    "admin:ServerInfo",
    "admin:StorageInfo",
    "admin:DataUsageInfo",
    "admin:Heal",
    "admin:Prometheus",
    "admin:ServerTrace",
    "admin:ConsoleLog",
    "admin:Profiling",
    "admin:TopLocksInfo",
    "admin:ForceUnlock",
    "admin:OBDInfo",
    "admin:LicenseInfo",
    "admin:BandwidthMonitor",
    "admin:InspectData",
    "admin:ServerUpdate",
    "admin:ServiceRestart",
    "admin:ServiceStop",
    "admin:ServiceFreeze",
    "admin:ServiceCordon",
    "admin:ConfigUpdate",
    "admin:Decommission",
    "admin:Rebalance",
    // KMS.
    "admin:KMSEnable",
    "admin:KMSBackup",
    "admin:KMSRestore",
    "admin:KMSCreateKey",
    "admin:KMSKeyStatus",
    "admin:KMSKeyRotate",
    // Buckets.
    "admin:SetBucketQuota",
    "admin:GetBucketQuota",
    "admin:SetBucketTarget",
    "admin:GetBucketTarget",
    "admin:ReplicationDiff",
    "admin:ImportBucketMetadata",
    "admin:ExportBucketMetadata",
    "admin:SetTier",
    "admin:ListTier",
    // Site replication.
    "admin:SiteReplicationAdd",
    "admin:SiteReplicationDisable",
    "admin:SiteReplicationRemove",
    "admin:SiteReplicationResync",
    "admin:SiteReplicationInfo",
    "admin:SiteReplicationOperation",
    // Batch jobs.
    "admin:ListBatchJobs",
    "admin:DescribeBatchJob",
    "admin:StartBatchJob",
    "admin:CancelBatchJob",
    "admin:GenerateBatchJob",
];

/// Whether `action` is a known action, compared without case: one of [`S3_ACTIONS`],
/// [`MINIO_S3_ACTIONS`], [`ADMIN_ACTIONS`], an `sts:AssumeRole*` action, or any `kms:`
/// action. Wildcards are not expanded (`s3:Get*` is not an action).
pub fn is_known_action(action: &str) -> bool {
    let in_list = |list: &[&str]| list.iter().any(|a| a.eq_ignore_ascii_case(action));
    if in_list(S3_ACTIONS) || in_list(MINIO_S3_ACTIONS) || in_list(ADMIN_ACTIONS) {
        return true;
    }
    let Some((service, name)) = action.split_once(':') else {
        return false;
    };
    let plain_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
    if service.eq_ignore_ascii_case("sts") {
        return plain_name
            && name
                .get(.."AssumeRole".len())
                .is_some_and(|p| p.eq_ignore_ascii_case("AssumeRole"));
    }
    service.eq_ignore_ascii_case("kms") && plain_name
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation s3s 0.14.1 defines (`src/ops/generated.rs`; the MinIO build,
    /// `generated_minio.rs`, defines the same set).
    const S3S_OPERATIONS: &[&str] = &[
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
        "CreateBucket",
        "CreateBucketMetadataTableConfiguration",
        "CreateMultipartUpload",
        "CreateSession",
        "DeleteBucket",
        "DeleteBucketAnalyticsConfiguration",
        "DeleteBucketCors",
        "DeleteBucketEncryption",
        "DeleteBucketIntelligentTieringConfiguration",
        "DeleteBucketInventoryConfiguration",
        "DeleteBucketLifecycle",
        "DeleteBucketMetadataTableConfiguration",
        "DeleteBucketMetricsConfiguration",
        "DeleteBucketOwnershipControls",
        "DeleteBucketPolicy",
        "DeleteBucketReplication",
        "DeleteBucketTagging",
        "DeleteBucketWebsite",
        "DeleteObject",
        "DeleteObjectTagging",
        "DeleteObjects",
        "DeletePublicAccessBlock",
        "GetBucketAccelerateConfiguration",
        "GetBucketAcl",
        "GetBucketAnalyticsConfiguration",
        "GetBucketCors",
        "GetBucketEncryption",
        "GetBucketIntelligentTieringConfiguration",
        "GetBucketInventoryConfiguration",
        "GetBucketLifecycleConfiguration",
        "GetBucketLocation",
        "GetBucketLogging",
        "GetBucketMetadataTableConfiguration",
        "GetBucketMetricsConfiguration",
        "GetBucketNotificationConfiguration",
        "GetBucketOwnershipControls",
        "GetBucketPolicy",
        "GetBucketPolicyStatus",
        "GetBucketReplication",
        "GetBucketRequestPayment",
        "GetBucketTagging",
        "GetBucketVersioning",
        "GetBucketWebsite",
        "GetObject",
        "GetObjectAcl",
        "GetObjectAttributes",
        "GetObjectLegalHold",
        "GetObjectLockConfiguration",
        "GetObjectRetention",
        "GetObjectTagging",
        "GetObjectTorrent",
        "GetPublicAccessBlock",
        "HeadBucket",
        "HeadObject",
        "ListBucketAnalyticsConfigurations",
        "ListBucketIntelligentTieringConfigurations",
        "ListBucketInventoryConfigurations",
        "ListBucketMetricsConfigurations",
        "ListBuckets",
        "ListDirectoryBuckets",
        "ListMultipartUploads",
        "ListObjectVersions",
        "ListObjects",
        "ListObjectsV2",
        "ListParts",
        "PostObject",
        "PutBucketAccelerateConfiguration",
        "PutBucketAcl",
        "PutBucketAnalyticsConfiguration",
        "PutBucketCors",
        "PutBucketEncryption",
        "PutBucketIntelligentTieringConfiguration",
        "PutBucketInventoryConfiguration",
        "PutBucketLifecycleConfiguration",
        "PutBucketLogging",
        "PutBucketMetricsConfiguration",
        "PutBucketNotificationConfiguration",
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
        "PutBucketReplication",
        "PutBucketRequestPayment",
        "PutBucketTagging",
        "PutBucketVersioning",
        "PutBucketWebsite",
        "PutObject",
        "PutObjectAcl",
        "PutObjectLegalHold",
        "PutObjectLockConfiguration",
        "PutObjectRetention",
        "PutObjectTagging",
        "PutPublicAccessBlock",
        "RestoreObject",
        "SelectObjectContent",
        "UploadPart",
        "UploadPartCopy",
        "WriteGetObjectResponse",
    ];

    /// Actions of other services an operation may map to (not in [`S3_ACTIONS`]).
    const OTHER_SERVICES: &[&str] = &[
        "s3express:CreateSession",
        "s3express:ListAllMyDirectoryBuckets",
        "s3-object-lambda:WriteGetObjectResponse",
    ];

    #[test]
    fn every_s3s_operation_maps_to_a_real_action() {
        assert_eq!(S3S_OPERATIONS.len(), 99);
        for op in S3S_OPERATIONS {
            for versioned in [false, true] {
                let Some((action, _)) = action_for(op, versioned) else {
                    unreachable!("{op} has no action");
                };
                assert!(
                    S3_ACTIONS.contains(&action) || OTHER_SERVICES.contains(&action),
                    "{op} maps to {action}, which is not an AWS action"
                );
            }
        }
        assert_eq!(action_for("GetObjectt", false), None);
        assert_eq!(action_for("getobject", false), None);
    }

    #[test]
    fn mapping_rules() {
        use ResourceKind::{Bucket, Object, Service};
        let cases: &[(&str, bool, &str, ResourceKind)] = &[
            ("HeadObject", false, "s3:GetObject", Object),
            ("HeadObject", true, "s3:GetObjectVersion", Object),
            ("GetObject", true, "s3:GetObjectVersion", Object),
            ("GetObjectAcl", true, "s3:GetObjectVersionAcl", Object),
            ("PutObjectAcl", true, "s3:PutObjectVersionAcl", Object),
            ("GetObjectTagging", true, "s3:GetObjectVersionTagging", Object),
            ("PutObjectTagging", true, "s3:PutObjectVersionTagging", Object),
            (
                "DeleteObjectTagging",
                true,
                "s3:DeleteObjectVersionTagging",
                Object,
            ),
            (
                "GetObjectAttributes",
                true,
                "s3:GetObjectVersionAttributes",
                Object,
            ),
            ("GetObjectRetention", true, "s3:GetObjectRetention", Object),
            ("PutObjectLegalHold", true, "s3:PutObjectLegalHold", Object),
            ("DeleteObject", false, "s3:DeleteObject", Object),
            ("DeleteObject", true, "s3:DeleteObjectVersion", Object),
            ("DeleteObjects", false, "s3:DeleteObject", Bucket),
            ("CopyObject", false, "s3:PutObject", Object),
            ("UploadPartCopy", false, "s3:PutObject", Object),
            ("CompleteMultipartUpload", false, "s3:PutObject", Object),
            ("PostObject", false, "s3:PutObject", Object),
            ("ListParts", false, "s3:ListMultipartUploadParts", Object),
            (
                "ListMultipartUploads",
                false,
                "s3:ListBucketMultipartUploads",
                Bucket,
            ),
            ("HeadBucket", false, "s3:ListBucket", Bucket),
            ("ListObjectsV2", false, "s3:ListBucket", Bucket),
            ("ListObjectVersions", false, "s3:ListBucketVersions", Bucket),
            ("ListBuckets", false, "s3:ListAllMyBuckets", Service),
            ("DeleteBucketCors", false, "s3:PutBucketCORS", Bucket),
            ("DeleteBucketTagging", false, "s3:PutBucketTagging", Bucket),
            (
                "DeleteBucketLifecycle",
                false,
                "s3:PutLifecycleConfiguration",
                Bucket,
            ),
            (
                "DeleteBucketEncryption",
                false,
                "s3:PutEncryptionConfiguration",
                Bucket,
            ),
            (
                "GetObjectLockConfiguration",
                false,
                "s3:GetBucketObjectLockConfiguration",
                Bucket,
            ),
            (
                "DeletePublicAccessBlock",
                false,
                "s3:PutBucketPublicAccessBlock",
                Bucket,
            ),
            (
                "GetBucketNotificationConfiguration",
                false,
                "s3:GetBucketNotification",
                Bucket,
            ),
            ("SelectObjectContent", false, "s3:GetObject", Object),
        ];
        for (op, versioned, action, kind) in cases {
            assert_eq!(action_for(op, *versioned), Some((*action, *kind)), "{op}");
        }
    }

    #[test]
    fn known_actions() {
        assert!(is_known_action("s3:GetObject"));
        assert!(is_known_action("S3:getobject"));
        assert!(is_known_action("s3:ListenBucketNotification"));
        assert!(is_known_action("admin:CreateUser"));
        assert!(is_known_action("sts:AssumeRole"));
        assert!(is_known_action("sts:AssumeRoleWithWebIdentity"));
        assert!(is_known_action("kms:Decrypt"));
        assert!(!is_known_action("s3:GetObjects"));
        assert!(!is_known_action("s3:Get*"));
        assert!(!is_known_action("sts:GetCallerIdentityX"));
        assert!(!is_known_action("kms:*"));
        assert!(!is_known_action("ec2:RunInstances"));
        assert!(!is_known_action("GetObject"));
    }

    #[test]
    fn lists_are_well_formed() {
        for list in [S3_ACTIONS, MINIO_S3_ACTIONS, ADMIN_ACTIONS] {
            for (i, a) in list.iter().enumerate() {
                let (service, name) = a.split_once(':').unwrap_or_default();
                assert!(matches!(service, "s3" | "admin"), "{a}");
                assert!(name.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
                assert!(
                    !list[..i].iter().any(|b| b.eq_ignore_ascii_case(a)),
                    "{a} is listed twice"
                );
            }
        }
    }
}
