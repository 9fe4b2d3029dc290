//! [`Client`]: signed S3 and admin requests over a pool of keep-alive HTTP/1.1 connections
//! (hyper-util's legacy client, `TCP_NODELAY` on), plus the S3 operations the load generator
//! and admin tooling use.
//!
//! Invariants:
//! - Requests are path-style (`/bucket/key`) against one `http://` endpoint; the `host` header
//!   is set explicitly to the endpoint's authority so the signed value is the sent value.
//! - Bulk bodies are sent `UNSIGNED-PAYLOAD` and never hashed; only [`Client::admin_json`]
//!   hashes its (small) body.
//! - Every wait is bounded: connecting by `connect_timeout`, the response head and each body
//!   frame by `request_timeout`; answers read whole are capped at [`RESPONSE_BODY_BYTES_MAX`].
//! - Any non-2xx answer is an error ([`ClientError::UnexpectedStatus`]) carrying the S3 error
//!   code when the body has one.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::ClientError;
use crate::sigv4::{AmzDate, PayloadHash, RequestToSign, Signer, canonical_query, encode_path};
use crate::xml::{self, ListPage};

/// Request body type: whole in memory (bench bodies are zero-copy slices of one buffer).
pub type Body = Full<Bytes>;

/// Largest answer read whole (XML listings, admin JSON, error bodies).
pub const RESPONSE_BODY_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Bytes of an error body kept for the error message.
const ERROR_BODY_BYTES_MAX: u64 = 64 * 1024;
/// Default idle keep-alive connections kept per host.
pub const POOL_IDLE_CONNECTIONS_DEFAULT: usize = 256;
/// Default time to establish a TCP connection.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default time to the response head, and between two body frames.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Largest number of parts in one CompleteMultipartUpload (S3's limit).
pub const PARTS_COUNT_MAX: usize = 10_000;

/// Where and as whom to connect.
#[derive(Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port` of the server (path-style requests).
    pub endpoint: Uri,
    /// For `https://`: a PEM file of extra trusted certificates (a private CA, or the server's
    /// self-signed certificate), trusted besides the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Region requests are signed for.
    pub region: String,
    /// Idle keep-alive connections kept per host (the pool size).
    pub pool_idle_connections: usize,
    /// Time to establish a TCP connection.
    pub connect_timeout: Duration,
    /// Time to the response head, and between two frames of a streamed response body.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for ClientConfig {
    // The secret never appears in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .field("ca_file", &self.ca_file)
            .field("pool_idle_connections", &self.pool_idle_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A config with region `us-east-1` and the default pool size and timeouts.
    pub fn new(endpoint: Uri, access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            endpoint,
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            ca_file: None,
            region: "us-east-1".into(),
            pool_idle_connections: POOL_IDLE_CONNECTIONS_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
        }
    }
}

/// One part of a multipart upload, as CompleteMultipartUpload lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// ETag the server returned for the part (with its quotes).
    pub etag: String,
}

