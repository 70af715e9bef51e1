//! Permissions, grants and the authorization decisions made from them.
//!
//! A role grants a set of [`Permission`]s on a [`Scope`]: all servers, or only the servers that
//! carry one of the role's tags (server groups). Global permissions (managing users, roles,
//! settings, reading the audit log) cannot be scoped: they are about the whole organization.
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! permissions {
    ($($variant:ident => $name:literal, $scoped:literal, $doc:literal;)*) => {
        /// A named permission. Its string form (`servers.read`) is what the API and the
        /// database use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Permission {
            $(#[doc = $doc] $variant,)*
        }

        impl Permission {
            /// Every permission, in a stable order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The permission's name, as used in the API.
            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// Whether the permission applies per server (and so may be limited to tags).
            pub fn is_server_scoped(self) -> bool {
                match self { $(Permission::$variant => $scoped,)* }
            }

            /// A one-line description for UIs.
            pub fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)* }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($name => Ok(Permission::$variant),)* _ => Err(UnknownPermission(s.chars().take(64).collect())) }
            }
        }
    };
}

permissions! {
    ServersRead => "servers.read", true, "See servers and their details";
    ServersWrite => "servers.write", true, "Add, edit and delete servers";
    CredentialsWrite => "credentials.write", true, "Set or replace a server's SSH credential";
    TerminalOpen => "terminal.open", true, "Open a web terminal on a server";
    ScriptsRun => "scripts.run", true, "Run scripts and commands on servers";
    ScriptsWrite => "scripts.write", true, "Edit the script library";
    ChecksWrite => "checks.write", true, "Create, edit, run and delete health checks";
    BackupsRun => "backups.run", true, "Start backups";
    BackupsRestore => "backups.restore", true, "Restore backups";
    UsersManage => "users.manage", false, "Create, disable and edit users";
    RolesManage => "roles.manage", false, "Create and edit roles";
    AuditRead => "audit.read", false, "Read and export the audit log";
    SettingsManage => "settings.manage", false, "Change organization settings";
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A permission name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`")]
pub struct UnknownPermission(pub String);

/// Which servers a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every server of the organization.
    All,
    /// Servers carrying at least one of these tags.
    Tags(BTreeSet<String>),
}

impl Scope {
    /// Whether a server with these tags is inside the scope.
    pub fn covers_server(&self, server_tags: &[String]) -> bool {
        match self {
            Scope::All => true,
            Scope::Tags(tags) => server_tags.iter().any(|t| tags.contains(t)),
        }
    }

    /// Whether some server could be inside both scopes (they share a tag, or one is `All`).
    pub fn overlaps(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::All, _) | (_, Scope::All) => true,
            (Scope::Tags(a), Scope::Tags(b)) => !a.is_disjoint(b),
        }
    }

    /// Whether every server inside `other` is also inside `self`.
    pub fn contains(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::All, _) => true,
            (Scope::Tags(_), Scope::All) => false,
            (Scope::Tags(mine), Scope::Tags(theirs)) => theirs.is_subset(mine),
        }
    }
}

/// Some permissions on a scope: what one role contributes to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The permissions granted.
    pub permissions: BTreeSet<Permission>,
    /// Where the server-scoped ones apply.
    pub scope: Scope,
}

/// The built-in roles every organization has.
pub mod builtin {
    use super::Permission;

    /// Full control.
    pub const ADMIN: &str = "admin";
    /// Day-to-day operation of servers, without managing people or settings.
    pub const OPERATOR: &str = "operator";
    /// Read-only.
    pub const VIEWER: &str = "viewer";

    /// The permissions of a built-in role, or `None` for another name.
    pub fn permissions(role: &str) -> Option<Vec<Permission>> {
        match role {
            ADMIN => Some(Permission::ALL.to_vec()),
            OPERATOR => Some(
                Permission::ALL
                    .iter()
                    .copied()
                    .filter(|p| p.is_server_scoped())
                    .collect(),
            ),
            VIEWER => Some(vec![Permission::ServersRead]),
            _ => None,
        }
    }

    /// Descriptions of the built-in roles.
    pub fn description(role: &str) -> &'static str {
        match role {
            ADMIN => "Full control of the organization",
            OPERATOR => {
                "Operate every server: terminal, scripts, backups; no user or settings management"
            }
            VIEWER => "Read-only access to servers",
            _ => "",
        }
    }
}

/// Everything one principal (a user, or an API token acting for a user) may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authz {
    grants: Vec<Grant>,
}

impl Authz {
    /// Builds the decision set from a user's grants.
    pub fn new(grants: Vec<Grant>) -> Self {
        Self { grants }
    }

    /// The same principal limited to `allowed` (an API token's own permission list).
    pub fn restrict_to(&self, allowed: &BTreeSet<Permission>) -> Self {
        Self {
            grants: self
                .grants
                .iter()
                .map(|g| Grant {
                    permissions: g.permissions.intersection(allowed).copied().collect(),
                    scope: g.scope.clone(),
                })
                .filter(|g| !g.permissions.is_empty())
                .collect(),
        }
    }

    /// Whether the global permission is held, or a server-scoped one on at least one scope.
    pub fn has(&self, permission: Permission) -> bool {
        self.grants
            .iter()
            .any(|g| g.permissions.contains(&permission))
    }

    /// Whether the permission is held on a server with these tags.
    pub fn can_on_server(&self, permission: Permission, server_tags: &[String]) -> bool {
        self.grants
            .iter()
            .any(|g| g.permissions.contains(&permission) && g.scope.covers_server(server_tags))
    }

    /// Where the permission applies: `None` if nowhere, `Some(Scope::All)` if everywhere,
    /// otherwise the union of the tags it applies to.
    pub fn scope_of(&self, permission: Permission) -> Option<Scope> {
        let mut tags = BTreeSet::new();
        let mut any = false;
        for g in self
            .grants
            .iter()
            .filter(|g| g.permissions.contains(&permission))
        {
            any = true;
            match &g.scope {
                Scope::All => return Some(Scope::All),
                Scope::Tags(t) => tags.extend(t.iter().cloned()),
            }
        }
        any.then_some(Scope::Tags(tags))
    }

    /// Whether the permission is held on every server of `scope`: what managing something that
    /// reaches those servers (a script owned by those tags, say) needs.
    pub fn holds_on(&self, permission: Permission, scope: &Scope) -> bool {
        self.scope_of(permission)
            .is_some_and(|mine| mine.contains(scope))
    }

    /// Every permission held somewhere.
    pub fn permissions(&self) -> BTreeSet<Permission> {
        self.grants
            .iter()
            .flat_map(|g| g.permissions.iter().copied())
            .collect()
    }

    /// Whether this principal could itself exercise everything `grant` gives, so that handing
    /// `grant` to someone (assigning a role, creating a token) is no escalation.
    pub fn covers(&self, grant: &Grant) -> bool {
        grant.permissions.iter().all(|p| match self.scope_of(*p) {
            None => false,
            Some(mine) => !p.is_server_scoped() || mine.contains(&grant.scope),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> BTreeSet<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    fn grant(perms: &[Permission], scope: Scope) -> Grant {
        Grant {
            permissions: perms.iter().copied().collect(),
            scope,
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        assert!("servers.delete".parse::<Permission>().is_err());
    }

    #[test]
    fn scoped_role_sees_only_its_group() {
        let authz = Authz::new(vec![grant(
            &[Permission::ServersRead],
            Scope::Tags(tags(&["web"])),
        )]);
        assert!(authz.can_on_server(Permission::ServersRead, &["web".into(), "eu".into()]));
        assert!(!authz.can_on_server(Permission::ServersRead, &["db".into()]));
        assert!(!authz.can_on_server(Permission::ServersRead, &[]));
        assert!(!authz.can_on_server(Permission::ServersWrite, &["web".into()]));
    }

    #[test]
    fn union_of_grants() {
        let authz = Authz::new(vec![
            grant(&[Permission::ServersRead], Scope::Tags(tags(&["web"]))),
            grant(&[Permission::ServersRead], Scope::Tags(tags(&["db"]))),
        ]);
        assert_eq!(
            authz.scope_of(Permission::ServersRead),
            Some(Scope::Tags(tags(&["db", "web"])))
        );
        assert_eq!(authz.scope_of(Permission::ServersWrite), None);
    }

    #[test]
    fn covers_prevents_escalation() {
        let scoped_admin = Authz::new(vec![
            grant(
                &[Permission::ServersRead, Permission::ServersWrite],
                Scope::Tags(tags(&["web"])),
            ),
            grant(&[Permission::UsersManage], Scope::All),
        ]);
        assert!(scoped_admin.covers(&grant(
            &[Permission::ServersRead],
            Scope::Tags(tags(&["web"]))
        )));
        assert!(!scoped_admin.covers(&grant(&[Permission::ServersRead], Scope::All)));
        assert!(!scoped_admin.covers(&grant(
            &[Permission::ServersRead],
            Scope::Tags(tags(&["db"]))
        )));
        assert!(!scoped_admin.covers(&grant(&[Permission::RolesManage], Scope::All)));
        assert!(scoped_admin.covers(&grant(&[Permission::UsersManage], Scope::All)));
    }

    #[test]
    fn holds_on_and_overlaps() {
        let web_writer = Authz::new(vec![grant(
            &[Permission::ScriptsWrite],
            Scope::Tags(tags(&["web", "api"])),
        )]);
        assert!(web_writer.holds_on(Permission::ScriptsWrite, &Scope::Tags(tags(&["web"]))));
        assert!(!web_writer.holds_on(Permission::ScriptsWrite, &Scope::Tags(tags(&["web", "db"]))));
        assert!(!web_writer.holds_on(Permission::ScriptsWrite, &Scope::All));
        assert!(!web_writer.holds_on(Permission::ScriptsRun, &Scope::Tags(tags(&["web"]))));
        assert!(Scope::Tags(tags(&["web"])).overlaps(&Scope::Tags(tags(&["web", "db"]))));
        assert!(!Scope::Tags(tags(&["web"])).overlaps(&Scope::Tags(tags(&["db"]))));
        assert!(Scope::All.overlaps(&Scope::Tags(tags(&["db"]))));
    }

    #[test]
    fn token_restriction() {
        let admin = Authz::new(vec![grant(Permission::ALL, Scope::All)]);
        let token = admin.restrict_to(&[Permission::ServersRead].into_iter().collect());
        assert!(token.has(Permission::ServersRead));
        assert!(!token.has(Permission::ServersWrite));
        assert!(!token.has(Permission::UsersManage));
    }
}
