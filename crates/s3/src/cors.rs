//! Bucket CORS, as AWS S3 defines it: Put/Get/DeleteBucketCors, the answer to browser preflights
//! (`OPTIONS`), and the `Access-Control-*` headers of actual cross-origin requests.
//!
//! Storage: a bucket's rules are its `cors` configuration blob, JSON of [`CorsRule`]s in the
//! order they were put (the order decides which rule matches).
//!
//! Validation is AWS's. In order: a body over 64 KiB, no rule or more than 100, a rule without
//! `AllowedOrigin` or `AllowedMethod`, an `ID` over 255 characters or a negative
//! `MaxAgeSeconds` are `MalformedXML`; then, rule by rule, a method other than `GET`, `PUT`,
//! `POST`, `DELETE`, `HEAD` (exactly, upper case), an `AllowedOrigin` or `AllowedHeader` with
//! more than one `*`, or an `ExposeHeader` with any `*` are `InvalidRequest` with AWS's texts.
//!
//! Matching is AWS's: the first rule that has an `AllowedOrigin` matching the request's `Origin`
//! (byte for byte, case-sensitive; one `*` matches any run of characters, the empty one too),
//! the method exactly, and, for a preflight, every name in `Access-Control-Request-Headers`
//! matched by an `AllowedHeader` (case-insensitive, with the same wildcard). A rule that lists
//! the origin `*` answers `Access-Control-Allow-Origin: *` and no `Allow-Credentials`; any other
//! echoes the origin with `Access-Control-Allow-Credentials: true`. An actual request is never
//! refused for CORS: without a matching rule it simply gets no `Access-Control-*` headers (and
//! AWS's quirk is kept: an `Access-Control-Request-Method` header on it stands for its method).
//!
//! Where it runs: [`FrontDoorService`], the service [`crate::build_service`] returns, wraps s3s's
//! [`S3Service`]. Preflights must be answered before s3s sees them: s3s checks a presigned
//! URL's signature (computed over the real method) before any route or hook runs, and a browser
//! sends the preflight of a presigned PUT to the presigned URL itself, with method `OPTIONS`.
//! So every `OPTIONS` request is answered here, without authentication, from the bucket's rules;
//! every other request goes through s3s unchanged, and when it carries an `Origin` the response
//! (success or error, including s3s's own signature and parsing errors) gets the matching
//! rule's headers, so a browser can read S3's error answers too.
//!
//! Invariants: a bucket's rules are read from the drives at most once a second per node
//! ([`CORS_TTL`]; not found and not configured are cached too, other read failures are not),
//! and a Put/DeleteBucketCors through this node forgets them at once; a stored blob that no
//! longer decodes counts as no configuration (no cross-origin access), logged; headers are
//! only ever added to s3s's responses, never removed or changed, bodies are untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use s3s::dto::*;
use s3s::host::S3Host;
use s3s::service::S3Service;
use s3s::{
    Body, HttpError, HttpRequest, HttpResponse, S3Error, S3ErrorCode, S3Request, S3Response, S3Result,
};
use serde::{Deserialize, Serialize};
use strata_object::{ObjectError, ObjectLayer};

use crate::service::{RequestId, StrataS3, err_mapper};

/// Name of the bucket configuration blob that holds the bucket's CORS rules.
pub(crate) const BUCKET_CORS_CONFIG: &str = "cors";
/// AWS's limit on a CORS configuration document.
pub(crate) const CORS_BODY_BYTES_MAX: u64 = 64 * 1024;
/// AWS's limit on the rules of one configuration.
const RULES_MAX: usize = 100;
/// AWS's limit on a rule's `ID`.
const ID_CHARS_MAX: usize = 255;
/// The methods a rule may allow (AWS's list, case-sensitive).
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
/// How long a node answers from a bucket's cached rules before reading them again: a change
/// made through another node applies here within this time.
const CORS_TTL: Duration = Duration::from_secs(1);
/// Buckets whose rules are cached at most; past it the cache starts over.
const CACHE_BUCKETS_MAX: usize = 10_000;
/// The `Vary` of every response that carries CORS headers (AWS's value).
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

const MALFORMED_XML_MESSAGE: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";
const NOT_ALLOWED_MESSAGE: &str = "CORSResponse: This CORS request is not allowed. This is usually because \
the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers \
are not whitelisted by the resource's CORS spec.";

/// One stored CORS rule (the blob's element type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CorsRule {
    /// The rule's `ID`, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// Origin patterns, at most one `*` each.
    pub(crate) allowed_origins: Vec<String>,
    /// Methods among [`METHODS`].
    pub(crate) allowed_methods: Vec<String>,
    /// Header name patterns a preflight may ask for, at most one `*` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) allowed_headers: Vec<String>,
    /// Response headers the browser may show the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_age_seconds: Option<i32>,
}

fn malformed_xml() -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedXML, MALFORMED_XML_MESSAGE)
}

fn invalid_request(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message)
}

/// An error with a code s3s's table does not have (`AccessForbidden`, `BadRequest`).
fn custom_error(code: &'static str, status: StatusCode, message: String) -> S3Error {
    let mut err = S3Error::with_message(S3ErrorCode::Custom(code.into()), message);
    err.set_status_code(status);
    err
}

fn wildcards(s: &str) -> usize {
    s.matches('*').count()
}

