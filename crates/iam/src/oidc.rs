//! OpenID Connect identity providers for STS `AssumeRoleWithWebIdentity`.
//!
//! A provider is configured by its discovery URL (`.../.well-known/openid-configuration`), the
//! audience Strata's tokens must be issued for (the client id), and the claim that names the
//! canned policies a session gets (`policy` by default; a string of comma-separated names or
//! an array), or a fixed list of policies for every token of the provider (its "role").
//!
//! A provider with a role has a role ARN, `arn:minio:iam:::role/<provider name>` (MinIO's
//! form, [`ROLE_ARN_PREFIX`]). [`choose_provider`] reads an STS request's `RoleArn`: a role ARN
//! picks its provider, which alone then verifies the token; an ARN of that form naming no
//! provider is refused; any other ARN (the AWS SDKs and CLI insist on sending one) counts as
//! none when a provider takes its policies from a claim, and is refused otherwise.
//!
//! Discovery and the key set (JWKS) are fetched lazily through [`Fetch`] (the server supplies
//! HTTP), cached, and fetched again when a token names a key id the cache does not know (key
//! rotation), at most once per [`JWKS_REFRESH_MIN`]. A token is accepted when its signature
//! verifies with the named key (RS256/384/512, PS256/384/512, ES256/384; never `none` or
//! HMAC), `iss` is the provider's issuer, `aud` contains the client id (or `azp` is it), and
//! `exp`/`nbf` hold within [`CLOCK_LEEWAY_SECS`].
//!
//! Invariant: tokens are never logged; errors say which check failed, not the token.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use crate::error::IamError;

/// Shortest time between two key-set fetches caused by unknown key ids.
pub const JWKS_REFRESH_MIN: Duration = Duration::from_secs(2);
/// Clock skew tolerated on `exp` and `nbf`.
pub const CLOCK_LEEWAY_SECS: i64 = 5;
/// Longest token accepted, in bytes.
const TOKEN_BYTES_MAX: usize = 16 * 1024;
/// What a provider's role ARN starts with; the provider's name follows.
pub const ROLE_ARN_PREFIX: &str = "arn:minio:iam:::role/";

/// Fetches a public document over HTTP(S) (the discovery document, the key set).
#[async_trait::async_trait]
pub trait Fetch: Send + Sync {
    /// The body at `url`, or why it could not be had.
    async fn get(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// How one provider is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcConfig {
    /// A name for logs and session ARNs.
    pub name: String,
    /// The discovery document's URL.
    pub config_url: String,
    /// The audience tokens must carry (the client id registered at the provider).
    pub client_id: String,
    /// The claim naming the session's canned policies.
    pub claim_name: String,
    /// Policies for every token of this provider instead of a claim (a "role").
    pub role_policies: Option<Vec<String>>,
}

impl OidcConfig {
    /// The provider's role ARN (`arn:minio:iam:::role/<name>`), when it has a role.
    pub fn role_arn(&self) -> Option<String> {
        self.role_policies
            .as_ref()
            .map(|_| format!("{ROLE_ARN_PREFIX}{}", self.name))
    }
}

/// The provider an STS request's `RoleArn` names: `Ok(Some(provider))` for a provider's role
/// ARN, `Ok(None)` when the request names none (no `RoleArn`, or one outside
/// [`ROLE_ARN_PREFIX`]'s namespace while some provider takes its policies from a claim: the
/// AWS SDKs and CLI send a `RoleArn` whatever the server), and `InvalidArgument` for a role ARN
/// that names no provider's role, or any other ARN when every provider has a role.
pub fn choose_provider<'a>(
    providers: &'a [Arc<OidcProvider>],
    role_arn: Option<&str>,
) -> Result<Option<&'a Arc<OidcProvider>>, IamError> {
    let Some(role_arn) = role_arn.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if let Some(provider) = providers
        .iter()
        .find(|p| p.config.role_arn().as_deref() == Some(role_arn))
    {
        return Ok(Some(provider));
    }
    let claim_based = providers.iter().any(|p| p.config.role_policies.is_none());
    if claim_based && !role_arn.starts_with(ROLE_ARN_PREFIX) {
        return Ok(None);
    }
    Err(IamError::InvalidArgument {
        reason: format!("RoleArn {role_arn} is not the role of an identity provider of this deployment"),
    })
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebIdentity {
    /// The provider's name.
    pub provider: String,
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// The audience that matched.
    pub audience: String,
    /// The canned policies the session gets.
    pub policies: Vec<String>,
    /// `exp`.
    pub expiry_unix: i64,
}

