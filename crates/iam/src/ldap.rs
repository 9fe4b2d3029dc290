//! LDAP identities for STS `AssumeRoleWithLDAPIdentity`, as MinIO's LDAP integration works:
//!
//! 1. bind as the lookup account and search the user's DN (`user_search_filter` with `%s`
//!    replaced by the escaped user name; exactly one entry must match);
//! 2. bind as that DN with the given password (an empty password is refused before anything
//!    is sent: LDAP would take it for an anonymous bind and "succeed");
//! 3. bind as the lookup account again and search the user's groups (`group_search_filter`
//!    with `%d` replaced by the escaped user DN and `%s` by the user name);
//! 4. with `nested_groups` on, search again with each found group's DN as `%d`, breadth first,
//!    until no new group appears (groups compared by normalized DN, so cycles end), at most
//!    [`NESTED_GROUP_LEVELS_MAX`] levels above the user's own groups and [`GROUPS_MAX`] groups
//!    in all; the DNs of one level are searched together, [`NESTED_SEARCH_BATCH`] per search
//!    (the filter instantiated for each, OR-ed).
//!
//! The session's policies are those mapped to the user's DN and to its groups' DNs through the
//! admin API (`idp/ldap/policy/attach`). Connections use `ldaps://` or StartTLS unless the
//! operator chose plain LDAP for a test setup; every operation has a deadline.
//!
//! Invariant: passwords are never logged or put into errors; a wrong password and an unknown
//! user are the same error to the client.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use crate::error::IamError;
use crate::identity::normalize_dn;