/// The size of the configuration as AWS's XML (without declaration or namespace): what the
/// 64 KiB limit is checked against when the request did not declare its body's length.
fn document_bytes(rules: &[CorsRule]) -> usize {
    fn element(tag: &str, value: &str) -> usize {
        2 * tag.len() + 5 + value.len()
    }
    let root = element("CORSConfiguration", "");
    let rule_bytes = |rule: &CorsRule| {
        let list = |tag: &str, values: &[String]| values.iter().map(|v| element(tag, v)).sum::<usize>();
        element("CORSRule", "")
            + rule.id.as_deref().map_or(0, |id| element("ID", id))
            + list("AllowedOrigin", &rule.allowed_origins)
            + list("AllowedMethod", &rule.allowed_methods)
            + list("AllowedHeader", &rule.allowed_headers)
            + list("ExposeHeader", &rule.expose_headers)
            + rule
                .max_age_seconds
                .map_or(0, |age| element("MaxAgeSeconds", &age.to_string()))
    };
    root + rules.iter().map(rule_bytes).sum::<usize>()
}

/// Checks a PutBucketCors configuration as AWS does (see the module documentation for the
/// order) and returns its rules.
pub(crate) fn validate(config: CORSConfiguration) -> S3Result<Vec<CorsRule>> {
    let rules: Vec<CorsRule> = config
        .cors_rules
        .into_iter()
        .map(|rule| CorsRule {
            id: rule.id,
            allowed_origins: rule.allowed_origins,
            allowed_methods: rule.allowed_methods,
            allowed_headers: rule.allowed_headers.unwrap_or_default(),
            expose_headers: rule.expose_headers.unwrap_or_default(),
            max_age_seconds: rule.max_age_seconds,
        })
        .collect();
    if rules.is_empty() || rules.len() > RULES_MAX || document_bytes(&rules) as u64 > CORS_BODY_BYTES_MAX {
        return Err(malformed_xml());
    }
    for rule in &rules {
        if rule.allowed_origins.is_empty()
            || rule.allowed_methods.is_empty()
            || rule
                .id
                .as_ref()
                .is_some_and(|id| id.chars().count() > ID_CHARS_MAX)
            || rule.max_age_seconds.is_some_and(|age| age < 0)
        {
            return Err(malformed_xml());
        }
    }
    for rule in &rules {
        if let Some(method) = rule
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(invalid_request(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            )));
        }
        if let Some(origin) = rule.allowed_origins.iter().find(|o| wildcards(o) > 1) {
            return Err(invalid_request(format!(
                "AllowedOrigin \"{origin}\" can not have more than one wildcard."
            )));
        }
        if let Some(name) = rule.allowed_headers.iter().find(|h| wildcards(h) > 1) {
            return Err(invalid_request(format!(
                "AllowedHeader \"{name}\" can not have more than one wildcard."
            )));
        }
        if let Some(name) = rule.expose_headers.iter().find(|h| h.contains('*')) {
            return Err(invalid_request(format!(
                "ExposeHeader \"{name}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
            )));
        }
    }
    Ok(rules)
}

/// `pattern` (at most one `*`, matching any run of characters) matches all of `value`.
fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len() && value.starts_with(prefix) && value.ends_with(suffix)
        }
    }
}

/// The first rule that allows `origin` and `method` and, for a preflight, every name in
/// `request_headers` (lower case); `None` for an actual request, whose headers are not checked.
pub(crate) fn find_rule<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    request_headers: Option<&[String]>,
) -> Option<&'a CorsRule> {
    rules.iter().find(|rule| {
        rule.allowed_origins.iter().any(|o| wildcard_match(o, origin))
            && rule.allowed_methods.iter().any(|m| m == method)
            && request_headers.is_none_or(|names| {
                names.iter().all(|name| {
                    rule.allowed_headers
                        .iter()
                        .any(|allowed| wildcard_match(&allowed.to_ascii_lowercase(), name))
                })
            })
    })
}

