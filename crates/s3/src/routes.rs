//! [`Routes`], the service's single [`S3Route`] (s3s takes only one). In this order, it
//! - refuses a request whose headers are over [`crate::limits`]' bounds
//!   (`RequestHeaderSectionTooLarge`), before any operation or other route runs;
//! - dispatches the unauthenticated health probes ([`HealthRoute`]), Strata's admin API
//!   ([`AdminRoute`]), MinIO's ([`MinioAdminRoute`]) and STS (`sts.rs`);
//! - hands DeleteObjects and reads with an ignorable Range header to [`Intercept`].
//!
//! s3s asks the route after it has checked the request's signature and before it resolves the
//! operation, so every S3 request passes here first.
//!
//! Invariant: `check_access` and `call` pick the same handler that `is_match` matched with; the
//! choice depends only on the method, URI and headers, which s3s does not change in between.

use http::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

use crate::admin::AdminRoute;
use crate::health::{HealthRoute, is_health_request};
use crate::intercept::{Intercept, Interception, interception};
use crate::minio_admin::MinioAdminRoute;
use crate::sts::StsRoute;

/// The front door's routes behind one [`S3Route`].
pub(crate) struct Routes {
    health: HealthRoute,
    admin: AdminRoute,
    minio_admin: MinioAdminRoute,
    sts: StsRoute,
    intercept: Intercept,
}

/// Which route takes a request.
#[derive(Debug)]
enum Pick {
    /// Refused: the headers are over a limit.
    HeadersTooLarge(s3s::S3Error),
    Health,
    Admin,
    MinioAdmin,
    Sts,
    Intercept(Interception),
}

impl Routes {
    /// All route families.
    pub(crate) fn new(
        health: HealthRoute,
        admin: AdminRoute,
        minio_admin: MinioAdminRoute,
        sts: StsRoute,
        intercept: Intercept,
    ) -> Routes {
        Routes {
            health,
            admin,
            minio_admin,
            sts,
            intercept,
        }
    }

    fn pick(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &mut http::Extensions,
    ) -> Option<Pick> {
        if let Err(e) = crate::limits::check_request_headers(headers) {
            return Some(Pick::HeadersTooLarge(e));
        }
        if is_health_request(method, uri.path()) {
            return Some(Pick::Health);
        }
        if self.admin.is_match(method, uri, headers, extensions) {
            return Some(Pick::Admin);
        }
        if MinioAdminRoute::is_minio_admin_path(uri.path()) {
            return Some(Pick::MinioAdmin);
        }
        if crate::sts::is_sts_request(method, uri, headers) {
            return Some(Pick::Sts);
        }
        interception(method, uri, headers).map(Pick::Intercept)
    }

    fn pick_of(&self, req: &mut S3Request<Body>) -> Option<Pick> {
        self.pick(&req.method, &req.uri, &req.headers, &mut req.extensions)
    }
}