/// A verification key from the key set.
enum Key {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { curve: String, point: Vec<u8> },
}

#[derive(Default)]
struct Cache {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    keys: HashMap<String, Arc<Key>>,
    fetched: Option<Instant>,
}

/// One OpenID Connect provider.
pub struct OidcProvider {
    config: OidcConfig,
    fetch: Arc<dyn Fetch>,
    cache: tokio::sync::Mutex<Cache>,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

fn invalid(reason: impl Into<String>) -> IamError {
    IamError::InvalidIdentityToken {
        reason: reason.into(),
    }
}

fn b64(part: &str) -> Result<Vec<u8>, IamError> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(part.trim_end_matches('=').as_bytes())
        .map_err(|_| invalid("the token is not base64url"))
}

fn parse_keys(jwks: &[u8]) -> Result<HashMap<String, Arc<Key>>, IamError> {
    let doc: Value = serde_json::from_slice(jwks).map_err(|_| IamError::IdentityProvider {
        reason: "the key set is not JSON".to_string(),
    })?;
    let mut out = HashMap::new();
    for (i, k) in doc["keys"].as_array().into_iter().flatten().enumerate() {
        if k["use"].as_str().is_some_and(|u| u != "sig") {
            continue;
        }
        let kid = k["kid"].as_str().map_or_else(|| format!("#{i}"), str::to_string);
        let key = match k["kty"].as_str() {
            Some("RSA") => match (k["n"].as_str(), k["e"].as_str()) {
                (Some(n), Some(e)) => Key::Rsa {
                    n: b64(n)?,
                    e: b64(e)?,
                },
                _ => continue,
            },
            Some("EC") => match (k["crv"].as_str(), k["x"].as_str(), k["y"].as_str()) {
                (Some(crv), Some(x), Some(y)) => {
                    let mut point = vec![0x04];
                    point.extend(b64(x)?);
                    point.extend(b64(y)?);
                    Key::Ec {
                        curve: crv.to_string(),
                        point,
                    }
                }
                _ => continue,
            },
            _ => continue,
        };
        out.insert(kid, Arc::new(key));
    }
    Ok(out)
}

fn verify_signature(alg: &str, key: &Key, message: &[u8], sig: &[u8]) -> Result<(), IamError> {
    let bad = || invalid("the token's signature does not verify");
    match (alg, key) {
        ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512", Key::Rsa { n, e }) => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .map_err(|_| bad())
        }
        ("ES256", Key::Ec { curve, point }) if curve == "P-256" => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .map_err(|_| bad())
        }
        ("ES384", Key::Ec { curve, point }) if curve == "P-384" => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .map_err(|_| bad())
        }
        _ => Err(invalid(format!(
            "the token's algorithm {alg} is not accepted for its key"
        ))),
    }
}

fn names_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