/// A signed S3 client. Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    signer: Signer,
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
    request_timeout: Duration,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &format_args!("{}://{}", self.scheme, self.authority))
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config.endpoint`. Fails if the endpoint is not `http(s)://host[:port]`,
    /// or, for `https://`, when no trust root can be loaded.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let endpoint = config.endpoint.to_string();
        let scheme = config
            .endpoint
            .scheme()
            .cloned()
            .ok_or(ClientError::InvalidEndpoint {
                endpoint: endpoint.clone(),
                reason: "no scheme (expected http://host:port)",
            })?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(ClientError::InvalidEndpoint {
                endpoint,
                reason: "only http:// and https:// are supported",
            });
        }
        let authority = config
            .endpoint
            .authority()
            .cloned()
            .ok_or(ClientError::InvalidEndpoint {
                endpoint: endpoint.clone(),
                reason: "no host",
            })?;
        if !matches!(config.endpoint.path(), "" | "/") || config.endpoint.query().is_some() {
            return Err(ClientError::InvalidEndpoint {
                endpoint,
                reason: "must not have a path or query",
            });
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| ClientError::InvalidHeaderValue { name: "host" })?;

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_keepalive(Some(POOL_IDLE_TIMEOUT));
        connector.enforce_http(false);
        let tls = if scheme == Scheme::HTTPS {
            tls_config(config.ca_file.as_deref())?
        } else {
            // Never used for http:// (the connector passes plain connections through), but
            // the connector type wants one.
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| ClientError::TlsRoots {
                    reason: e.to_string(),
                })?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            )
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_idle_connections)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let signer = Signer::new(config.access_key, config.secret_key, config.region);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                signer,
                scheme,
                authority,
                host,
                request_timeout: config.request_timeout,
            }),
        })
    }

    /// Sends one request signed with `UNSIGNED-PAYLOAD`. `path` is raw (unencoded), e.g.
    /// `/bucket/key with spaces`; `query` pairs are raw too (`("uploads", "")` for a flag).
    /// Returns the response whatever its status; the body is left to the caller.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, ClientError> {
        self.send_with_payload_hash(method, path, query, headers, body, PayloadHash::Unsigned)
            .await
    }

    /// Like [`Client::send`], with the payload hash given by the caller (who hashed the body).
    pub async fn send_with_payload_hash(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        mut headers: HeaderMap,
        body: Body,
        payload: PayloadHash,
    ) -> Result<Response<Incoming>, ClientError> {
        let inner = &self.inner;
        let canonical_uri = encode_path(path);
        let canonical_query = canonical_query(query);
        headers.remove(HOST);
        let request = RequestToSign {
            method: &method,
            canonical_uri: &canonical_uri,
            canonical_query: &canonical_query,
            host: inner.authority.as_str(),
        };
        inner.signer.sign(
            request,
            &mut headers,
            &payload,
            &AmzDate::from_system_time(SystemTime::now()),
        )?;
        headers.insert(HOST, inner.host.clone());

        let mut uri = format!("{}://{}{canonical_uri}", inner.scheme, inner.authority);
        if !canonical_query.is_empty() {
            uri.push('?');
            uri.push_str(&canonical_query);
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(ClientError::InvalidRequest)?;
        *request.headers_mut() = headers;
        match tokio::time::timeout(inner.request_timeout, inner.http.request(request)).await {
            Ok(result) => result.map_err(ClientError::Transport),
            Err(_) => Err(ClientError::Timeout {
                timeout_ms: millis(inner.request_timeout),
            }),
        }
    }

    /// An unsigned `GET` of `path_and_query` (a public document such as an OpenID Connect
    /// discovery document or key set), its body at most `limit_bytes`; non-2xx is an error.
    pub async fn get_unsigned(&self, path_and_query: &str, limit_bytes: u64) -> Result<Bytes, ClientError> {
        let inner = &self.inner;
        let uri = format!("{}://{}{path_and_query}", inner.scheme, inner.authority);
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header(HOST, inner.host.clone())
            .body(empty())
            .map_err(ClientError::InvalidRequest)?;
        let response = match tokio::time::timeout(inner.request_timeout, inner.http.request(request)).await {
            Ok(result) => result.map_err(ClientError::Transport)?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    timeout_ms: millis(inner.request_timeout),
                });
            }
        };
        let response = self.check_status("get", response).await?;
        self.read_body(response.into_body(), limit_bytes).await
    }

    /// Sends and turns a non-2xx answer into [`ClientError::UnexpectedStatus`].
    async fn send_ok(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, ClientError> {
        let response = self.send(method, path, query, headers, body).await?;
        self.check_status(operation, response).await
    }

    async fn check_status(
        &self,
        operation: &'static str,
        response: Response<Incoming>,
    ) -> Result<Response<Incoming>, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // The body is read only to describe the error; if that fails the status still stands.
        let body = self
            .read_body(response.into_body(), ERROR_BODY_BYTES_MAX)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let (code, message) =
            xml::parse_error(&text).unwrap_or_else(|| (String::new(), text.trim().to_owned()));
        Err(ClientError::UnexpectedStatus {
            operation,
            status,
            code,
            message,
        })
    }

    /// Reads a whole body, each frame within the request timeout, at most `limit_bytes`.
    async fn read_body(&self, mut body: Incoming, limit_bytes: u64) -> Result<Bytes, ClientError> {
        let mut out = BytesMut::new();
        while let Some(frame) = self.next_frame(&mut body).await? {
            if let Ok(data) = frame.into_data() {
                if (out.len() + data.len()) as u64 > limit_bytes {
                    return Err(ClientError::ResponseTooLarge { limit_bytes });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out.freeze())
    }

    async fn next_frame(
        &self,
        body: &mut Incoming,
    ) -> Result<Option<hyper::body::Frame<Bytes>>, ClientError> {
        let timeout = self.inner.request_timeout;
        match tokio::time::timeout(timeout, body.frame()).await {
            Ok(Some(frame)) => frame.map(Some).map_err(ClientError::BodyRead),
            Ok(None) => Ok(None),
            Err(_) => Err(ClientError::Timeout {
                timeout_ms: millis(timeout),
            }),
        }
    }

    async fn read_text(&self, response: Response<Incoming>) -> Result<String, ClientError> {
        let body = self
            .read_body(response.into_body(), RESPONSE_BODY_BYTES_MAX)
            .await?;
        String::from_utf8(body.to_vec()).map_err(|_| ClientError::NotUtf8)
    }

    /// PutObject; returns the ETag.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Bytes) -> Result<String, ClientError> {
        self.put_object_with(bucket, key, body, HeaderMap::new()).await
    }

    /// PutObject with extra request headers (an `x-amz-checksum-*`, metadata). Returns the ETag.
    pub async fn put_object_with(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        headers: HeaderMap,
    ) -> Result<String, ClientError> {
        let response = self
            .send_ok(
                "PutObject",
                Method::PUT,
                &object_path(bucket, key),
                &[],
                headers,
                Full::new(body),
            )
            .await?;
        let etag = header_string(&response, ETAG).unwrap_or_default();
        // Drain so the connection goes back to the pool.
        self.read_body(response.into_body(), ERROR_BODY_BYTES_MAX).await?;
        Ok(etag)
    }

    /// GetObject; streams the body and discards it. Returns the status and the byte count.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<(StatusCode, u64), ClientError> {
        let response = self.get_object_response(bucket, key).await?;
        let status = response.status();
        let expected = header_string(&response, CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        let mut body = response.into_body();
        let mut received_bytes = 0u64;
        while let Some(frame) = self.next_frame(&mut body).await? {
            if let Some(data) = frame.data_ref() {
                received_bytes += data.len() as u64;
            }
        }
        if let Some(expected_bytes) = expected
            && expected_bytes != received_bytes
        {
            return Err(ClientError::ShortBody {
                expected_bytes,
                received_bytes,
            });
        }
        Ok((status, received_bytes))
    }

    /// GetObject; the body itself, at most `limit_bytes` (more is an error).
    pub async fn get_object_bytes(
        &self,
        bucket: &str,
        key: &str,
        limit_bytes: u64,
    ) -> Result<Bytes, ClientError> {
        let response = self.get_object_response(bucket, key).await?;
        self.read_body(response.into_body(), limit_bytes).await
    }

    async fn get_object_response(&self, bucket: &str, key: &str) -> Result<Response<Incoming>, ClientError> {
        self.send_ok(
            "GetObject",
            Method::GET,
            &object_path(bucket, key),
            &[],
            HeaderMap::new(),
            empty(),
        )
        .await
    }

    /// HeadObject; returns the object's size.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<u64, ClientError> {
        let response = self
            .send_ok(
                "HeadObject",
                Method::HEAD,
                &object_path(bucket, key),
                &[],
                HeaderMap::new(),
                empty(),
            )
            .await?;
        header_string(&response, CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(ClientError::MissingHeader {
                operation: "HeadObject",
                name: "content-length",
            })
    }

    /// DeleteObject (succeeds for a missing key, as S3 does).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), ClientError> {
        let response = self
            .send_ok(
                "DeleteObject",
                Method::DELETE,
                &object_path(bucket, key),
                &[],
                HeaderMap::new(),
                empty(),
            )
            .await?;
        self.read_body(response.into_body(), ERROR_BODY_BYTES_MAX).await?;
        Ok(())
    }

    /// One ListObjectsV2 page of keys under `prefix`.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, ClientError> {
        let max_keys = max_keys.to_string();
        let mut query = vec![
            ("list-type", "2"),
            ("prefix", prefix),
            ("max-keys", max_keys.as_str()),
        ];
        if let Some(token) = continuation {
            query.push(("continuation-token", token));
        }
        let path = format!("/{bucket}");
        let response = self
            .send_ok(
                "ListObjectsV2",
                Method::GET,
                &path,
                &query,
                HeaderMap::new(),
                empty(),
            )
            .await?;
        xml::parse_list_page(&self.read_text(response).await?)
    }

    /// CreateMultipartUpload; returns the upload id.
    pub async fn create_multipart_upload(&self, bucket: &str, key: &str) -> Result<String, ClientError> {
        let path = object_path(bucket, key);
        let response = self
            .send_ok(
                "CreateMultipartUpload",
                Method::POST,
                &path,
                &[("uploads", "")],
                HeaderMap::new(),
                empty(),
            )
            .await?;
        let text = self.read_text(response).await?;
        xml::first_element(&text, "UploadId")?.ok_or(ClientError::MalformedXml {
            what: "InitiateMultipartUploadResult without UploadId",
        })
    }

    /// UploadPart; returns the part's ETag.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<String, ClientError> {
        let part_number = part_number.to_string();
        let query = [("partNumber", part_number.as_str()), ("uploadId", upload_id)];
        let path = object_path(bucket, key);
        let response = self
            .send_ok(
                "UploadPart",
                Method::PUT,
                &path,
                &query,
                HeaderMap::new(),
                Full::new(body),
            )
            .await?;
        let etag = header_string(&response, ETAG).ok_or(ClientError::MissingHeader {
            operation: "UploadPart",
            name: "etag",
        })?;
        self.read_body(response.into_body(), ERROR_BODY_BYTES_MAX).await?;
        Ok(etag)
    }

    /// CompleteMultipartUpload; returns the object's ETag. An `<Error>` inside a 200 answer
    /// (S3 may report late failures that way) is an error too.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<String, ClientError> {
        if parts.is_empty() || parts.len() > PARTS_COUNT_MAX {
            return Err(ClientError::PartsCountOutOfRange { n_parts: parts.len() });
        }
        let mut body = String::from("<CompleteMultipartUpload>");
        for part in parts {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                part.part_number,
                escape(&part.etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        let path = object_path(bucket, key);
        let response = self
            .send_ok(
                "CompleteMultipartUpload",
                Method::POST,
                &path,
                &[("uploadId", upload_id)],
                headers,
                Full::new(Bytes::from(body)),
            )
            .await?;
        let status = response.status();
        let text = self.read_text(response).await?;
        if let Some((code, message)) = xml::parse_error(&text) {
            return Err(ClientError::UnexpectedStatus {
                operation: "CompleteMultipartUpload",
                status,
                code,
                message,
            });
        }
        Ok(xml::first_element(&text, "ETag")?.unwrap_or_default())
    }

    /// AbortMultipartUpload.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), ClientError> {
        let path = object_path(bucket, key);
        let response = self
            .send_ok(
                "AbortMultipartUpload",
                Method::DELETE,
                &path,
                &[("uploadId", upload_id)],
                HeaderMap::new(),
                empty(),
            )
            .await?;
        self.read_body(response.into_body(), ERROR_BODY_BYTES_MAX).await?;
        Ok(())
    }

    /// CreateBucket. Returns `true` if created, `false` if it already existed and is ours.
    pub async fn create_bucket(&self, bucket: &str) -> Result<bool, ClientError> {
        let path = format!("/{bucket}");
        // S3 in us-east-1 answers 200 to re-creating a bucket one owns: ask first, so an
        // existing bucket is never reported as created (the load generator deletes buckets it
        // created).
        let head = self
            .send(Method::HEAD, &path, &[], HeaderMap::new(), empty())
            .await?;
        if head.status().is_success() {
            return Ok(false);
        }
        match self
            .send_ok("CreateBucket", Method::PUT, &path, &[], HeaderMap::new(), empty())
            .await
        {
            Ok(response) => {
                self.read_body(response.into_body(), ERROR_BODY_BYTES_MAX).await?;
                Ok(true)
            }
            Err(ClientError::UnexpectedStatus { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// A bucket subresource call (`?lifecycle`, `?policy`...): `body` sent with its
    /// Content-MD5; the answer's body, or `None` for a 404 (the bucket has no such
    /// configuration). Other non-2xx answers are errors.
    pub async fn bucket_subresource(
        &self,
        method: Method,
        bucket: &str,
        subresource: &str,
        body: Option<Bytes>,
    ) -> Result<Option<Bytes>, ClientError> {
        let mut headers = HeaderMap::new();
        let body = match body {
            Some(bytes) => {
                use md5::Digest as _;
                let md5 = base64_simd::STANDARD.encode_to_string(md5::Md5::digest(&bytes));
                if let Ok(value) = HeaderValue::from_str(&md5) {
                    headers.insert(http::header::HeaderName::from_static("content-md5"), value);
                }
                Full::new(bytes)
            }
            None => empty(),
        };
        let path = format!("/{bucket}");
        let response = self
            .send(method, &path, &[(subresource, "")], headers, body)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            let body = self.read_body(response.into_body(), ERROR_BODY_BYTES_MAX).await?;
            let text = String::from_utf8_lossy(&body);
            // A missing bucket is an error; a missing configuration is an answer.
            if text.contains("<Code>NoSuchBucket</Code>") {
                return Err(ClientError::UnexpectedStatus {
                    operation: "bucket configuration",
                    status: StatusCode::NOT_FOUND,
                    code: "NoSuchBucket".to_owned(),
                    message: format!("the bucket {bucket} does not exist"),
                });
            }
            return Ok(None);
        }
        let response = self.check_status("bucket configuration", response).await?;
        Ok(Some(
            self.read_body(response.into_body(), RESPONSE_BODY_BYTES_MAX)
                .await?,
        ))
    }

    /// DeleteBucket (the bucket must be empty).
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), ClientError> {
        let path = format!("/{bucket}");
        let response = self
            .send_ok(
                "DeleteBucket",
                Method::DELETE,
                &path,
                &[],
                HeaderMap::new(),
                empty(),
            )
            .await?;
        self.read_body(response.into_body(), ERROR_BODY_BYTES_MAX).await?;
        Ok(())
    }

    /// A signed admin call with a raw body (hashed into the signature); returns the raw answer
    /// (MinIO's admin API seals some bodies: the caller seals and opens them).
    pub async fn admin_bytes(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Bytes, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let payload = PayloadHash::of(&body);
        let response = self
            .send_with_payload_hash(method, path, query, headers, Full::new(body), payload)
            .await?;
        let response = self.check_status("admin", response).await?;
        self.read_body(response.into_body(), RESPONSE_BODY_BYTES_MAX)
            .await
    }

    /// A signed admin call with an optional JSON body (hashed into the signature). Returns the
    /// answer parsed as JSON, or `Value::Null` for an empty answer.
    pub async fn admin_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut headers = HeaderMap::new();
        let bytes = match body {
            Some(value) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(serde_json::to_vec(value).map_err(ClientError::Json)?)
            }
            None => Bytes::new(),
        };
        let payload = PayloadHash::of(&bytes);
        let response = self
            .send_with_payload_hash(method, path, query, headers, Full::new(bytes), payload)
            .await?;
        let response = self.check_status("admin", response).await?;
        let body = self
            .read_body(response.into_body(), RESPONSE_BODY_BYTES_MAX)
            .await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&body).map_err(ClientError::Json)
    }
}

fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{key}")
}

fn empty() -> Body {
    Full::new(Bytes::new())
}

fn header_string(response: &Response<Incoming>, name: http::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Client TLS for `https://` endpoints: the system's trust roots plus the certificates in
/// `ca_file`; TLS 1.2 and 1.3.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ClientError::TlsRoots {
                reason: format!("{}: {e}", path.display()),
            })?;
        for cert in certs {
            roots.add(cert).map_err(|e| ClientError::TlsRoots {
                reason: format!("{}: {e}", path.display()),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(ClientError::TlsRoots {
            reason: "no system trust roots and no CA file (set STRATA_CA_FILE)".to_string(),
        });
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::TlsRoots {
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> ClientConfig {
        ClientConfig::new(endpoint.parse().unwrap(), "AKIDEXAMPLE", "secret")
    }

    #[tokio::test]
    async fn endpoints_must_be_http_or_https_roots() {
        assert!(Client::new(config("http://127.0.0.1:9000")).is_ok());
        assert!(Client::new(config("http://localhost:9000/")).is_ok());
        let mut with_missing_ca = config("https://127.0.0.1:9000");
        with_missing_ca.ca_file = Some("/nonexistent/ca.pem".into());
        let err = Client::new(with_missing_ca).unwrap_err();
        assert!(matches!(err, ClientError::TlsRoots { .. }), "{err}");
        for bad in [
            "ftp://127.0.0.1:9000",
            "/just/a/path",
            "http://127.0.0.1:9000/prefix",
        ] {
            let err = Client::new(config(bad)).unwrap_err();
            assert!(matches!(err, ClientError::InvalidEndpoint { .. }), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn refused_connection_is_a_transport_error_with_its_cause() {
        // Bind then drop a listener so the port is (very likely) closed.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = Client::new(config(&format!("http://127.0.0.1:{port}"))).unwrap();
        let err = client.head_object("b", "k").await.unwrap_err();
        assert!(matches!(err, ClientError::Transport(_)), "{err}");
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
    }

    #[test]
    fn etags_are_escaped_for_the_complete_body() {
        assert_eq!(escape("\"a&b<c>\""), "\"a&amp;b&lt;c&gt;\"");
    }
}
