//! The four roles a token can carry. Which role may call which route is decided
//! in one table (`http::access`), not here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Social workers, health and education safeguarding leads: look up, request records.
    Practitioner,
    /// Information governance: audits every lookup that touched their organisation.
    IgOfficer,
    /// Registers and syncs the organisation's holdings, manages its users.
    OrgAdmin,
    /// National operators: the directory of organisations and the keys.
    Operator,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Practitioner, Role::IgOfficer, Role::OrgAdmin, Role::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::IgOfficer => "ig-officer",
            Role::OrgAdmin => "org-admin",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