/// The `Access-Control-*` headers and `Vary` for a request from `origin` that `rule` matched;
/// `allowed_headers` are the names a preflight asked for (none for an actual request).
fn cors_headers(rule: &CorsRule, origin: &str, allowed_headers: &[String]) -> Vec<(HeaderName, String)> {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let mut out = vec![
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            if any_origin {
                "*".to_owned()
            } else {
                origin.to_owned()
            },
        ),
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            rule.allowed_methods.join(", "),
        ),
    ];
    if !allowed_headers.is_empty() {
        out.push((header::ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers.join(", ")));
    }
    if !rule.expose_headers.is_empty() {
        out.push((
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            rule.expose_headers.join(", "),
        ));
    }
    if let Some(age) = rule.max_age_seconds {
        out.push((header::ACCESS_CONTROL_MAX_AGE, age.to_string()));
    }
    if !any_origin {
        out.push((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".to_owned()));
    }
    out.push((header::VARY, VARY.to_owned()));
    out
}

/// Sets `headers` on a response; `Vary` is added to any the response has. A value that is not
/// a valid header value (a stored rule with control characters) is left out.
fn apply(response: &mut HeaderMap, headers: Vec<(HeaderName, String)>) {
    for (name, value) in headers {
        let Ok(value) = HeaderValue::from_str(&value) else {
            tracing::warn!(header = %name, "CORS header value is not a valid HTTP header value; left out");
            continue;
        };
        if name == header::VARY {
            response.append(name, value);
        } else {
            response.insert(name, value);
        }
    }
}

/// A header's value as text, when present, valid and not empty.
fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// The names of `Access-Control-Request-Headers` (every instance), trimmed, lower case, empty
/// items skipped.
fn requested_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// What is known of a bucket's CORS, as cached.
#[derive(Clone, Debug)]
enum BucketCors {
    /// The bucket does not exist.
    NoBucket,
    /// The bucket has no (usable) CORS configuration.
    NotConfigured,
    /// The bucket's rules, in order.
    Rules(Arc<[CorsRule]>),
}

/// A bucket's cached CORS state: when it was read, and what it is.
type Cached = (Instant, BucketCors);

/// The CORS side of the front door: the bucket a request addresses, each bucket's rules cached
/// for [`CORS_TTL`], preflight answers and the headers of actual requests.
pub(crate) struct Cors {
    layer: Arc<ObjectLayer>,
    /// The virtual-host parser s3s uses (none: path style only).
    hosts: Option<Box<dyn S3Host>>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Cors {
    /// CORS over `layer`'s buckets, addressed path style or through `hosts`.
    pub(crate) fn new(layer: Arc<ObjectLayer>, hosts: Option<Box<dyn S3Host>>) -> Cors {
        Cors {
            layer,
            hosts,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Forgets a bucket's cached rules (they were just changed through this node).
    fn invalidate(&self, bucket: &str) {
        self.cache().remove(bucket);
    }

    /// The bucket's CORS state, from the cache when fresh enough.
    async fn rules(&self, bucket: &str) -> Result<BucketCors, ObjectError> {
        if let Some((at, state)) = self.cache().get(bucket)
            && at.elapsed() < CORS_TTL
        {
            return Ok(state.clone());
        }
        let state = match self.layer.get_bucket_config(bucket, BUCKET_CORS_CONFIG).await {
            Ok(None) => BucketCors::NotConfigured,
            Ok(Some(blob)) => match serde_json::from_slice::<Vec<CorsRule>>(&blob) {
                Ok(rules) => BucketCors::Rules(rules.into()),
                Err(err) => {
                    tracing::error!(bucket, %err, "stored CORS configuration does not decode; ignoring it");
                    BucketCors::NotConfigured
                }
            },
            Err(ObjectError::NoSuchBucket { .. }) => BucketCors::NoBucket,
            Err(err) => return Err(err),
        };
        let mut cache = self.cache();
        if cache.len() >= CACHE_BUCKETS_MAX {
            cache.clear();
        }
        cache.insert(bucket.to_owned(), (Instant::now(), state.clone()));
        Ok(state)
    }

    /// The bucket a request addresses (see [`bucket_of`]).
    fn bucket_of<B>(&self, req: &http::Request<B>) -> Option<String> {
        bucket_of(self.hosts.as_deref(), req)
    }

    /// The answer to an `OPTIONS` request (see the module documentation).
    async fn preflight<B>(&self, req: &http::Request<B>) -> HttpResponse {
        let request_id = req.extensions().get::<RequestId>().map(|id| id.0.clone());
        match self.preflight_headers(req).await {
            Ok(headers) => {
                let mut resp = HttpResponse::new(Body::empty());
                apply(resp.headers_mut(), headers);
                resp
            }
            Err(mut err) => {
                if let Some(id) = request_id {
                    err.set_request_id(id);
                }
                error_response(err)
            }
        }
    }

    async fn preflight_headers<B>(&self, req: &http::Request<B>) -> S3Result<Vec<(HeaderName, String)>> {
        let headers = req.headers();
        let Some(origin) = header_text(headers, &header::ORIGIN) else {
            return Err(custom_error(
                "BadRequest",
                StatusCode::BAD_REQUEST,
                "Insufficient information. Origin request header needed.".to_owned(),
            ));
        };
        let bucket_not_found = || {
            custom_error(
                "AccessForbidden",
                StatusCode::FORBIDDEN,
                "CORSResponse: Bucket not found".to_owned(),
            )
        };
        let Some(bucket) = self.bucket_of(req) else {
            return Err(bucket_not_found());
        };
        let request_id = req.extensions().get::<RequestId>().map(|id| id.0.as_str());
        let rules = match self
            .rules(&bucket)
            .await
            .map_err(|e| crate::map_object_error(e, request_id))?
        {
            BucketCors::NoBucket => return Err(bucket_not_found()),
            BucketCors::NotConfigured => {
                return Err(custom_error(
                    "AccessForbidden",
                    StatusCode::FORBIDDEN,
                    "CORSResponse: CORS is not enabled for this bucket.".to_owned(),
                ));
            }
            BucketCors::Rules(rules) => rules,
        };
        let method = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let method = match method {
            Some(m) if METHODS.contains(&m.as_str()) => m,
            other => {
                return Err(custom_error(
                    "BadRequest",
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Invalid Access-Control-Request-Method: {}",
                        other.as_deref().unwrap_or("null")
                    ),
                ));
            }
        };
        let names = requested_headers(headers);
        let Some(rule) = find_rule(&rules, origin, &method, Some(&names)) else {
            return Err(custom_error(
                "AccessForbidden",
                StatusCode::FORBIDDEN,
                NOT_ALLOWED_MESSAGE.to_owned(),
            ));
        };
        Ok(cors_headers(rule, origin, &names))
    }

    /// The headers for an actual request from `origin` with `method` to `bucket`: those of the
    /// first matching rule, none without one (or when the rules cannot be read now).
    async fn actual_headers(&self, bucket: &str, origin: &str, method: &str) -> Vec<(HeaderName, String)> {
        match self.rules(bucket).await {
            Ok(BucketCors::Rules(rules)) => find_rule(&rules, origin, method, None)
                .map(|rule| cors_headers(rule, origin, &[]))
                .unwrap_or_default(),
            Ok(BucketCors::NoBucket | BucketCors::NotConfigured) => Vec::new(),
            Err(err) => {
                tracing::warn!(bucket, error = %err, "CORS rules unreadable; answering without CORS headers");
                Vec::new()
            }
        }
    }
}

/// An S3 error as s3s would send it.
fn error_response(err: S3Error) -> HttpResponse {
    err.to_http_response().unwrap_or_else(|_| {
        let mut resp = HttpResponse::new(Body::empty());
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

/// The bucket a request addresses: from the host name when `hosts` (s3s's virtual-host
/// parser) finds one in it (as s3s decides: never for an IP address), else the first path
/// segment. `None` for the service itself (`/`).
fn bucket_of<B>(hosts: Option<&dyn S3Host>, req: &http::Request<B>) -> Option<String> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str));
    if let (Some(hosts), Some(host)) = (hosts, host)
        && !is_ip_address(host)
        && let Ok(vh) = hosts.parse_host_header(host)
        && let Some(bucket) = vh.bucket()
    {
        return Some(bucket.to_owned());
    }
    path_bucket(req.uri())
}

/// Like s3s: a host that is an IP address (with or without port) never names a bucket.
fn is_ip_address(host: &str) -> bool {
    host.parse::<std::net::SocketAddr>().is_ok() || host.parse::<std::net::IpAddr>().is_ok()
}

/// The first segment of the (percent-decoded) path; `None` when empty.
fn path_bucket(uri: &Uri) -> Option<String> {
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8_lossy();
    let rest = path.trim_start_matches('/');
    let bucket = rest.split_once('/').map_or(rest, |(bucket, _)| bucket);
    (!bucket.is_empty()).then(|| bucket.to_owned())
}

/// A request that changes a bucket's CORS configuration (Put or DeleteBucketCors).
fn changes_cors(method: &Method, uri: &Uri) -> bool {
    (*method == Method::PUT || *method == Method::DELETE) && crate::intercept::has_query_key(uri, "cors")
}

/// The servable front door: s3s's [`S3Service`] behind CORS. `OPTIONS` requests are answered
/// here as CORS preflights; a presigned URL whose lifetime S3 would refuse is refused here
/// ([`crate::presign`]); a browser form's `${filename}` key is resolved and its policy
/// failures answered as S3 does ([`crate::post_form`]); every other request goes to s3s, and
/// the answer to one with an `Origin` gets the bucket's matching CORS headers.
///
/// It dereferences to the inner [`S3Service`] for code that needs s3s's type; requests sent
/// through that get no CORS.
#[derive(Clone)]
pub struct FrontDoorService {
    inner: S3Service,
    cors: Arc<Cors>,
}

impl FrontDoorService {
    pub(crate) fn new(inner: S3Service, cors: Cors) -> FrontDoorService {
        FrontDoorService {
            inner,
            cors: Arc::new(cors),
        }
    }

    /// Serves one request (the counterpart of [`S3Service::call`]).
    ///
    /// # Errors
    ///
    /// What s3s's service fails with (the connection is then aborted).
    pub async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if req.method() == Method::OPTIONS {
            return Ok(self.cors.preflight(&req).await);
        }
        if let Err(err) = crate::presign::check_presigned_lifetime(req.uri(), time::OffsetDateTime::now_utc())
        {
            return Ok(error_response(err));
        }
        let (req, form_upload) = crate::post_form::prepare(req).await;
        let mut resp = self.cors_call(req).await?;
        // s3s answers every success with its operation's status; a handler that must answer
        // another one (RestoreObject's 202) says so in the response's extensions.
        if let Some(crate::StatusOverride(status)) = resp.extensions().get::<crate::StatusOverride>().copied()
        {
            *resp.status_mut() = status;
        }
        Ok(if form_upload {
            crate::post_form::finish(resp)
        } else {
            resp
        })
    }

    /// [`Self::call`] past the preflight, presign and form steps: s3s, then CORS headers.
    async fn cors_call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let origin = header_text(req.headers(), &header::ORIGIN).map(str::to_owned);
        let change = changes_cors(req.method(), req.uri());
        if origin.is_none() && !change {
            return self.inner.call(req).await;
        }
        let bucket = self.cors.bucket_of(&req);
        // AWS matches an actual request that carries Access-Control-Request-Method by that method.
        let method = header_text(req.headers(), &header::ACCESS_CONTROL_REQUEST_METHOD)
            .unwrap_or(req.method().as_str())
            .to_owned();
        let result = self.inner.call(req).await;
        if change && let Some(bucket) = &bucket {
            self.cors.invalidate(bucket);
        }
        let mut resp = result?;
        if let (Some(origin), Some(bucket)) = (origin, bucket) {
            let headers = self.cors.actual_headers(&bucket, &origin, &method).await;
            apply(resp.headers_mut(), headers);
        }
        Ok(resp)
    }
}

impl std::ops::Deref for FrontDoorService {
    type Target = S3Service;

    fn deref(&self) -> &S3Service {
        &self.inner
    }
}

impl std::fmt::Debug for FrontDoorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontDoorService").finish_non_exhaustive()
    }
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for FrontDoorService {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = futures::future::BoxFuture<'static, Result<HttpResponse, HttpError>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { service.call(req.map(Body::from)).await })
    }
}

