//! Bearer tokens: minted from the OS's random source, kept only as SHA-256 hashes, each carrying one role.

use sha2::{Digest, Sha256};
use std::io::Read;
use wanka_api::Role;

/// Who is calling.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    /// The token's role.
    pub role: Role,
    /// For a tenant token: its tenant.
    pub tenant: Option<String>,
}

impl Caller {
    /// True when the caller may see or act on a job of `tenant`.
    pub fn may_touch(&self, tenant: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Tenant => self.tenant.as_deref() == Some(tenant),
            Role::Agent => false,
        }
    }
}

/// A new random token: `wk_` and 40 hex digits (160 bits).
pub fn mint() -> std::io::Result<String> {
    let mut bytes = [0u8; 20];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("wk_{}", hex(&bytes)))
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The role's name as stored.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Tenant => "tenant",
        Role::Agent => "agent",
    }
}

/// Reads a stored role name.
pub fn parse_role(name: &str) -> Option<Role> {
    [Role::Admin, Role::Tenant, Role::Agent]
        .into_iter()
        .find(|r| role_name(*r) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a[3..]));
        // The SHA-256 of "abc" (FIPS 180-2 test vector).
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tenants_touch_only_their_own_jobs() {
        let t = Caller {
            role: Role::Tenant,
            tenant: Some("vision".into()),
        };
        assert!(t.may_touch("vision"));
        assert!(!t.may_touch("nlp"));
        let agent = Caller {
            role: Role::Agent,
            tenant: None,
        };
        assert!(!agent.may_touch("vision"));
        for r in [Role::Admin, Role::Tenant, Role::Agent] {
            assert_eq!(parse_role(role_name(r)), Some(r));
        }
    }
}
