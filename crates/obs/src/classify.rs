//! What a request is, from its method, path, query and headers alone: the S3 API name (in the
//! names s3s uses, e.g. `GetObject`), the bucket, the object key and version, and the access
//! key it claims. Used for metric labels and audit records when s3s did not name the
//! operation itself (failed authentication, health, admin and metrics routes).
//!
//! Invariants: API names come from a fixed set of `&'static str` (bounded label
//! cardinality); only the access key is taken from credentials, never a signature or token.

use http::{HeaderMap, Method};

/// API name of the health probes.
pub const API_HEALTH: &str = "Health";
/// API name of the metrics endpoints.
pub const API_METRICS: &str = "Metrics";
/// API name of a request no rule recognises.
pub const API_UNKNOWN: &str = "Unknown";

/// Path prefix of the admin API (kept in step with `strata_s3::ADMIN_PATH_PREFIX`).
const ADMIN_PREFIX: &str = "/strata/admin/";

/// Path prefix of MinIO's admin API (kept in step with `strata_s3::MINIO_ADMIN_PREFIX`).
const MINIO_ADMIN_PREFIX: &str = "/minio/admin/v3/";
/// API name of an STS call (`POST /` with a form; the action is in the body).
pub const API_STS: &str = "STS";

/// The audit name of a MinIO admin API endpoint.
fn minio_admin_api(endpoint: &str) -> &'static str {
    match endpoint {
        "add-user" => "AdminAddUser",
        "remove-user" => "AdminRemoveUser",
        "list-users" => "AdminListUsers",
        "user-info" => "AdminUserInfo",
        "set-user-status" => "AdminSetUserStatus",
        "update-group-members" => "AdminUpdateGroupMembers",
        "groups" => "AdminListGroups",
        "group" => "AdminGroupInfo",
        "set-group-status" => "AdminSetGroupStatus",
        "add-canned-policy" => "AdminAddPolicy",
        "remove-canned-policy" => "AdminRemovePolicy",
        "list-canned-policies" => "AdminListPolicies",
        "info-canned-policy" => "AdminPolicyInfo",
        "set-user-or-group-policy" => "AdminSetPolicy",
        "idp/builtin/policy/attach" => "AdminAttachPolicy",
        "idp/builtin/policy/detach" => "AdminDetachPolicy",
        "idp/builtin/policy-entities" => "AdminPolicyEntities",
        "idp/ldap/policy/attach" => "AdminAttachLdapPolicy",
        "idp/ldap/policy/detach" => "AdminDetachLdapPolicy",
        "add-service-account" => "AdminAddServiceAccount",
        "update-service-account" => "AdminUpdateServiceAccount",
        "list-service-accounts" => "AdminListServiceAccounts",
        "info-service-account" => "AdminServiceAccountInfo",
        "delete-service-account" => "AdminDeleteServiceAccount",
        "accountinfo" => "AdminAccountInfo",
        _ => "Admin",
    }
}

/// `POST /` with a URL-encoded form, or `/?Action=`: STS (as `strata_s3`'s STS route decides).
fn is_sts_form(method: &Method, headers: &HeaderMap, query: Option<&str>) -> bool {
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    (*method == Method::POST && form)
        || query.is_some_and(|q| q.split('&').any(|pair| pair.split('=').next() == Some("Action")))
}

/// What a request addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestTarget {
    /// S3 API name, or `Health`, `Metrics`, `Admin...`, `Unknown`.
    pub api: &'static str,
    /// Bucket, when the request names one.
    pub bucket: Option<String>,
    /// Object key (percent-decoded), when the request names one.
    pub object: Option<String>,
    /// The `versionId` query parameter.
    pub version_id: Option<String>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Query parameter names and values (decoded), in order.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(&v.replace('+', " "))),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Splits `host` into the bucket of a virtual-host-style request, given the base domains.
fn virtual_bucket(host: Option<&str>, domains: &[String]) -> Option<String> {
    let host = host?.to_ascii_lowercase();
    domains.iter().find_map(|d| {
        let d = d.to_ascii_lowercase();
        host.strip_suffix(&d)
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
    })
}