/// The declared length of a request body: `x-amz-decoded-content-length` (aws-chunked), else
/// `Content-Length`.
fn declared_body_bytes(headers: &HeaderMap) -> Option<u64> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    };
    value("x-amz-decoded-content-length").or_else(|| value(header::CONTENT_LENGTH.as_str()))
}

pub(crate) async fn put_bucket_cors(
    s3: &StrataS3,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let map_err = err_mapper(&req);
    if declared_body_bytes(&req.headers).is_some_and(|n| n > CORS_BODY_BYTES_MAX) {
        return Err(malformed_xml());
    }
    let input = req.input;
    let rules = validate(input.cors_configuration)?;
    let blob = serde_json::to_vec(&rules).map_err(|_| S3Error::new(S3ErrorCode::InternalError))?;
    s3.layer
        .put_bucket_config(&input.bucket, BUCKET_CORS_CONFIG, blob.into())
        .await
        .map_err(map_err)?;
    Ok(S3Response::new(PutBucketCorsOutput::default()))
}

pub(crate) async fn get_bucket_cors(
    s3: &StrataS3,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let map_err = err_mapper(&req);
    let bucket = req.input.bucket.as_str();
    let blob = s3
        .layer
        .get_bucket_config(bucket, BUCKET_CORS_CONFIG)
        .await
        .map_err(map_err)?
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::NoSuchCORSConfiguration,
                "The CORS configuration does not exist",
            )
        })?;
    let rules: Vec<CorsRule> = serde_json::from_slice(&blob).map_err(|err| {
        tracing::error!(bucket, %err, "stored CORS configuration does not decode");
        S3Error::new(S3ErrorCode::InternalError)
    })?;
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    let cors_rules = rules
        .into_iter()
        .map(|rule| CORSRule {
            allowed_headers: non_empty(rule.allowed_headers),
            allowed_methods: rule.allowed_methods,
            allowed_origins: rule.allowed_origins,
            expose_headers: non_empty(rule.expose_headers),
            id: rule.id,
            max_age_seconds: rule.max_age_seconds,
        })
        .collect();
    Ok(S3Response::new(GetBucketCorsOutput {
        cors_rules: Some(cors_rules),
    }))
}