impl OidcProvider {
    /// A provider; nothing is fetched until the first token.
    pub fn new(config: OidcConfig, fetch: Arc<dyn Fetch>) -> OidcProvider {
        OidcProvider {
            config,
            fetch,
            cache: tokio::sync::Mutex::new(Cache::default()),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn fetch_json(&self, url: &str) -> Result<Vec<u8>, IamError> {
        self.fetch
            .get(url)
            .await
            .map_err(|reason| IamError::IdentityProvider {
                reason: format!("{}: {reason}", self.config.name),
            })
    }

    /// Fetches the discovery document (once) and the key set.
    async fn refresh(&self, cache: &mut Cache) -> Result<(), IamError> {
        if cache.jwks_uri.is_none() {
            let doc = self.fetch_json(&self.config.config_url).await?;
            let doc: Value = serde_json::from_slice(&doc).map_err(|_| IamError::IdentityProvider {
                reason: format!("{}: the discovery document is not JSON", self.config.name),
            })?;
            let (Some(issuer), Some(jwks_uri)) = (doc["issuer"].as_str(), doc["jwks_uri"].as_str()) else {
                return Err(IamError::IdentityProvider {
                    reason: format!(
                        "{}: the discovery document lacks issuer or jwks_uri",
                        self.config.name
                    ),
                });
            };
            cache.issuer = Some(issuer.to_string());
            cache.jwks_uri = Some(jwks_uri.to_string());
        }
        let uri = cache.jwks_uri.clone().unwrap_or_default();
        let jwks = self.fetch_json(&uri).await?;
        cache.keys = parse_keys(&jwks)?;
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    /// The issuer (discovering it if needed).
    pub async fn issuer(&self) -> Result<String, IamError> {
        let mut cache = self.cache.lock().await;
        if cache.issuer.is_none() {
            self.refresh(&mut cache).await?;
        }
        Ok(cache.issuer.clone().unwrap_or_default())
    }

    /// Verifies `token` at `now_unix` and says who it names and which policies apply.
    pub async fn verify(&self, token: &str, now_unix: i64) -> Result<WebIdentity, IamError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(invalid("the token is too long"));
        }
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("the token is not a signed JWT"));
        };
        let header: Header =
            serde_json::from_slice(&b64(h)?).map_err(|_| invalid("the token's header is not JSON"))?;
        let claims: Value =
            serde_json::from_slice(&b64(p)?).map_err(|_| invalid("the token's claims are not JSON"))?;
        let sig = b64(s)?;
        let (issuer, key) = {
            let mut cache = self.cache.lock().await;
            if cache.fetched.is_none() {
                self.refresh(&mut cache).await?;
            }
            let find = |cache: &Cache| match &header.kid {
                Some(kid) => cache.keys.get(kid).cloned(),
                None if cache.keys.len() == 1 => cache.keys.values().next().cloned(),
                None => None,
            };
            let mut key = find(&cache);
            let stale = cache.fetched.is_none_or(|t| t.elapsed() >= JWKS_REFRESH_MIN);
            if key.is_none() && stale {
                // A key id we do not know: the provider may have rotated its keys.
                self.refresh(&mut cache).await?;
                key = find(&cache);
            }
            let key = key.ok_or_else(|| invalid("the token's key id is not in the provider's key set"))?;
            (cache.issuer.clone().unwrap_or_default(), key)
        };
        let signed_len = h.len() + 1 + p.len();
        let message = token.trim().get(..signed_len).unwrap_or_default();
        verify_signature(&header.alg, &key, message.as_bytes(), &sig)?;
        if claims["iss"].as_str() != Some(issuer.as_str()) {
            return Err(invalid("the token was issued by another issuer"));
        }
        let audiences = names_of(&claims["aud"]);
        let audience_ok = audiences.contains(&self.config.client_id)
            || claims["azp"].as_str() == Some(self.config.client_id.as_str());
        if !audience_ok {
            return Err(invalid("the token is not for this audience"));
        }
        let exp = claims["exp"]
            .as_i64()
            .ok_or_else(|| invalid("the token has no expiry"))?;
        if exp + CLOCK_LEEWAY_SECS <= now_unix {
            return Err(IamError::ExpiredIdentityToken);
        }
        if claims["nbf"]
            .as_i64()
            .is_some_and(|nbf| nbf - CLOCK_LEEWAY_SECS > now_unix)
        {
            return Err(invalid("the token is not valid yet"));
        }
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("the token has no subject"))?
            .to_string();
        let policies = match &self.config.role_policies {
            Some(policies) => policies.clone(),
            None => names_of(&claims[self.config.claim_name.as_str()]),
        };
        Ok(WebIdentity {
            provider: self.config.name.clone(),
            issuer,
            subject,
            audience: self.config.client_id.clone(),
            policies,
            expiry_unix: exp,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const ISSUER: &str = "https://idp.test";
    const AUDIENCE: &str = "strata";
    const NOW: i64 = 1_800_000_000;

    /// Discovery and key set served from memory; counts key-set fetches.
    struct Docs {
        jwks: std::sync::Mutex<Value>,
        jwks_fetches: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Fetch for Docs {
        async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
            match url {
                "https://idp.test/.well-known/openid-configuration" => {
                    Ok(json!({"issuer": ISSUER, "jwks_uri": "https://idp.test/jwks"})
                        .to_string()
                        .into_bytes())
                }
                "https://idp.test/jwks" => {
                    self.jwks_fetches
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(self.jwks.lock().unwrap().to_string().into_bytes())
                }
                _ => Err("not found".into()),
            }
        }
    }

    struct Signer {
        pair: EcdsaKeyPair,
        kid: String,
    }

    impl Signer {
        fn new(kid: &str) -> Signer {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            Signer {
                pair,
                kid: kid.into(),
            }
        }

        fn jwk(&self) -> Value {
            let point = self.pair.public_key().as_ref();
            let b = |bytes: &[u8]| base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes);
            json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                   "x": b(&point[1..33]), "y": b(&point[33..65])})
        }

        fn token(&self, claims: &Value) -> String {
            let b = |bytes: &[u8]| base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes);
            let header = b(json!({"alg": "ES256", "kid": self.kid, "typ": "at+jwt"})
                .to_string()
                .as_bytes());
            let payload = b(claims.to_string().as_bytes());
            let input = format!("{header}.{payload}");
            let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", b(sig.as_ref()))
        }
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "pod-a", "exp": NOW + 300, "iat": NOW, "policy": "readonly,diagnostics"})
    }

    fn provider(signer: &Signer, role: Option<Vec<String>>) -> (OidcProvider, Arc<Docs>) {
        let docs = Arc::new(Docs {
            jwks: std::sync::Mutex::new(json!({"keys": [signer.jwk()]})),
            jwks_fetches: std::sync::atomic::AtomicUsize::new(0),
        });
        let config = OidcConfig {
            name: "test".into(),
            config_url: "https://idp.test/.well-known/openid-configuration".into(),
            client_id: AUDIENCE.into(),
            claim_name: "policy".into(),
            role_policies: role,
        };
        (
            OidcProvider::new(config, Arc::clone(&docs) as Arc<dyn Fetch>),
            docs,
        )
    }

    #[tokio::test]
    async fn a_valid_token_names_its_subject_and_policies() {
        let signer = Signer::new("k1");
        let (p, _) = provider(&signer, None);
        let id = p.verify(&signer.token(&claims()), NOW).await.unwrap();
        assert_eq!(id.subject, "pod-a");
        assert_eq!(id.issuer, ISSUER);
        assert_eq!(
            id.policies,
            vec!["readonly".to_string(), "diagnostics".to_string()]
        );
        let (role, _) = provider(&signer, Some(vec!["readwrite".into()]));
        let id = role.verify(&signer.token(&claims()), NOW).await.unwrap();
        assert_eq!(
            id.policies,
            vec!["readwrite".to_string()],
            "a role overrides the claim"
        );
        let mut array = claims();
        array["policy"] = json!(["a", "b"]);
        array["aud"] = json!(["other", AUDIENCE]);
        assert_eq!(
            p.verify(&signer.token(&array), NOW).await.unwrap().policies,
            vec!["a", "b"]
        );
    }

    #[tokio::test]
    async fn every_check_refuses_what_it_must() {
        let signer = Signer::new("k1");
        let (p, _) = provider(&signer, None);
        let refused = |mut edit: Box<dyn FnMut(&mut Value)>| {
            let mut c = claims();
            edit(&mut c);
            signer.token(&c)
        };
        let cases: Vec<(&str, String)> = vec![
            (
                "other issuer",
                refused(Box::new(|c| c["iss"] = json!("https://evil.test"))),
            ),
            (
                "other audience",
                refused(Box::new(|c| c["aud"] = json!("someone-else"))),
            ),
            ("no subject", refused(Box::new(|c| c["sub"] = json!("")))),
            (
                "no expiry",
                refused(Box::new(|c| {
                    c.as_object_mut().unwrap().remove("exp");
                })),
            ),
            ("not yet valid", refused(Box::new(|c| c["nbf"] = json!(NOW + 60)))),
        ];
        for (what, token) in cases {
            assert!(
                matches!(
                    p.verify(&token, NOW).await,
                    Err(IamError::InvalidIdentityToken { .. })
                ),
                "{what}"
            );
        }
        let expired = refused(Box::new(|c| c["exp"] = json!(NOW - CLOCK_LEEWAY_SECS)));
        assert_eq!(
            p.verify(&expired, NOW).await.unwrap_err(),
            IamError::ExpiredIdentityToken
        );
        let within_leeway = refused(Box::new(|c| c["exp"] = json!(NOW - 1)));
        assert!(p.verify(&within_leeway, NOW).await.is_ok());
        // A signature by another key, a changed payload, `none`, and garbage.
        let stranger = Signer::new("k1");
        assert!(p.verify(&stranger.token(&claims()), NOW).await.is_err());
        let good = signer.token(&claims());
        let (h, rest) = good.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let mut other = claims();
        other["sub"] = json!("admin");
        let forged_payload = base64_simd::URL_SAFE_NO_PAD.encode_to_string(other.to_string().as_bytes());
        assert!(p.verify(&format!("{h}.{forged_payload}.{s}"), NOW).await.is_err());
        let none_header = base64_simd::URL_SAFE_NO_PAD.encode_to_string(br#"{"alg":"none","kid":"k1"}"#);
        assert!(
            p.verify(&format!("{none_header}.{forged_payload}."), NOW)
                .await
                .is_err()
        );
        assert!(p.verify("garbage", NOW).await.is_err());
    }

    fn named(name: &str, role: Option<Vec<String>>) -> Arc<OidcProvider> {
        let signer = Signer::new("k1");
        let (p, _) = provider(&signer, role);
        let mut config = p.config().clone();
        config.name = name.into();
        Arc::new(OidcProvider::new(config, p.fetch))
    }

    #[test]
    fn role_arns_choose_their_provider() {
        let claim = named("openid", None);
        let app = named("app", Some(vec!["readwrite".into()]));
        assert_eq!(claim.config().role_arn(), None);
        assert_eq!(
            app.config().role_arn().as_deref(),
            Some("arn:minio:iam:::role/app")
        );
        let both = [Arc::clone(&claim), Arc::clone(&app)];
        let chosen = |providers: &[Arc<OidcProvider>], arn: Option<&str>| {
            choose_provider(providers, arn).map(|p| p.map(|p| p.config().name.clone()))
        };
        assert_eq!(
            chosen(&both, Some("arn:minio:iam:::role/app")),
            Ok(Some("app".into()))
        );
        assert_eq!(chosen(&both, None), Ok(None));
        assert_eq!(chosen(&both, Some("")), Ok(None));
        // An AWS-style ARN (the SDKs require one) counts as none beside a claim-based provider...
        assert_eq!(
            chosen(&both, Some("arn:aws:iam::123456789012:role/web")),
            Ok(None)
        );
        // ...but a role ARN of this form that names no provider, or the claim provider, does not.
        for unknown in [
            "arn:minio:iam:::role/nope",
            "arn:minio:iam:::role/openid",
            "arn:minio:iam:::role/APP",
        ] {
            assert!(
                matches!(
                    chosen(&both, Some(unknown)),
                    Err(IamError::InvalidArgument { .. })
                ),
                "{unknown}"
            );
        }
        // With roles only, every unknown ARN is refused.
        let roles_only = [Arc::clone(&app)];
        assert!(matches!(
            chosen(&roles_only, Some("arn:aws:iam::123456789012:role/web")),
            Err(IamError::InvalidArgument { .. })
        ));
        assert_eq!(chosen(&roles_only, None), Ok(None));
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_once_and_an_unknown_one_refused() {
        let old = Signer::new("k1");
        let (p, docs) = provider(&old, None);
        p.verify(&old.token(&claims()), NOW).await.unwrap();
        assert_eq!(docs.jwks_fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        let new = Signer::new("k2");
        *docs.jwks.lock().unwrap() = json!({"keys": [new.jwk()]});
        // Within the refresh interval an unknown key id is refused without a fetch...
        assert!(p.verify(&new.token(&claims()), NOW).await.is_err());
        assert_eq!(docs.jwks_fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        // ...after it, the key set is fetched again and the new key verifies.
        tokio::time::sleep(JWKS_REFRESH_MIN).await;
        p.verify(&new.token(&claims()), NOW).await.unwrap();
        assert_eq!(docs.jwks_fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(
            p.verify(&old.token(&claims()), NOW).await.is_err(),
            "the old key is gone"
        );
    }
}