/// Deadline of connecting and of each LDAP operation.
const LDAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most levels of group nesting followed above the user's own groups.
pub const NESTED_GROUP_LEVELS_MAX: usize = 10;
/// Most groups one login collects when nesting is followed (the user's own groups included).
pub const GROUPS_MAX: usize = 1000;
/// Group DNs whose parents one search asks for when nesting is followed.
pub const NESTED_SEARCH_BATCH: usize = 50;

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
    /// The group search filter, `%d` for the member's DN (the user's; when nesting is followed,
    /// also each found group's) and `%s` for the user name
    /// (`(&(objectclass=groupOfNames)(member=%d))`).
    pub group_search_filter: Option<String>,
    /// Follow nested groups: the groups the user's groups are members of, and so on.
    pub nested_groups: bool,
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
            .field("nested_groups", &self.nested_groups)
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
            (Some(base), Some(template)) => {
                self.lookup_bind(ldap).await?;
                let filter = fill_group_filter(template, user_dn, username);
                let direct = self.search_dns(ldap, base, &filter).await?;
                if self.nested_groups {
                    let mut search = GroupSearch {
                        config: self,
                        ldap,
                        base,
                    };
                    follow_nesting(&mut search, template, username, direct).await?
                } else {
                    direct
                }
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

/// `template` with `%d` replaced by the escaped `dn` and `%s` by the escaped `username`, in one
/// pass (a `%s` inside the DN stays text).
fn fill_group_filter(template: &str, dn: &str, username: &str) -> String {
    let mut out = String::with_capacity(template.len() + dn.len());
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('d') {
            out.push_str(&ldap_escape(dn));
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('s') {
            out.push_str(&ldap_escape(username));
            rest = tail;
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One filter matching what any of `filters` matches.
fn any_of(filters: &[String]) -> String {
    let mut out = String::from("(|");
    for f in filters {
        if f.starts_with('(') {
            out.push_str(f);
        } else {
            out.push('(');
            out.push_str(f);
            out.push(')');
        }
    }
    out.push(')');
    out
}

/// Searches returning entry DNs (the directory, or a model in tests).
trait DnSearch {
    /// The DNs of the entries `filter` matches.
    async fn dns(&mut self, filter: &str) -> Result<Vec<String>, IamError>;
}

/// The group search base of a directory connection bound as the lookup account.
struct GroupSearch<'a> {
    config: &'a LdapConfig,
    ldap: &'a mut ldap3::Ldap,
    base: &'a str,
}

impl DnSearch for GroupSearch<'_> {
    async fn dns(&mut self, filter: &str) -> Result<Vec<String>, IamError> {
        self.config.search_dns(self.ldap, self.base, filter).await
    }
}

/// The user's groups (`direct`) and, breadth first, every group they are nested in: each
/// level's new groups are searched with the group filter (`%d` their DNs) until no new group
/// appears. Groups are told apart by normalized DN, so a cycle ends; at most
/// [`NESTED_GROUP_LEVELS_MAX`] levels and [`GROUPS_MAX`] groups are collected (a warning says
/// when a bound cut the walk short: the session then lacks the outer groups' policies).
async fn follow_nesting(
    search: &mut impl DnSearch,
    template: &str,
    username: &str,
    direct: Vec<String>,
) -> Result<Vec<String>, IamError> {
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for dn in direct {
        if seen.insert(normalize_dn(&dn)) {
            groups.push(dn);
        }
    }
    let mut frontier = groups.clone();
    for _level in 0..NESTED_GROUP_LEVELS_MAX {
        if frontier.is_empty() {
            return Ok(groups);
        }
        let mut next = Vec::new();
        for batch in frontier.chunks(NESTED_SEARCH_BATCH) {
            let filters: Vec<String> = batch
                .iter()
                .map(|dn| fill_group_filter(template, dn, username))
                .collect();
            for dn in search.dns(&any_of(&filters)).await? {
                if !seen.insert(normalize_dn(&dn)) {
                    continue;
                }
                if groups.len() >= GROUPS_MAX {
                    tracing::warn!(
                        username,
                        groups_max = GROUPS_MAX,
                        "LDAP: the user is in more nested groups than are followed; the rest are ignored"
                    );
                    return Ok(groups);
                }
                groups.push(dn.clone());
                next.push(dn);
            }
        }
        frontier = next;
    }
    if !frontier.is_empty() {
        tracing::warn!(
            username,
            levels_max = NESTED_GROUP_LEVELS_MAX,
            "LDAP: group nesting deeper than this is not followed"
        );
    }
    Ok(groups)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Groups by member DN (normalized), answering `(|(member=A)(member=B)...)` filters.
    #[derive(Default)]
    struct Directory {
        parents: HashMap<String, Vec<String>>,
        searches: usize,
    }

    impl Directory {
        fn member_of(&mut self, member: &str, group: &str) {
            self.parents
                .entry(normalize_dn(member))
                .or_default()
                .push(group.to_string());
        }
    }

    impl DnSearch for Directory {
        async fn dns(&mut self, filter: &str) -> Result<Vec<String>, IamError> {
            self.searches += 1;
            let mut out = Vec::new();
            for part in filter.split("(member=").skip(1) {
                let member = part.split(')').next().unwrap_or_default();
                out.extend(
                    self.parents
                        .get(&normalize_dn(member))
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            Ok(out)
        }
    }

    const TEMPLATE: &str = "(member=%d)";

    #[test]
    fn filters_are_filled_in_one_pass_and_escaped() {
        assert_eq!(
            fill_group_filter("(&(member=%d)(uid=%s))", "cn=a (x),dc=t", "b*"),
            "(&(member=cn=a \\28x\\29,dc=t)(uid=b\\2a))"
        );
        // A `%s` in the DN is text, not the user name; other `%` stay.
        assert_eq!(
            fill_group_filter("(member=%d)%x", "cn=100%s", "u"),
            "(member=cn=100%s)%x"
        );
        assert_eq!(any_of(&["(a=1)".to_string(), "b=2".to_string()]), "(|(a=1)(b=2))");
    }

    #[tokio::test]
    async fn outer_groups_are_found_breadth_first_and_cycles_end() {
        let mut dir = Directory::default();
        dir.member_of("cn=A,dc=t", "cn=B,dc=t");
        dir.member_of("cn=B,dc=t", "cn=C,dc=t");
        // A cycle back to A, spelled differently.
        dir.member_of("cn=C,dc=t", "CN=A, DC=t");
        dir.member_of("cn=x,dc=t", "cn=unrelated,dc=t");
        let groups = follow_nesting(&mut dir, TEMPLATE, "u", vec!["cn=A,dc=t".to_string()])
            .await
            .unwrap();
        assert_eq!(groups, ["cn=A,dc=t", "cn=B,dc=t", "cn=C,dc=t"]);
        // One search per level, plus the one that finds nothing new.
        assert_eq!(dir.searches, 3);
        let none = follow_nesting(&mut dir, TEMPLATE, "u", Vec::new()).await.unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn depth_and_count_are_bounded() {
        let mut chain = Directory::default();
        for i in 0..30 {
            chain.member_of(&format!("cn=g{i},dc=t"), &format!("cn=g{},dc=t", i + 1));
        }
        let groups = follow_nesting(&mut chain, TEMPLATE, "u", vec!["cn=g0,dc=t".to_string()])
            .await
            .unwrap();
        assert_eq!(groups.len(), 1 + NESTED_GROUP_LEVELS_MAX);
        assert_eq!(chain.searches, NESTED_GROUP_LEVELS_MAX);

        let mut wide = Directory::default();
        for i in 0..(GROUPS_MAX + 500) {
            wide.member_of("cn=root,dc=t", &format!("cn=w{i},dc=t"));
        }
        let groups = follow_nesting(&mut wide, TEMPLATE, "u", vec!["cn=root,dc=t".to_string()])
            .await
            .unwrap();
        assert_eq!(groups.len(), GROUPS_MAX);
        // A level of many groups is asked for in batches.
        let mut level = Directory::default();
        let direct: Vec<String> = (0..(NESTED_SEARCH_BATCH * 2 + 1))
            .map(|i| format!("cn=d{i},dc=t"))
            .collect();
        follow_nesting(&mut level, TEMPLATE, "u", direct).await.unwrap();
        assert_eq!(level.searches, 3);
    }
}