/// Classifies a request. `domains` are the virtual-host base domains (may be empty).
pub fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    domains: &[String],
) -> RequestTarget {
    if path == "/health/live" || path == "/health/ready" || path == "/healthz" {
        return RequestTarget {
            api: API_HEALTH,
            ..RequestTarget::default()
        };
    }
    if path == "/metrics/node" || path == "/metrics/cluster" {
        return RequestTarget {
            api: API_METRICS,
            ..RequestTarget::default()
        };
    }
    if let Some(rest) = path.strip_prefix(MINIO_ADMIN_PREFIX) {
        return RequestTarget {
            api: minio_admin_api(rest.trim_end_matches('/')),
            ..RequestTarget::default()
        };
    }
    if path == "/" && is_sts_form(method, headers, query) {
        return RequestTarget {
            api: API_STS,
            ..RequestTarget::default()
        };
    }
    if let Some(rest) = path.strip_prefix(ADMIN_PREFIX) {
        let api = match rest.rsplit('/').next().unwrap_or("") {
            "heal" => "AdminHeal",
            "info" => "AdminInfo",
            _ => "Admin",
        };
        return RequestTarget {
            api,
            ..RequestTarget::default()
        };
    }
    let q = query_pairs(query);
    let has = |name: &str| q.iter().any(|(k, _)| k == name);
    let version_id = q.iter().find(|(k, _)| k == "versionId").map(|(_, v)| v.clone());
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
    let trimmed = path.trim_start_matches('/');
    let (bucket, object) = match virtual_bucket(host, domains) {
        Some(b) => (Some(b), (!trimmed.is_empty()).then(|| decode(trimmed))),
        None => match trimmed.split_once('/') {
            Some((b, k)) if !k.is_empty() => (Some(decode(b)), Some(decode(k))),
            Some((b, _)) => (Some(decode(b)), None),
            None if trimmed.is_empty() => (None, None),
            None => (Some(decode(trimmed)), None),
        },
    };
    let copy_source = headers.contains_key("x-amz-copy-source");
    let api = match (&bucket, &object) {
        (None, _) => match *method {
            Method::GET => "ListBuckets",
            _ => API_UNKNOWN,
        },
        (Some(_), None) => bucket_api(method, &has),
        (Some(_), Some(_)) => object_api(method, &has, copy_source),
    };
    RequestTarget {
        api,
        bucket,
        object,
        version_id,
    }
}

fn bucket_api(method: &Method, has: &dyn Fn(&str) -> bool) -> &'static str {
    const GET: &[(&str, &str)] = &[
        ("location", "GetBucketLocation"),
        ("versioning", "GetBucketVersioning"),
        ("versions", "ListObjectVersions"),
        ("uploads", "ListMultipartUploads"),
        ("policy", "GetBucketPolicy"),
        ("lifecycle", "GetBucketLifecycleConfiguration"),
        ("tagging", "GetBucketTagging"),
        ("acl", "GetBucketAcl"),
        ("cors", "GetBucketCors"),
        ("encryption", "GetBucketEncryption"),
        ("notification", "GetBucketNotificationConfiguration"),
        ("object-lock", "GetObjectLockConfiguration"),
        ("replication", "GetBucketReplication"),
        ("list-type", "ListObjectsV2"),
    ];
    const PUT: &[(&str, &str)] = &[
        ("versioning", "PutBucketVersioning"),
        ("policy", "PutBucketPolicy"),
        ("lifecycle", "PutBucketLifecycleConfiguration"),
        ("tagging", "PutBucketTagging"),
        ("acl", "PutBucketAcl"),
        ("cors", "PutBucketCors"),
        ("encryption", "PutBucketEncryption"),
        ("notification", "PutBucketNotificationConfiguration"),
        ("object-lock", "PutObjectLockConfiguration"),
        ("replication", "PutBucketReplication"),
    ];
    const DELETE: &[(&str, &str)] = &[
        ("policy", "DeleteBucketPolicy"),
        ("lifecycle", "DeleteBucketLifecycle"),
        ("tagging", "DeleteBucketTagging"),
        ("cors", "DeleteBucketCors"),
        ("encryption", "DeleteBucketEncryption"),
        ("replication", "DeleteBucketReplication"),
    ];
    let pick = |table: &[(&str, &'static str)], default: &'static str| {
        table
            .iter()
            .find(|(q, _)| has(q))
            .map_or(default, |(_, api)| *api)
    };
    match *method {
        Method::GET => pick(GET, "ListObjects"),
        Method::PUT => pick(PUT, "CreateBucket"),
        Method::HEAD => "HeadBucket",
        Method::DELETE => pick(DELETE, "DeleteBucket"),
        Method::POST if has("delete") => "DeleteObjects",
        Method::POST => "PostObject",
        _ => API_UNKNOWN,
    }
}

fn object_api(method: &Method, has: &dyn Fn(&str) -> bool, copy_source: bool) -> &'static str {
    match *method {
        Method::GET if has("uploadId") => "ListParts",
        Method::GET if has("tagging") => "GetObjectTagging",
        Method::GET if has("acl") => "GetObjectAcl",
        Method::GET if has("retention") => "GetObjectRetention",
        Method::GET if has("legal-hold") => "GetObjectLegalHold",
        Method::GET if has("attributes") => "GetObjectAttributes",
        Method::GET => "GetObject",
        Method::HEAD => "HeadObject",
        Method::PUT if has("uploadId") && copy_source => "UploadPartCopy",
        Method::PUT if has("uploadId") => "UploadPart",
        Method::PUT if has("tagging") => "PutObjectTagging",
        Method::PUT if has("acl") => "PutObjectAcl",
        Method::PUT if has("retention") => "PutObjectRetention",
        Method::PUT if has("legal-hold") => "PutObjectLegalHold",
        Method::PUT if copy_source => "CopyObject",
        Method::PUT => "PutObject",
        Method::POST if has("uploads") => "CreateMultipartUpload",
        Method::POST if has("uploadId") => "CompleteMultipartUpload",
        Method::POST if has("restore") => "RestoreObject",
        Method::POST if has("select") => "SelectObjectContent",
        Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        Method::DELETE if has("tagging") => "DeleteObjectTagging",
        Method::DELETE => "DeleteObject",
        _ => API_UNKNOWN,
    }
}

