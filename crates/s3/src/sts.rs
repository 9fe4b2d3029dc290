//! The STS endpoint: `POST /` with a form body (or `GET /?Action=...`), version 2011-06-15,
//! answered in AWS STS's XML, so `boto3.client("sts")`, the AWS CLI (`aws sts assume-role`) and
//! the MinIO SDKs can ask for temporary credentials.
//!
//! - `AssumeRole` (signed by a user, SigV4 with service `sts` or `s3`): temporary credentials
//!   with the user's rights, narrowed by an optional inline `Policy`, for `DurationSeconds`
//!   (900 to 43,200; 3,600 by default). `RoleArn` is accepted and not interpreted (there are no
//!   roles: a session is its user's), as MinIO does.
//! - `AssumeRoleWithWebIdentity` (unsigned; the OpenID Connect token is the proof): a
//!   `RoleArn` that is a provider's role ARN (`arn:minio:iam:::role/<provider>`) picks that
//!   provider, which alone verifies the token; an unknown one is `InvalidParameterValue` (but
//!   an ARN of another form, which the AWS SDKs must send, counts as none while a provider
//!   reads policies from a claim: [`strata_iam::oidc::choose_provider`]); without one the token
//!   is verified by the configured provider whose issuer it names. The session holds the
//!   canned policies its policy claim (or the provider's role) names.
//! - `AssumeRoleWithLDAPIdentity` (unsigned; `LDAPUsername`/`LDAPPassword`, as MinIO's SDKs
//!   send): the directory checks the password ([`strata_iam::ldap`]); the session holds the
//!   policies mapped to the user's DN and its groups' DNs.
//!
//! Errors are STS's `ErrorResponse` documents with its codes (`InvalidParameterValue`,
//! `MalformedPolicyDocument`, `AccessDenied`, `InvalidAction`, `MissingAction`,
//! `InvalidIdentityToken`, `ExpiredTokenException`, `IDPCommunicationError`).
//!
//! Invariant: the answer carrying a secret key and session token is the only place they are
//! written; nothing here logs them.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};
use strata_iam::ldap::LdapConfig;
use strata_iam::oidc::OidcProvider;
use strata_iam::{Iam, IamError};

use crate::form::form_value;
use crate::service::request_id;

/// STS's XML namespace.
const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The only STS API version.
const STS_VERSION: &str = "2011-06-15";
/// Largest form body read.
const BODY_BYTES_MAX: usize = 64 * 1024;