fn with_request_id(mut err: s3s::S3Error, req: &S3Request<Body>) -> s3s::S3Error {
    if let Some(id) = crate::service::request_id(req) {
        err.set_request_id(id);
    }
    err
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &mut http::Extensions,
    ) -> bool {
        self.pick(method, uri, headers, extensions).is_some()
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match self.pick_of(req) {
            Some(Pick::HeadersTooLarge(e)) => Err(with_request_id(e, req)),
            Some(Pick::Health) => self.health.check_access(req).await,
            Some(Pick::Admin) => self.admin.check_access(req).await,
            Some(Pick::MinioAdmin) => self.minio_admin.check_access(req).await,
            Some(Pick::Sts) => self.sts.check_access(req).await,
            Some(Pick::Intercept(what)) => Intercept::check_access(what, req),
            None => Err(s3s::s3_error!(NotImplemented, "Unknown operation")),
        }
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        match self.pick_of(&mut req) {
            Some(Pick::HeadersTooLarge(e)) => Err(with_request_id(e, &req)),
            Some(Pick::Health) => self.health.call(req).await,
            Some(Pick::Admin) => self.admin.call(req).await,
            Some(Pick::MinioAdmin) => self.minio_admin.call(req).await,
            Some(Pick::Sts) => self.sts.call(req).await,
            Some(Pick::Intercept(what)) => self.intercept.call(what, req).await,
            None => Err(s3s::s3_error!(NotImplemented, "Unknown operation")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    #[tokio::test]
    async fn matches_health_and_admin_paths_only() {
        let dir = tempfile::tempdir().unwrap();
        let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
        for d in &drives {
            std::fs::create_dir_all(d).unwrap();
        }
        let layer = Arc::new(strata_object::ObjectLayer::open_local(&drives).await.unwrap());
        let inner =
            s3s::service::S3ServiceBuilder::new(crate::StrataS3::new(Arc::clone(&layer), "us-east-1"));
        let routes = Routes::new(
            HealthRoute::new(Arc::clone(&layer), crate::authz::test_iam("AKIAROOT").await),
            AdminRoute::new(Arc::clone(&layer), crate::authz::test_iam("AKIAROOT").await),
            MinioAdminRoute::new(crate::authz::test_iam("AKIAROOT").await),
            StsRoute::new(crate::authz::test_iam("AKIAROOT").await, Vec::new(), None),
            Intercept::new(inner.build()),
        );
        let matches_with = |method: Method, uri: &str, headers: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value).unwrap(),
                );
            }
            routes.is_match(&method, &uri.parse().unwrap(), &map, &mut http::Extensions::new())
        };
        let matches = |method: Method, uri: &str| matches_with(method, uri, &[]);
        assert!(matches(Method::GET, "/health/live"));
        assert!(matches(Method::HEAD, "/healthz"));
        assert!(matches(Method::POST, "/strata/admin/v1/heal?deep=true"));
        assert!(matches(Method::GET, "/strata/admin/v1/info"));
        assert!(matches(Method::DELETE, "/strata/admin/v9/x"));
        assert!(!matches(Method::GET, "/"));
        assert!(!matches(Method::GET, "/bucket/key"));
        assert!(!matches(Method::PUT, "/healthz"));
        assert!(!matches(Method::GET, "/strata/admin"));

        // Oversized headers are taken (and refused) whatever the path.
        let long = "a".repeat(crate::limits::HEADER_VALUE_BYTES_MAX + 1);
        assert!(matches_with(
            Method::GET,
            "/bucket/key",
            &[("x-amz-meta-a", &long)]
        ));
        // DeleteObjects and ignorable ranges go to the intercept; good ranges do not.
        assert!(matches(Method::POST, "/bucket?delete"));
        assert!(matches(Method::POST, "/bucket?delete="));
        assert!(!matches_with(
            Method::POST,
            "/bucket?delete",
            &[("content-type", "multipart/form-data; boundary=x")]
        ));
        assert!(!matches(Method::POST, "/bucket/key?uploads"));
        assert!(matches_with(
            Method::GET,
            "/bucket/key",
            &[("range", "bytes=5-2")]
        ));
        assert!(matches_with(
            Method::HEAD,
            "/bucket/key",
            &[("range", "items=0-1")]
        ));
        assert!(!matches_with(
            Method::GET,
            "/bucket/key",
            &[("range", "bytes=0-1")]
        ));
        assert!(!matches_with(
            Method::PUT,
            "/bucket/key",
            &[("range", "bytes=5-2")]
        ));

        // Health needs no signature; admin does.
        let request = |uri: &str| S3Request {
            input: Body::empty(),
            method: Method::GET,
            uri: uri.parse().unwrap(),
            headers: HeaderMap::new(),
            extensions: http::Extensions::new(),
            credentials: None,
            region: None,
            service: None,
            trailing_headers: None,
        };
        routes.check_access(&mut request("/health/live")).await.unwrap();
        let mut admin_req = request("/strata/admin/v1/info");
        let err = routes.check_access(&mut admin_req).await.unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::AccessDenied);
        // An anonymous DeleteObjects is refused before its body is read.
        let mut delete_req = request("/bucket?delete");
        delete_req.method = Method::POST;
        let err = routes.check_access(&mut delete_req).await.unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::AccessDenied);
        // Other intercepted requests are marked anonymous; the inner service's access hook
        // decides them like any other (a bucket policy may allow them).
        let mut range_req = request("/bucket/key");
        range_req
            .headers
            .insert(http::header::RANGE, http::HeaderValue::from_static("bytes=5-2"));
        routes.check_access(&mut range_req).await.unwrap();
        assert!(
            range_req
                .extensions
                .get::<crate::intercept::Authenticated>()
                .is_some_and(|mark| mark.access_key().is_none())
        );
        let mut big_req = request("/bucket/key");
        big_req
            .headers
            .insert("x-big", http::HeaderValue::from_str(&long).unwrap());
        let err = routes.check_access(&mut big_req).await.unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::RequestHeaderSectionTooLarge);
    }
}
