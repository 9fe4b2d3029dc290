//! LDAP identities for STS `AssumeRoleWithLDAPIdentity`, as MinIO's LDAP integration works:
//!
//! 1. bind as the lookup account and search the user's DN (`user_search_filter` with `%s`
//!    replaced by the escaped user name; exactly one entry must match);
//! 2. bind as that DN with the given password (an empty password is refused before anything
//!    is sent: LDAP would take it for an anonymous bind and "succeed");
//! 3. bind as the lookup account again and search the user's groups (`group_search_filter`
//!    with `%d` replaced by the escaped user DN and `%s` by the user name).
//!
//! The session's policies are those mapped to the user's DN and to its groups' DNs through the
//! admin API (`idp/ldap/policy/attach`). Connections use `ldaps://` or StartTLS unless the
//! operator chose plain LDAP for a test setup; every operation has a deadline.
//!
//! Invariant: passwords are never logged or put into errors; a wrong password and an unknown
//! user are the same error to the client.

use std::fmt;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use crate::error::IamError;

/// Deadline of connecting and of each LDAP operation.
const LDAP_TIMEOUT: Duration = Duration::from_secs(10);

/// How Strata talks to the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapTransport {
    /// `ldaps://`.
    Tls,
    /// `ldap://` upgraded with StartTLS.
    StartTls,
    /// Plain `ldap://` (test setups only: passwords cross the network in clear).
    Plain,
}

/// The directory and how users and groups are found in it.
#[derive(Clone)]
pub struct LdapConfig {
    /// `host:port`.
    pub server_addr: String,
    /// Transport security.
    pub transport: LdapTransport,
    /// Accept any server certificate (test setups only).
    pub tls_skip_verify: bool,
    /// The lookup account's DN.
    pub lookup_bind_dn: String,
    /// The lookup account's password (never logged).
    pub lookup_bind_password: String,
    /// Where users are searched.
    pub user_search_base: String,
    /// The user search filter, `%s` standing for the user name (`(uid=%s)`).
    pub user_search_filter: String,
    /// Where groups are searched (none: group policies are not used).
    pub group_search_base: Option<String>,
    /// The group search filter, `%d` for the user's DN and `%s` for the user name
    /// (`(&(objectclass=groupOfNames)(member=%d))`).
    pub group_search_filter: Option<String>,
}

impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("server_addr", &self.server_addr)
            .field("transport", &self.transport)
            .field("lookup_bind_dn", &self.lookup_bind_dn)
            .field("lookup_bind_password", &"<redacted>")
            .field("user_search_base", &self.user_search_base)
            .field("user_search_filter", &self.user_search_filter)
            .field("group_search_base", &self.group_search_base)
            .field("group_search_filter", &self.group_search_filter)
            .finish()
    }
}

/// A user the directory vouched for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapIdentity {
    /// The name the user logged in with.
    pub username: String,
    /// The user's DN.
    pub user_dn: String,
    /// The DNs of the user's groups.
    pub group_dns: Vec<String>,
}

fn unavailable(reason: impl fmt::Display) -> IamError {
    IamError::IdentityProvider {
        reason: format!("LDAP: {reason}"),
    }
}

fn refused() -> IamError {
    IamError::NotAllowed {
        reason: "LDAP authentication failed: unknown user or wrong password".to_string(),
    }
}

impl LdapConfig {
    fn url(&self) -> String {
        match self.transport {
            LdapTransport::Tls => format!("ldaps://{}", self.server_addr),
            LdapTransport::StartTls | LdapTransport::Plain => format!("ldap://{}", self.server_addr),
        }
    }

    async fn connect(&self) -> Result<ldap3::Ldap, IamError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(LDAP_TIMEOUT)
            .set_starttls(self.transport == LdapTransport::StartTls)
            .set_no_tls_verify(self.tls_skip_verify);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url())
            .await
            .map_err(unavailable)?;
        ldap3::drive!(conn);
        ldap.with_timeout(LDAP_TIMEOUT);
        Ok(ldap)
    }

    /// Checks `password` for `username` and finds the user's groups.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<LdapIdentity, IamError> {
        if username.is_empty() || password.is_empty() {
            return Err(refused());
        }
        let mut ldap = self.connect().await?;
        let result = self.authenticate_on(&mut ldap, username, password).await;
        let _ = ldap.unbind().await;
        result
    }

    async fn lookup_bind(&self, ldap: &mut ldap3::Ldap) -> Result<(), IamError> {
        ldap.simple_bind(&self.lookup_bind_dn, &self.lookup_bind_password)
            .await
            .map_err(unavailable)?
            .success()
            .map_err(|_| unavailable("the lookup account's bind was refused"))?;
        ldap.with_timeout(LDAP_TIMEOUT);
        Ok(())
    }

    async fn search_dns(
        &self,
        ldap: &mut ldap3::Ldap,
        base: &str,
        filter: &str,
    ) -> Result<Vec<String>, IamError> {
        let (entries, _) = ldap
            .search(base, Scope::Subtree, filter, vec!["1.1"])
            .await
            .map_err(unavailable)?
            .success()
            .map_err(unavailable)?;
        ldap.with_timeout(LDAP_TIMEOUT);
        Ok(entries
            .into_iter()
            .map(|e| SearchEntry::construct(e).dn)
            .collect())
    }

    async fn authenticate_on(
        &self,
        ldap: &mut ldap3::Ldap,
        username: &str,
        password: &str,
    ) -> Result<LdapIdentity, IamError> {
        self.lookup_bind(ldap).await?;
        let filter = self.user_search_filter.replace("%s", &ldap_escape(username));
        let users = self.search_dns(ldap, &self.user_search_base, &filter).await?;
        let [user_dn] = users.as_slice() else {
            // None, or an ambiguous filter: the same answer as a wrong password.
            return Err(refused());
        };
        let bound = ldap.simple_bind(user_dn, password).await.map_err(unavailable)?;
        ldap.with_timeout(LDAP_TIMEOUT);
        if bound.success().is_err() {
            return Err(refused());
        }
        let group_dns = match (&self.group_search_base, &self.group_search_filter) {
            (Some(base), Some(filter)) => {
                self.lookup_bind(ldap).await?;
                let filter = filter
                    .replace("%d", &ldap_escape(user_dn.as_str()))
                    .replace("%s", &ldap_escape(username));
                self.search_dns(ldap, base, &filter).await?
            }
            _ => Vec::new(),
        };
        Ok(LdapIdentity {
            username: username.to_string(),
            user_dn: user_dn.clone(),
            group_dns,
        })
    }
}