/// Whether a request is an STS call: `POST /` with a URL-encoded form, or any method on `/`
/// with an `Action` query parameter.
pub(crate) fn is_sts_request(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    if uri.path() != "/" {
        return false;
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    (*method == Method::POST && form) || form_value(uri.query().unwrap_or(""), "Action").is_some()
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A refused STS call.
struct StsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl StsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> StsError {
        StsError {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> StsError {
        StsError::new(StatusCode::BAD_REQUEST, "InvalidParameterValue", message)
    }

    fn denied(message: impl Into<String>) -> StsError {
        StsError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }
}

impl From<IamError> for StsError {
    fn from(err: IamError) -> StsError {
        match err {
            IamError::MalformedPolicy(e) => StsError::new(
                StatusCode::BAD_REQUEST,
                "MalformedPolicyDocument",
                format!("The session policy is not valid: {e}"),
            ),
            IamError::InvalidArgument { reason } => StsError::invalid(reason),
            IamError::NotAllowed { reason } => StsError::denied(reason),
            IamError::InvalidIdentityToken { reason } => StsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidIdentityToken",
                format!("The web identity token is not valid: {reason}."),
            ),
            IamError::ExpiredIdentityToken => StsError::new(
                StatusCode::BAD_REQUEST,
                "ExpiredTokenException",
                "The web identity token is expired.",
            ),
            IamError::IdentityProvider { reason } => {
                tracing::warn!(%reason, "identity provider unavailable");
                StsError::new(
                    StatusCode::BAD_REQUEST,
                    "IDPCommunicationError",
                    "The identity provider could not be reached or answered something unusable.",
                )
            }
            other => {
                tracing::error!(error = %other, "STS call failed");
                StsError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalFailure",
                    "The request processing has failed because of an unknown error.",
                )
            }
        }
    }
}

/// The STS route.
#[derive(Debug)]
pub(crate) struct StsRoute {
    iam: Arc<Iam>,
    providers: Vec<Arc<OidcProvider>>,
    ldap: Option<Arc<LdapConfig>>,
}

impl StsRoute {
    pub(crate) fn new(
        iam: Arc<Iam>,
        providers: Vec<Arc<OidcProvider>>,
        ldap: Option<Arc<LdapConfig>>,
    ) -> StsRoute {
        StsRoute { iam, providers, ldap }
    }

    async fn assume_role_with_ldap_identity(&self, form: &str) -> Result<String, StsError> {
        let Some(ldap) = &self.ldap else {
            return Err(StsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                "AssumeRoleWithLDAPIdentity is not available: no LDAP server is configured",
            ));
        };
        let username = form_value(form, "LDAPUsername")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                StsError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingParameter",
                    "Missing LDAPUsername",
                )
            })?;
        let password = form_value(form, "LDAPPassword")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                StsError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingParameter",
                    "Missing LDAPPassword",
                )
            })?;
        let duration = parse_duration(form)?;
        let policy = form_value(form, "Policy").filter(|p| !p.trim().is_empty());
        let identity = ldap.authenticate(&username, &password).await?;
        let creds = self.iam.assume_role_with_ldap(
            &identity,
            &ldap.server_addr,
            duration,
            policy.as_deref(),
            &username,
        )?;
        Ok(format!(
            "{}{}",
            self.assumed_role_user("ldap", &creds, identity.username.clone()),
            credentials_xml(&creds)
        ))
    }

    /// `<AssumedRoleUser>` of a session: `arn:aws:sts::<account>:assumed-role/<role>/<session>`
    /// (the session name, or the access key when the client gave none).
    fn assumed_role_user(
        &self,
        role: &str,
        creds: &strata_iam::sts::SessionCredentials,
        session_name: String,
    ) -> String {
        let session = if session_name.is_empty() {
            creds.access_key.clone()
        } else {
            session_name
        };
        let arn = format!(
            "arn:aws:sts::{}:assumed-role/{role}/{session}",
            self.iam.account_id()
        );
        format!(
            "<AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}:{}</AssumedRoleId></AssumedRoleUser>",
            xml_escape(&arn),
            xml_escape(&creds.access_key),
            xml_escape(&session),
        )
    }

    /// The provider whose issuer is the token's `iss` (read before verification only to pick
    /// the provider; the chosen provider verifies everything).
    async fn provider_for(&self, token: &str) -> Result<&OidcProvider, StsError> {
        let claimed_issuer = token
            .split('.')
            .nth(1)
            .and_then(|p| base64_simd::URL_SAFE_NO_PAD.decode_to_vec(p.as_bytes()).ok())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|c| c["iss"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                StsError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidIdentityToken",
                    "The token is not a JWT.",
                )
            })?;
        if let [only] = self.providers.as_slice() {
            return Ok(only);
        }
        for provider in &self.providers {
            if provider.issuer().await.map_err(StsError::from)? == claimed_issuer {
                return Ok(provider);
            }
        }
        Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "No identity provider of this deployment issued the token.",
        ))
    }

    async fn assume_role_with_web_identity(&self, form: &str) -> Result<String, StsError> {
        if self.providers.is_empty() {
            return Err(StsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                "AssumeRoleWithWebIdentity is not available: no OpenID Connect provider is configured",
            ));
        }
        let token = form_value(form, "WebIdentityToken")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                StsError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingParameter",
                    "Missing WebIdentityToken",
                )
            })?;
        let role_arn = form_value(form, "RoleArn");
        let provider = match strata_iam::oidc::choose_provider(&self.providers, role_arn.as_deref())? {
            Some(chosen) => chosen.as_ref(),
            None => self.provider_for(&token).await?,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let identity = provider.verify(&token, now).await?;
        let duration = parse_duration(form)?;
        let session_name = session_name(form)?;
        let policy = form_value(form, "Policy").filter(|p| !p.trim().is_empty());
        let creds =
            self.iam
                .assume_role_with_web_identity(&identity, duration, policy.as_deref(), &session_name)?;
        Ok(format!(
            "<SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken><Audience>{}</Audience>{}{}<Provider>{}</Provider>",
            xml_escape(&identity.subject),
            xml_escape(&identity.audience),
            self.assumed_role_user(&identity.provider, &creds, session_name),
            credentials_xml(&creds),
            xml_escape(&identity.issuer),
        ))
    }

    async fn form(req: S3Request<Body>) -> Result<String, StsError> {
        let query = req.uri.query().unwrap_or("").to_owned();
        let limited = http_body_util::Limited::new(req.input, BODY_BYTES_MAX);
        let body = http_body_util::BodyExt::collect(limited)
            .await
            .map_err(|_| StsError::invalid("The request body could not be read (at most 64 KiB)."))?
            .to_bytes();
        let body =
            std::str::from_utf8(&body).map_err(|_| StsError::invalid("The request body is not UTF-8."))?;
        // Query parameters and the form body together, as STS reads them.
        Ok(match (query.is_empty(), body.is_empty()) {
            (true, _) => body.to_owned(),
            (false, true) => query,
            (false, false) => format!("{query}&{body}"),
        })
    }

    async fn answer(&self, req: S3Request<Body>) -> Result<(&'static str, String), StsError> {
        let access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        if let Some(caller) = access_key.as_deref().and_then(|k| self.iam.caller(k)) {
            crate::authz::note_principal(&req.extensions, &caller);
        }
        let form = StsRoute::form(req).await?;
        let action = form_value(&form, "Action")
            .ok_or_else(|| StsError::new(StatusCode::BAD_REQUEST, "MissingAction", "Missing Action"))?;
        match form_value(&form, "Version") {
            Some(v) if v == STS_VERSION => {}
            Some(v) => {
                return Err(StsError::invalid(format!(
                    "Unsupported Version {v}; use {STS_VERSION}"
                )));
            }
            None => {
                return Err(StsError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingParameter",
                    "Missing Version",
                ));
            }
        }
        match action.as_str() {
            "AssumeRole" => Ok(("AssumeRole", self.assume_role(access_key.as_deref(), &form)?)),
            "AssumeRoleWithWebIdentity" => Ok((
                "AssumeRoleWithWebIdentity",
                self.assume_role_with_web_identity(&form).await?,
            )),
            "AssumeRoleWithLDAPIdentity" => Ok((
                "AssumeRoleWithLDAPIdentity",
                self.assume_role_with_ldap_identity(&form).await?,
            )),
            "AssumeRoleWithClientGrants" => Err(StsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                "AssumeRoleWithClientGrants is not supported: use AssumeRoleWithWebIdentity",
            )),
            other => Err(StsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("Could not find operation {other} for version {STS_VERSION}"),
            )),
        }
    }

    fn assume_role(&self, access_key: Option<&str>, form: &str) -> Result<String, StsError> {
        let access_key =
            access_key.ok_or_else(|| StsError::denied("AssumeRole must be signed by a user."))?;
        let caller = self
            .iam
            .caller(access_key)
            .ok_or_else(|| StsError::denied("Only users may assume a role."))?;
        let duration = parse_duration(form)?;
        let session_name = session_name(form)?;
        let policy = form_value(form, "Policy").filter(|p| !p.trim().is_empty());
        let creds = self
            .iam
            .assume_role(&caller, duration, policy.as_deref(), &session_name)?;
        Ok(format!(
            "{}{}",
            credentials_xml(&creds),
            self.assumed_role_user(&caller.user, &creds, session_name)
        ))
    }
}