/// The access key a request claims: from a SigV4 or SigV2 `Authorization` header, or from a
/// presigned URL's `X-Amz-Credential` / `AWSAccessKeyId`. Only the key, never the signature.
pub fn claimed_access_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    {
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") {
            let cred = rest
                .split(',')
                .find_map(|p| p.trim().strip_prefix("Credential="))?;
            return cred.split('/').next().map(str::to_owned);
        }
        if let Some(rest) = auth.strip_prefix("AWS ") {
            return rest.split(':').next().map(|k| k.trim().to_owned());
        }
        return None;
    }
    query_pairs(query)
        .into_iter()
        .find_map(|(k, v)| match k.as_str() {
            "X-Amz-Credential" => v.split('/').next().map(str::to_owned),
            "AWSAccessKeyId" => Some(v),
            _ => None,
        })
}

/// The `<Code>` of an S3 XML error body.
pub fn error_code_of_body(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        .then(|| code.to_owned())
}

/// A stand-in code for error answers without a body (HEAD requests): what S3 clients show.
pub fn error_code_of_status(status: u16) -> &'static str {
    match status {
        301 => "PermanentRedirect",
        304 => "NotModified",
        400 => "BadRequest",
        403 => "AccessDenied",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        412 => "PreconditionFailed",
        416 => "InvalidRange",
        501 => "NotImplemented",
        503 => "SlowDown",
        s if s >= 500 => "InternalError",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: Method, uri: &str) -> RequestTarget {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        classify(&method, path, query, &HeaderMap::new(), &[])
    }

    #[test]
    fn minio_admin_and_sts_calls_are_not_taken_for_s3_operations() {
        assert_eq!(
            c(Method::PUT, "/minio/admin/v3/add-user?accessKey=a").api,
            "AdminAddUser"
        );
        assert_eq!(
            c(Method::POST, "/minio/admin/v3/idp/builtin/policy/attach").api,
            "AdminAttachPolicy"
        );
        assert_eq!(c(Method::GET, "/minio/admin/v3/unknown-thing").api, "Admin");
        assert!(c(Method::PUT, "/minio/admin/v3/add-user").bucket.is_none());
        let mut form = HeaderMap::new();
        form.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(classify(&Method::POST, "/", None, &form, &[]).api, API_STS);
        assert_eq!(
            c(Method::GET, "/?Action=AssumeRole&Version=2011-06-15").api,
            API_STS
        );
        assert_eq!(c(Method::GET, "/").api, "ListBuckets");
    }

    #[test]
    fn s3_operations_by_method_path_and_query() {
        let cases = [
            (Method::GET, "/", "ListBuckets"),
            (Method::PUT, "/b", "CreateBucket"),
            (Method::HEAD, "/b", "HeadBucket"),
            (Method::DELETE, "/b", "DeleteBucket"),
            (Method::GET, "/b", "ListObjects"),
            (Method::GET, "/b/", "ListObjects"),
            (Method::GET, "/b?list-type=2&prefix=x", "ListObjectsV2"),
            (Method::GET, "/b?location", "GetBucketLocation"),
            (Method::GET, "/b?versioning", "GetBucketVersioning"),
            (Method::PUT, "/b?versioning", "PutBucketVersioning"),
            (Method::GET, "/b?versions", "ListObjectVersions"),
            (Method::GET, "/b?uploads", "ListMultipartUploads"),
            (Method::POST, "/b?delete", "DeleteObjects"),
            (Method::PUT, "/b/k", "PutObject"),
            (Method::GET, "/b/k", "GetObject"),
            (Method::HEAD, "/b/k", "HeadObject"),
            (Method::DELETE, "/b/k", "DeleteObject"),
            (Method::POST, "/b/k?uploads", "CreateMultipartUpload"),
            (Method::PUT, "/b/k?partNumber=1&uploadId=u", "UploadPart"),
            (Method::POST, "/b/k?uploadId=u", "CompleteMultipartUpload"),
            (Method::DELETE, "/b/k?uploadId=u", "AbortMultipartUpload"),
            (Method::GET, "/b/k?uploadId=u", "ListParts"),
            (Method::GET, "/health/live", API_HEALTH),
            (Method::GET, "/metrics/cluster", API_METRICS),
            (Method::POST, "/strata/admin/v1/heal", "AdminHeal"),
            (Method::GET, "/strata/admin/v1/info", "AdminInfo"),
            (Method::PATCH, "/b/k", API_UNKNOWN),
        ];
        for (method, uri, api) in cases {
            assert_eq!(c(method.clone(), uri).api, api, "{method} {uri}");
        }
    }

    #[test]
    fn bucket_key_and_version_are_decoded() {
        let t = c(Method::GET, "/photos/2024/a%20b.jpg?versionId=v%2B1");
        assert_eq!(t.bucket.as_deref(), Some("photos"));
        assert_eq!(t.object.as_deref(), Some("2024/a b.jpg"));
        assert_eq!(t.version_id.as_deref(), Some("v+1"));
        assert_eq!(c(Method::GET, "/").bucket, None);
    }

    #[test]
    fn copy_and_virtual_host() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-copy-source", "/src/k".parse().unwrap());
        assert_eq!(classify(&Method::PUT, "/b/k", None, &h, &[]).api, "CopyObject");
        assert_eq!(
            classify(&Method::PUT, "/b/k", Some("partNumber=1&uploadId=u"), &h, &[]).api,
            "UploadPartCopy"
        );
        let mut h = HeaderMap::new();
        h.insert("host", "photos.s3.local:9000".parse().unwrap());
        let t = classify(&Method::GET, "/a/b", None, &h, &["s3.local:9000".to_owned()]);
        assert_eq!(
            (t.api, t.bucket.as_deref(), t.object.as_deref()),
            ("GetObject", Some("photos"), Some("a/b"))
        );
    }

    #[test]
    fn access_keys_without_signatures() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abcdef"
                .parse()
                .unwrap(),
        );
        assert_eq!(claimed_access_key(&h, None).as_deref(), Some("AKIAX"));
        let mut h = HeaderMap::new();
        h.insert("authorization", "AWS AKV2:c2lnbmF0dXJl".parse().unwrap());
        assert_eq!(claimed_access_key(&h, None).as_deref(), Some("AKV2"));
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKQ%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ff";
        assert_eq!(
            claimed_access_key(&HeaderMap::new(), Some(q)).as_deref(),
            Some("AKQ")
        );
        assert_eq!(claimed_access_key(&HeaderMap::new(), None), None);
    }

    #[test]
    fn error_codes() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>x</Message></Error>";
        assert_eq!(error_code_of_body(body).as_deref(), Some("NoSuchKey"));
        assert_eq!(error_code_of_body(b"<Error><Code>a<b</Code>"), None);
        assert_eq!(error_code_of_body(b"not xml"), None);
        assert_eq!(error_code_of_status(404), "NotFound");
        assert_eq!(error_code_of_status(507), "InternalError");
    }
}
