//! Unauthenticated health routes, answered before any S3 operation is resolved:
//! `GET|HEAD /health/live` (the process serves HTTP), `GET|HEAD /health/ready` or `/healthz`
//! (this node can serve: every erasure set has write quorum of drives it reaches, and it has
//! read the deployment's users and policies), and
//! `GET|HEAD /health/cluster` (the whole deployment has write quorum; with
//! `?maintenance=true`, whether it would still have it without this node's drives — "is it
//! safe to take this node down?").
//!
//! Invariant: these routes reveal nothing but the status code and a one-word body.

use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};
use strata_object::ObjectLayer;

/// Path of the liveness probe.
pub const LIVE_PATH: &str = "/health/live";
/// Path of the readiness probe.
pub const READY_PATH: &str = "/health/ready";
/// Kubernetes-style alias of the readiness probe.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Path of the deployment-wide probe.
pub const CLUSTER_PATH: &str = "/health/cluster";

/// The health routes.
pub struct HealthRoute {
    layer: Arc<ObjectLayer>,
    iam: Arc<strata_iam::Iam>,
}

impl HealthRoute {
    /// Health routes over `layer`; readiness also waits for `iam`'s records.
    pub fn new(layer: Arc<ObjectLayer>, iam: Arc<strata_iam::Iam>) -> HealthRoute {
        HealthRoute { layer, iam }
    }
}

pub(crate) fn is_health_request(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && matches!(path, LIVE_PATH | READY_PATH | HEALTHZ_PATH | CLUSTER_PATH)
}

#[async_trait::async_trait]
impl S3Route for HealthRoute {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        _headers: &HeaderMap,
        _extensions: &mut http::Extensions,
    ) -> bool {
        is_health_request(method, uri.path())
    }

    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        // Probes come from load balancers and kubelets, which do not sign requests.
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let maintenance = req
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair == "maintenance=true"));
        let ready = match req.uri.path() {
            LIVE_PATH => true,
            CLUSTER_PATH if maintenance => self.layer.health_without_this_node().await.write_quorum,
            CLUSTER_PATH => self.layer.health().await.write_quorum,
            _ => self.iam.is_loaded() && self.layer.health().await.write_quorum,
        };
        let (status, text) = if ready {
            (StatusCode::OK, "ok\n")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n")
        };
        let mut resp = S3Response::with_status(Body::from(text.to_owned()), status);
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        resp.headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_health_paths() {
        assert!(is_health_request(&Method::GET, "/health/live"));
        assert!(is_health_request(&Method::HEAD, "/health/ready"));
        assert!(is_health_request(&Method::GET, "/healthz"));
        assert!(is_health_request(&Method::GET, "/health/cluster"));
        assert!(!is_health_request(&Method::PUT, "/healthz"));
        assert!(!is_health_request(&Method::GET, "/health/other"));
        assert!(!is_health_request(&Method::GET, "/healthz/key"));
    }
}