/// `DurationSeconds`, if given.
fn parse_duration(form: &str) -> Result<Option<u64>, StsError> {
    form_value(form, "DurationSeconds")
        .map(|d| {
            d.parse::<u64>()
                .map_err(|_| StsError::invalid("DurationSeconds must be a whole number of seconds"))
        })
        .transpose()
}

/// `RoleSessionName`, checked as STS does (empty when not given).
fn session_name(form: &str) -> Result<String, StsError> {
    let name = form_value(form, "RoleSessionName").unwrap_or_default();
    if !name.is_empty()
        && (!(2..=64).contains(&name.len())
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)))
    {
        return Err(StsError::invalid(
            "RoleSessionName must be 2 to 64 characters of letters, digits and +=,.@_-",
        ));
    }
    Ok(name)
}

/// `<Credentials>` of a session.
fn credentials_xml(creds: &strata_iam::sts::SessionCredentials) -> String {
    let expiration = time::OffsetDateTime::from_unix_timestamp(creds.expiry_unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
        xml_escape(&creds.access_key),
        xml_escape(&creds.secret_key),
        xml_escape(&creds.session_token),
        xml_escape(&expiration),
    )
}

fn xml_response(status: StatusCode, body: String) -> S3Response<Body> {
    let mut resp = S3Response::with_status(Body::from(body), status);
    resp.headers
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    resp
}

#[async_trait::async_trait]
impl S3Route for StsRoute {
    fn is_match(&self, method: &Method, uri: &Uri, headers: &HeaderMap, _ext: &mut http::Extensions) -> bool {
        is_sts_request(method, uri, headers)
    }

    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        // Each action decides: AssumeRole needs a user's signature, the identity-provider
        // actions carry their own proof of identity.
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let id = request_id(&req).unwrap_or("-").to_owned();
        let resp = match self.answer(req).await {
            Ok((action, result)) => xml_response(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{STS_NAMESPACE}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
                    xml_escape(&id)
                ),
            ),
            Err(err) => xml_response(
                err.status,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{STS_NAMESPACE}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                    err.code,
                    xml_escape(&err.message),
                    xml_escape(&id)
                ),
            ),
        };
        Ok(resp)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sts_requests_are_recognised() {
        let mut form = HeaderMap::new();
        form.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let root: Uri = "/".parse().unwrap();
        assert!(is_sts_request(&Method::POST, &root, &form));
        assert!(!is_sts_request(&Method::POST, &root, &HeaderMap::new()));
        let bucket: Uri = "/bucket".parse().unwrap();
        assert!(!is_sts_request(&Method::POST, &bucket, &form));
        let query: Uri = "/?Action=AssumeRole&Version=2011-06-15".parse().unwrap();
        assert!(is_sts_request(&Method::GET, &query, &HeaderMap::new()));
        let list: Uri = "/?x-id=ListBuckets".parse().unwrap();
        assert!(!is_sts_request(&Method::GET, &list, &HeaderMap::new()));
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(xml_escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