pub(crate) async fn delete_bucket_cors(
    s3: &StrataS3,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    let map_err = err_mapper(&req);
    s3.layer
        .delete_bucket_config(&req.input.bucket, BUCKET_CORS_CONFIG)
        .await
        .map_err(map_err)?;
    let mut resp = S3Response::new(DeleteBucketCorsOutput::default());
    resp.status = Some(StatusCode::NO_CONTENT);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn rule(origins: &[&str], methods: &[&str]) -> CORSRule {
        CORSRule {
            allowed_origins: strings(origins),
            allowed_methods: strings(methods),
            ..Default::default()
        }
    }

    fn config(rules: Vec<CORSRule>) -> CORSConfiguration {
        CORSConfiguration { cors_rules: rules }
    }

    fn error(result: S3Result<Vec<CorsRule>>) -> (String, String) {
        let err = result.unwrap_err();
        (
            err.code().as_str().to_owned(),
            err.message().unwrap_or("").to_owned(),
        )
    }

    fn stored(origins: &[&str], methods: &[&str]) -> CorsRule {
        CorsRule {
            allowed_origins: strings(origins),
            allowed_methods: strings(methods),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_what_aws_accepts() {
        let mut full = rule(&["https://example.com", "https://*.example.org", "*"], &METHODS);
        full.id = Some("a".repeat(255));
        full.allowed_headers = Some(strings(&["*", "x-amz-*", "Content-Type"]));
        full.expose_headers = Some(strings(&["ETag", "x-amz-request-id"]));
        full.max_age_seconds = Some(0);
        let rules = validate(config(vec![full, rule(&[""], &["GET", "GET"])])).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].id.as_deref().map(str::len), Some(255));
        assert_eq!(
            rules[0].allowed_headers,
            strings(&["*", "x-amz-*", "Content-Type"])
        );
        assert_eq!(rules[1].allowed_origins, strings(&[""]));
        let hundred = (0..100).map(|_| rule(&["*"], &["GET"])).collect();
        assert_eq!(validate(config(hundred)).unwrap().len(), 100);
        // Unicode characters count as characters.
        let mut unicode = rule(&["*"], &["GET"]);
        unicode.id = Some("é".repeat(255));
        assert!(validate(config(vec![unicode])).is_ok());
    }

    #[test]
    fn malformed_xml_for_structure_and_limits() {
        let malformed = |rules: Vec<CORSRule>| error(validate(config(rules))).0;
        assert_eq!(malformed(vec![]), "MalformedXML");
        assert_eq!(
            malformed((0..101).map(|_| rule(&["*"], &["GET"])).collect()),
            "MalformedXML"
        );
        assert_eq!(malformed(vec![rule(&[], &["GET"])]), "MalformedXML");
        assert_eq!(malformed(vec![rule(&["*"], &[])]), "MalformedXML");
        let mut long_id = rule(&["*"], &["GET"]);
        long_id.id = Some("a".repeat(256));
        assert_eq!(malformed(vec![long_id]), "MalformedXML");
        let mut negative = rule(&["*"], &["GET"]);
        negative.max_age_seconds = Some(-1);
        assert_eq!(malformed(vec![negative]), "MalformedXML");
        // Over 64 KiB of configuration.
        let big = rule(&[&"o".repeat(70 * 1024)], &["GET"]);
        assert_eq!(malformed(vec![big]), "MalformedXML");
        // Structure is checked before values: a later rule without origins wins over a bad method.
        assert_eq!(
            malformed(vec![rule(&["*"], &["PATCH"]), rule(&[], &["GET"])]),
            "MalformedXML"
        );
    }

    #[test]
    fn invalid_request_with_aws_texts() {
        let invalid = |rules: Vec<CORSRule>| error(validate(config(rules)));
        for method in ["PATCH", "OPTIONS", "get", " GET", "*", ""] {
            assert_eq!(
                invalid(vec![rule(&["*"], &["GET", method])]),
                (
                    "InvalidRequest".to_owned(),
                    format!("Found unsupported HTTP method in CORS config. Unsupported method is {method}")
                )
            );
        }
        assert_eq!(
            invalid(vec![rule(&["https://example.com", "http://*.*"], &["GET"])]).1,
            "AllowedOrigin \"http://*.*\" can not have more than one wildcard."
        );
        let mut headers = rule(&["*"], &["GET"]);
        headers.allowed_headers = Some(strings(&["x-amz-*", "x-*-meta-*"]));
        assert_eq!(
            invalid(vec![headers]).1,
            "AllowedHeader \"x-*-meta-*\" can not have more than one wildcard."
        );
        let mut expose = rule(&["*"], &["GET"]);
        expose.expose_headers = Some(strings(&["ETag", "x-amz-*"]));
        assert_eq!(
            invalid(vec![expose]).1,
            "ExposeHeader \"x-amz-*\" contains wildcard. We currently do not support wildcard for ExposeHeader."
        );
        // Within a rule the method is checked first; rules are checked in order.
        let mut both = rule(&["*.*"], &["PATCH"]);
        both.allowed_headers = Some(strings(&["*-*"]));
        assert!(invalid(vec![both]).1.starts_with("Found unsupported HTTP method"));
        assert!(
            invalid(vec![
                rule(&["*"], &["GET"]),
                rule(&["*.*"], &["GET"]),
                rule(&["*"], &["TRACE"])
            ])
            .1
            .starts_with("AllowedOrigin")
        );
    }

    #[test]
    fn origins_match_with_one_wildcard_case_sensitively() {
        for (pattern, origin, matches) in [
            ("*", "https://example.com", true),
            ("*", "null", true),
            ("https://example.com", "https://example.com", true),
            ("https://example.com", "http://example.com", false),
            ("https://example.com", "https://example.com:8443", false),
            ("https://example.com", "https://example.com/", false),
            ("https://example.com", "https://EXAMPLE.com", false),
            ("https://Example.com", "https://Example.com", true),
            ("https://*.example.com", "https://www.example.com", true),
            ("https://*.example.com", "https://a.b.example.com", true),
            ("https://*.example.com", "https://.example.com", true),
            ("https://*.example.com", "https://example.com", false),
            ("https://*.example.com", "https://www.example.com.evil", false),
            ("https://*.example.com", "https://www.Example.com", false),
            ("http://127.0.0.1:*", "http://127.0.0.1:8080", true),
            ("https://a*a", "https://aa", true),
            ("https://a*a", "https://a", false),
            ("start*end", "startend", true),
            ("start*end", "0start12end", false),
            ("prefix*", "prefix", true),
            ("*suffix", "foo.suffix.get", false),
            ("", "", true),
            ("", "https://example.com", false),
        ] {
            let rules = [stored(&[pattern], &["GET"])];
            assert_eq!(
                find_rule(&rules, origin, "GET", None).is_some(),
                matches,
                "{pattern} vs {origin}"
            );
        }
    }

    #[test]
    fn methods_match_exactly_and_headers_case_insensitively() {
        let rules = [stored(&["*"], &["GET", "HEAD"])];
        assert!(find_rule(&rules, "o", "HEAD", None).is_some());
        assert!(find_rule(&rules, "o", "PUT", None).is_none());
        assert!(find_rule(&rules, "o", "get", None).is_none());
        assert!(find_rule(&rules, "o", "OPTIONS", None).is_none());

        let headers = |allowed: &[&str], requested: &[&str]| {
            let mut rule = stored(&["*"], &["GET"]);
            rule.allowed_headers = strings(allowed);
            let requested: Vec<String> = requested.iter().map(|h| h.to_ascii_lowercase()).collect();
            find_rule(&[rule], "o", "GET", Some(&requested)).is_some()
        };
        assert!(headers(&[], &[]));
        assert!(!headers(&[], &["content-type"]));
        assert!(headers(&["Content-Type"], &["content-type"]));
        assert!(headers(&["CONTENT-TYPE"], &["Content-Type"]));
        assert!(!headers(&["content-type"], &["content-type", "x-amz-date"]));
        assert!(headers(&["*"], &["authorization", "x-amz-date", "x-custom"]));
        assert!(headers(&["X-Amz-*"], &["x-amz-date", "x-amz-meta-a", "X-AMZ-"]));
        assert!(!headers(&["x-amz-*"], &["x-amzn-trace-id"]));
        assert!(headers(
            &["x-amz-*", "content-type"],
            &["x-amz-date", "content-type"]
        ));
        assert!(headers(&["x-*-id"], &["x-request-id"]));
        assert!(!headers(&["x-*-id"], &["x-id"]));
        // An actual request's headers are not checked.
        assert!(find_rule(&[stored(&["*"], &["GET"])], "o", "GET", None).is_some());
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let mut exact = stored(&["https://example.com"], &["GET", "PUT"]);
        exact.id = Some("exact".into());
        let mut pattern = stored(&["https://*.com"], &["GET"]);
        pattern.id = Some("pattern".into());
        pattern.allowed_headers = strings(&["*"]);
        let mut any = stored(&["*"], &["GET", "HEAD"]);
        any.id = Some("any".into());
        let rules = [exact, pattern, any];
        let id = |method: &str, headers: Option<&[String]>| {
            find_rule(&rules, "https://example.com", method, headers).and_then(|r| r.id.clone())
        };
        assert_eq!(id("GET", None).as_deref(), Some("exact"));
        assert_eq!(id("HEAD", None).as_deref(), Some("any"));
        assert_eq!(
            id("GET", Some(&strings(&["x-amz-date"]))).as_deref(),
            Some("pattern")
        );
        assert_eq!(id("DELETE", None), None);
    }

    fn header_map(headers: Vec<(HeaderName, String)>) -> Vec<(String, String)> {
        headers
            .into_iter()
            .map(|(n, v)| (n.as_str().to_owned(), v))
            .collect()
    }

    #[test]
    fn response_headers_as_aws_sends_them() {
        let mut site = stored(&["https://example.com", "https://*.example.com"], &["GET", "PUT"]);
        site.expose_headers = strings(&["ETag", "x-amz-request-id"]);
        site.max_age_seconds = Some(3000);
        let got = header_map(cors_headers(
            &site,
            "https://a.example.com",
            &strings(&["content-type"]),
        ));
        let want: Vec<(String, String)> = [
            ("access-control-allow-origin", "https://a.example.com"),
            ("access-control-allow-methods", "GET, PUT"),
            ("access-control-allow-headers", "content-type"),
            ("access-control-expose-headers", "ETag, x-amz-request-id"),
            ("access-control-max-age", "3000"),
            ("access-control-allow-credentials", "true"),
            ("vary", VARY),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(got, want);

        // A rule listing `*` answers `*` without credentials, even next to the exact origin.
        let public = stored(&["https://example.com", "*"], &["GET"]);
        let got = header_map(cors_headers(&public, "https://example.com", &[]));
        assert_eq!(
            got,
            vec![
                ("access-control-allow-origin".to_owned(), "*".to_owned()),
                ("access-control-allow-methods".to_owned(), "GET".to_owned()),
                ("vary".to_owned(), VARY.to_owned()),
            ]
        );

        let mut map = HeaderMap::new();
        map.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        apply(&mut map, cors_headers(&public, "https://example.com", &[]));
        assert_eq!(map.get_all(header::VARY).iter().count(), 2);
        assert_eq!(map.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "*");
    }

    #[test]
    fn requested_header_names_are_trimmed_and_lower_case() {
        let mut map = HeaderMap::new();
        map.append(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("Content-Type,X-Amz-Date ,  , x-amz-meta-Name"),
        );
        map.append(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("range"),
        );
        assert_eq!(
            requested_headers(&map),
            strings(&["content-type", "x-amz-date", "x-amz-meta-name", "range"])
        );
        assert!(requested_headers(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn stored_rules_round_trip_as_json() {
        let mut rule = stored(&["*"], &["GET"]);
        rule.max_age_seconds = Some(5);
        let json = serde_json::to_string(&[rule.clone()]).unwrap();
        assert_eq!(
            json,
            r#"[{"allowed_origins":["*"],"allowed_methods":["GET"],"max_age_seconds":5}]"#
        );
        let back: Vec<CorsRule> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![rule]);
    }

    async fn open_layer(dir: &tempfile::TempDir) -> Arc<ObjectLayer> {
        let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
        for d in &drives {
            std::fs::create_dir_all(d).unwrap();
        }
        Arc::new(ObjectLayer::open_local(&drives).await.unwrap())
    }

    fn options(uri: &str, headers: &[(&str, &str)]) -> http::Request<Body> {
        let mut builder = http::Request::builder()
            .method(Method::OPTIONS)
            .uri(uri)
            .header("host", "127.0.0.1:9000");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    async fn answer(cors: &Cors, req: http::Request<Body>) -> (StatusCode, HeaderMap, String) {
        let resp = cors.preflight(&req).await;
        let (parts, body) = resp.into_parts();
        let bytes = http_body_util::BodyExt::collect(body).await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn preflights_from_the_buckets_rules() {
        let dir = tempfile::tempdir().unwrap();
        let layer = open_layer(&dir).await;
        layer.make_bucket("site", Default::default()).await.unwrap();
        layer.make_bucket("plain", Default::default()).await.unwrap();
        let mut rule = stored(&["http://127.0.0.1:*"], &["GET", "PUT"]);
        rule.allowed_headers = strings(&["content-type"]);
        rule.max_age_seconds = Some(60);
        let blob = serde_json::to_vec(&[rule]).unwrap();
        layer
            .put_bucket_config("site", BUCKET_CORS_CONFIG, blob.into())
            .await
            .unwrap();
        let cors = Cors::new(Arc::clone(&layer), None);
        let origin = ("origin", "http://127.0.0.1:8080");

        let (status, headers, _) = answer(
            &cors,
            options(
                "/site/key?X-Amz-Signature=abc",
                &[
                    origin,
                    ("access-control-request-method", "PUT"),
                    ("access-control-request-headers", "Content-Type"),
                ],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["access-control-allow-origin"], "http://127.0.0.1:8080");
        assert_eq!(headers["access-control-allow-methods"], "GET, PUT");
        assert_eq!(headers["access-control-allow-headers"], "content-type");
        assert_eq!(headers["access-control-max-age"], "60");
        assert_eq!(headers["access-control-allow-credentials"], "true");
        assert_eq!(headers["vary"], VARY);

        let refused = |code: &str, message: &str, body: &str| {
            body.contains(&format!("<Code>{code}</Code>")) && body.contains(message)
        };
        let cases = [
            (
                "/site",
                vec![("access-control-request-method", "GET")],
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Origin request header needed",
            ),
            (
                "/site",
                vec![origin],
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid Access-Control-Request-Method: null",
            ),
            (
                "/site",
                vec![origin, ("access-control-request-method", "PATCH")],
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid Access-Control-Request-Method: PATCH",
            ),
            (
                "/site/k",
                vec![origin, ("access-control-request-method", "DELETE")],
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "This CORS request is not allowed",
            ),
            (
                "/site/k",
                vec![
                    origin,
                    ("access-control-request-method", "PUT"),
                    ("access-control-request-headers", "x-amz-date"),
                ],
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "This CORS request is not allowed",
            ),
            (
                "/plain/k",
                vec![origin, ("access-control-request-method", "GET")],
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORS is not enabled for this bucket.",
            ),
            (
                "/missing/k",
                vec![origin, ("access-control-request-method", "GET")],
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "Bucket not found",
            ),
        ];
        for (uri, headers, status, code, message) in cases {
            let (got, resp_headers, body) = answer(&cors, options(uri, &headers)).await;
            assert_eq!(got, status, "{uri} {headers:?}: {body}");
            assert!(refused(code, message, &body), "{uri} {headers:?}: {body}");
            assert!(resp_headers.get("access-control-allow-origin").is_none());
        }

        // Actual requests: the first matching rule's headers, none otherwise.
        let got = cors.actual_headers("site", "http://127.0.0.1:8080", "GET").await;
        assert!(got.iter().any(|(n, _)| *n == header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(
            cors.actual_headers("site", "http://127.0.0.1:8080", "DELETE")
                .await
                .is_empty()
        );
        assert!(
            cors.actual_headers("plain", "http://127.0.0.1:8080", "GET")
                .await
                .is_empty()
        );
        assert!(
            cors.actual_headers("missing", "http://127.0.0.1:8080", "GET")
                .await
                .is_empty()
        );

        // Cached for a second; forgotten at once when invalidated.
        layer
            .delete_bucket_config("site", BUCKET_CORS_CONFIG)
            .await
            .unwrap();
        assert!(
            !cors
                .actual_headers("site", "http://127.0.0.1:8080", "GET")
                .await
                .is_empty()
        );
        cors.invalidate("site");
        assert!(
            cors.actual_headers("site", "http://127.0.0.1:8080", "GET")
                .await
                .is_empty()
        );
    }

    #[test]
    fn buckets_from_paths_and_virtual_hosts() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(path_bucket(&uri("/b/k/x")).as_deref(), Some("b"));
        assert_eq!(path_bucket(&uri("/b")).as_deref(), Some("b"));
        assert_eq!(path_bucket(&uri("/b/")).as_deref(), Some("b"));
        assert_eq!(path_bucket(&uri("/")), None);
        assert!(changes_cors(&Method::PUT, &uri("/b?cors")));
        assert!(changes_cors(&Method::DELETE, &uri("/b?cors=")));
        assert!(!changes_cors(&Method::GET, &uri("/b?cors")));
        assert!(!changes_cors(&Method::PUT, &uri("/b/k")));
        let get = |host: &str, path: &str| {
            http::Request::builder()
                .uri(path)
                .header("host", host)
                .body(())
                .unwrap()
        };
        let domains = s3s::host::MultiDomain::new(&["s3.example.com"]).unwrap();
        let hosts: Option<&dyn S3Host> = Some(&domains);
        assert_eq!(
            bucket_of(hosts, &get("photos.s3.example.com", "/k")).as_deref(),
            Some("photos")
        );
        assert_eq!(
            bucket_of(hosts, &get("s3.example.com", "/b/k")).as_deref(),
            Some("b")
        );
        assert_eq!(
            bucket_of(hosts, &get("127.0.0.1:9000", "/b/k")).as_deref(),
            Some("b")
        );
        assert_eq!(
            bucket_of(None, &get("photos.s3.example.com", "/b/k")).as_deref(),
            Some("b")
        );
        assert_eq!(bucket_of(hosts, &get("s3.example.com", "/")), None);
        assert!(is_ip_address("127.0.0.1:9000"));
        assert!(is_ip_address("[::1]:9000"));
        assert!(!is_ip_address("s3.example.com"));
    }
}
