//! Criterion benchmark: authorizing one `GetObject` request against a user with 10 attached
//! policies of 10 statements each (mixed actions with wildcards, resources with prefixes and
//! policy variables, `StringLike s3:prefix`, `IpAddress aws:SourceIp`, `Bool`, `StringEquals`
//! conditions), combined as AWS does: any deny wins, otherwise any allow.
//!
//! Target: median below 2 µs (`authorize/10x10`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use strata_iam::policy::{Context, Policy, PolicyKind, Request, Verdict};

/// One realistic identity policy; `p` varies bucket names and the project it grants.
fn policy_text(p: usize) -> String {
    let projects = [
        "apollo", "borealis", "cygnus", "draco", "eridanus", "fornax", "gemini", "alpha", "hydra", "indus",
    ];
    let project = projects[p % projects.len()];
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Sid": "ListOwnHome", "Effect": "Allow",
      "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
      "Resource": "arn:aws:s3:::bucket-{p}",
      "Condition": {{"StringLike": {{"s3:prefix": ["home/${{aws:username}}/*", "shared/*"]}}}}}},
    {{"Sid": "ReadOwnHome", "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"],
      "Resource": ["arn:aws:s3:::bucket-{p}/home/${{aws:username}}/*"]}},
    {{"Sid": "UploadsFromTheOffice", "Effect": "Allow",
      "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": "arn:aws:s3:::bucket-{p}/uploads/*",
      "Condition": {{"IpAddress": {{"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}}}}},
    {{"Sid": "ReadProject", "Effect": "Allow",
      "Action": "s3:Get*",
      "Resource": "arn:aws:s3:::data/projects/{project}/*",
      "Condition": {{"IpAddress": {{"aws:SourceIp": "10.0.0.0/8"}}}}}},
    {{"Sid": "NoDeletes", "Effect": "Deny",
      "Action": "s3:DeleteObject*",
      "Resource": "arn:aws:s3:::data/*"}},
    {{"Sid": "Locate", "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListAllMyBuckets"],
      "Resource": "arn:aws:s3:::*"}},
    {{"Sid": "SecretsOverTls", "Effect": "Deny",
      "Action": "s3:*",
      "Resource": "arn:aws:s3:::secret-{p}/*",
      "Condition": {{"Bool": {{"aws:SecureTransport": "false"}}}}}},
    {{"Sid": "Reports", "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:GetObjectAttributes"],
      "Resource": ["arn:aws:s3:::data/public/*", "arn:aws:s3:::data/projects/*/reports-{p}/*"]}},
    {{"Sid": "EncryptedWrites", "Effect": "Allow",
      "Action": "s3:PutObject*",
      "Resource": "arn:aws:s3:::data/projects/*",
      "Condition": {{"StringEquals": {{"s3:x-amz-server-side-encryption": "AES256"}}}}}},
    {{"Sid": "NoPolicyChanges", "Effect": "Deny",
      "Action": ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:DeleteBucket"],
      "Resource": "*"}}
  ]
}}"#
    )
}

/// AWS's combination across the identity's policies.
fn authorize(policies: &[Policy], request: &Request<'_>) -> bool {
    let mut allowed = false;
    for policy in policies {
        match policy.evaluate(request) {
            Verdict::Deny { .. } => return false,
            Verdict::Allow { .. } => allowed = true,
            Verdict::NotApplicable => {}
        }
    }
    allowed
}

fn bench(c: &mut Criterion) {
    let policies: Vec<Policy> = (0..10)
        .filter_map(|p| Policy::parse(policy_text(p).as_bytes(), PolicyKind::Identity).ok())
        .collect();
    assert_eq!(policies.len(), 10, "every benchmark policy parses");
    assert!(policies.iter().all(|p| p.statements().len() == 10));

    let mut context = Context::new();
    context.insert("aws:username", "alice");
    context.insert("aws:userid", "AKIAALICE");
    context.insert("aws:SourceIp", "10.1.2.3");
    context.insert("aws:SecureTransport", "true");
    context.insert("aws:CurrentTime", "2026-01-01T12:00:00Z");
    context.insert("aws:EpochTime", "1767268800");
    context.insert("aws:PrincipalType", "User");
    let request = Request {
        action: "s3:GetObject",
        resource: "arn:aws:s3:::data/projects/alpha/2026/report.csv",
        principal: None,
        context: &context,
    };
    assert!(authorize(&policies, &request), "the request is allowed");

    c.bench_function("authorize/10x10", |b| {
        b.iter(|| authorize(black_box(&policies), black_box(&request)));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
