//! [`Routes`], the service's single [`S3Route`] (s3s takes only one): it dispatches between the
//! unauthenticated health probes ([`HealthRoute`]) and the root-only admin API
//! ([`AdminRoute`]).
//!
//! Invariant: `check_access` and `call` pick the same handler that `is_match` matched with; the
//! choice depends only on the method and path, and health comes first (the two sets of paths
//! are disjoint anyway).

use http::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

use crate::admin::AdminRoute;
use crate::health::{HealthRoute, is_health_request};

/// Health and admin routes behind one [`S3Route`].
pub(crate) struct Routes {
    health: HealthRoute,
    admin: AdminRoute,
}

impl Routes {
    /// Both route families.
    pub(crate) fn new(health: HealthRoute, admin: AdminRoute) -> Routes {
        Routes { health, admin }
    }

    fn route_of<T>(&self, req: &S3Request<T>) -> &dyn S3Route {
        if is_health_request(&req.method, req.uri.path()) {
            &self.health
        } else {
            &self.admin
        }
    }
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
        self.health.is_match(method, uri, headers, extensions)
            || self.admin.is_match(method, uri, headers, extensions)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        self.route_of(req).check_access(req).await
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        self.route_of(&req).call(req).await
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
        let routes = Routes::new(
            HealthRoute::new(Arc::clone(&layer)),
            AdminRoute::new(Arc::clone(&layer), "AKIAROOT"),
        );
        let matches = |method: Method, uri: &str| {
            routes.is_match(
                &method,
                &uri.parse().unwrap(),
                &HeaderMap::new(),
                &mut http::Extensions::new(),
            )
        };
        assert!(matches(Method::GET, "/health/live"));
        assert!(matches(Method::HEAD, "/healthz"));
        assert!(matches(Method::POST, "/strata/admin/v1/heal?deep=true"));
        assert!(matches(Method::GET, "/strata/admin/v1/info"));
        assert!(matches(Method::DELETE, "/strata/admin/v9/x"));
        assert!(!matches(Method::GET, "/"));
        assert!(!matches(Method::GET, "/bucket/key"));
        assert!(!matches(Method::PUT, "/healthz"));
        assert!(!matches(Method::GET, "/strata/admin"));

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
    }
}
