//! An organisation's OpenID Connect provider for its people: what an operator configures, and
//! the pure decisions on a signed-in person's claims (tenant, domain, which role). `operator`
//! can never come from a claim: `RoleMapping` has no place for it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FieldError;
use super::role::Role;

/// Where a secret is read from when it is needed, instead of being stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable of the server process.
    Env(String),
    /// A file on the server (its whole content, trimmed).
    File(String),
}

impl SecretRef {
    /// `env:NAME` or `file:/absolute/path`.
    pub fn parse(text: &str, field: &str) -> Result<SecretRef, FieldError> {
        let bad = || {
            FieldError::new(field, "invalid_reference", "a reference is env:NAME or file:/absolute/path".to_string())
        };
        let text = text.trim();
        if let Some(name) = text.strip_prefix("env:") {
            let ok = !name.is_empty()
                && name.len() <= 128
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            return if ok { Ok(SecretRef::Env(name.to_string())) } else { Err(bad()) };
        }
        if let Some(path) = text.strip_prefix("file:") {
            let ok = path.starts_with('/') && path.len() <= 1024 && !path.contains('\0');
            return if ok { Ok(SecretRef::File(path.to_string())) } else { Err(bad()) };
        }
        Err(bad())
    }

    pub fn as_text(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("env:{name}"),
            SecretRef::File(path) => format!("file:{path}"),
        }
    }
}

/// Which claim values give which role. The most powerful role a person's values reach wins
/// (org-admin, then ig-officer, then practitioner); no value, no role, no sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleMapping {
    #[serde(default)]
    pub practitioner: Vec<String>,
    #[serde(default)]
    pub ig_officer: Vec<String>,
    #[serde(default)]
    pub org_admin: Vec<String>,
}

impl RoleMapping {
    pub fn role_for(&self, values: &[String]) -> Option<Role> {
        let has = |list: &[String]| list.iter().any(|wanted| values.iter().any(|v| v == wanted));
        if has(&self.org_admin) {
            Some(Role::OrgAdmin)
        } else if has(&self.ig_officer) {
            Some(Role::IgOfficer)
        } else if has(&self.practitioner) {
            Some(Role::Practitioner)
        } else {
            None
        }
    }

    fn is_empty(&self) -> bool {
        self.practitioner.is_empty() && self.ig_officer.is_empty() && self.org_admin.is_empty()
    }
}

/// What an operator sends to configure an organisation's provider (API body, CLI options).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// What the sign-in page calls it, e.g. "Microsoft Entra ID" (default "your organisation's
    /// identity provider").
    pub label: Option<String>,
    /// The issuer URL exactly as the provider's discovery document names it (`https://`; plain
    /// `http://` only on this machine's loopback address, for tests and the demo).
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// The client secret: stored sealed, never shown again. Or give `client_secret_ref`.
    #[schema(format = Password)]
    pub client_secret: Option<String>,
    /// `env:NAME` or `file:/path`: the secret is read from there when needed.
    pub client_secret_ref: Option<String>,
    /// `file:/path` of a PEM private key (RSA or P-256): the service then authenticates to the
    /// provider with a signed client assertion (`private_key_jwt`, as NHS CIS2 requires).
    pub private_key_ref: Option<String>,
    /// Only ID tokens whose `tid` claim is this (Microsoft Entra's tenant id).
    pub allowed_tenant: Option<String>,
    /// Only people whose `email`, `preferred_username` or `upn` ends with `@` this domain.
    pub allowed_domain: Option<String>,
    /// Scopes asked for beyond `openid` (default `profile email`).
    pub scopes: Option<String>,
    /// The claim that carries groups or roles (default `groups`; a dotted path reaches inside an
    /// object, e.g. `realm_access.roles`).
    pub role_claim: Option<String>,
    #[serde(default)]
    pub roles: RoleMapping,
    /// Sessions begun through this provider last at most this long (and never past the ID
    /// token's expiry or the service's own limit).
    pub session_max_minutes: Option<u32>,
}

/// How the service proves itself to the provider's token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// A secret given now, to be sealed by the service.
    Secret(String),
    SecretRef(SecretRef),
    PrivateKey(SecretRef),
}

/// A validated provider configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub auth: ClientAuth,
    pub allowed_tenant: Option<String>,
    pub allowed_domain: Option<String>,
    pub scopes: Vec<String>,
    pub role_claim: String,
    pub roles: RoleMapping,
    pub session_max_minutes: Option<u32>,
}

pub const DEFAULT_LABEL: &str = "your organisation's identity provider";

fn short_text(value: Option<&str>, field: &str, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if value.len() > max || value.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "invalid", format!("{field} must be at most {max} characters of text")));
        return None;
    }
    Some(value.to_string())
}

/// An issuer URL: https, or http on a loopback address (tests, the demo); no query or fragment.
pub fn parse_issuer(text: &str) -> Result<String, FieldError> {
    let bad = |m: &str| FieldError::new("issuer", "invalid_issuer", m.to_string());
    let url = url::Url::parse(text.trim()).map_err(|_| bad("issuer must be a URL such as https://login.example/"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(bad("issuer must start with https:// (plain http only on this machine's loopback address)"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("issuer must have no query, fragment or user name"));
    }
    Ok(text.trim().to_string())
}

impl ProviderInput {
    pub fn into_settings(self) -> Result<ProviderSettings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let issuer = match self.issuer.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => {
                errors.push(FieldError::required("issuer"));
                None
            }
            Some(text) => parse_issuer(text).map_err(|e| errors.push(e)).ok(),
        };
        let client_id = short_text(self.client_id.as_deref(), "client_id", 255, &mut errors);
        if client_id.is_none() && !errors.iter().any(|e| e.field == "client_id") {
            errors.push(FieldError::required("client_id"));
        }
        let auth = client_auth(
            self.client_secret.as_deref(),
            self.client_secret_ref.as_deref(),
            self.private_key_ref.as_deref(),
            &mut errors,
        );
        let label = short_text(self.label.as_deref(), "label", 80, &mut errors).unwrap_or(DEFAULT_LABEL.into());
        let allowed_tenant = short_text(self.allowed_tenant.as_deref(), "allowed_tenant", 128, &mut errors);
        let allowed_domain = short_text(self.allowed_domain.as_deref(), "allowed_domain", 253, &mut errors)
            .map(|d| d.trim_start_matches('@').to_ascii_lowercase());
        let scopes_text = short_text(self.scopes.as_deref(), "scopes", 512, &mut errors);
        let scopes = scopes(scopes_text.as_deref(), &mut errors);
        let role_claim =
            short_text(self.role_claim.as_deref(), "role_claim", 128, &mut errors).unwrap_or("groups".into());
        let roles = role_map(self.roles, &mut errors);
        if let Some(m) = self.session_max_minutes
            && !(5..=24 * 60).contains(&m)
        {
            errors.push(FieldError::new("session_max_minutes", "out_of_range", "between 5 and 1440 minutes"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(issuer), Some(client_id), Some(auth)) = (issuer, client_id, auth) else {
            return Err(vec![FieldError::required("issuer")]);
        };
        Ok(ProviderSettings {
            label,
            issuer,
            client_id,
            auth,
            allowed_tenant,
            allowed_domain,
            scopes,
            role_claim,
            roles,
            session_max_minutes: self.session_max_minutes,
        })
    }
}

/// How the service proves itself to the provider: exactly one of a secret, a reference to one,
/// or a reference to a private key file.
fn client_auth(
    secret: Option<&str>,
    secret_ref: Option<&str>,
    private_key_ref: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<ClientAuth> {
    let secret = secret.map(str::trim).filter(|s| !s.is_empty());
    let given = [secret.is_some(), secret_ref.is_some(), private_key_ref.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        let (code, message) = match secret.or(secret_ref).or(private_key_ref) {
            None => ("required", "give one of client_secret, client_secret_ref or private_key_ref"),
            Some(_) => ("ambiguous", "give only one of client_secret, client_secret_ref or private_key_ref"),
        };
        errors.push(FieldError::new("client_secret", code, message));
        return None;
    }
    let parsed = if let Some(secret) = secret {
        if secret.len() > 1024 || secret.chars().any(char::is_control) {
            Err(FieldError::new("client_secret", "invalid", "client_secret is too long"))
        } else {
            Ok(ClientAuth::Secret(secret.to_string()))
        }
    } else if let Some(r) = secret_ref {
        SecretRef::parse(r, "client_secret_ref").map(ClientAuth::SecretRef)
    } else {
        match SecretRef::parse(private_key_ref.unwrap_or_default(), "private_key_ref") {
            Ok(file @ SecretRef::File(_)) => Ok(ClientAuth::PrivateKey(file)),
            Ok(SecretRef::Env(_)) => Err(FieldError::new(
                "private_key_ref",
                "invalid_reference",
                "a private key is referenced as file:/absolute/path",
            )),
            Err(e) => Err(e),
        }
    };
    parsed.map_err(|e| errors.push(e)).ok()
}

/// The scopes asked for besides `openid` (which is always asked): words of visible ASCII.
fn scopes(text: Option<&str>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let scopes: Vec<String> =
        text.unwrap_or("profile email").split_whitespace().filter(|s| *s != "openid").map(str::to_string).collect();
    if scopes.iter().any(|s| !s.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')) {
        errors.push(FieldError::new("scopes", "invalid", "scopes are words separated by spaces"));
    }
    scopes
}

/// The claim values that grant each role, trimmed; at least one, none oversized.
fn role_map(mut roles: RoleMapping, errors: &mut Vec<FieldError>) -> RoleMapping {
    for (name, list) in [
        ("practitioner", &mut roles.practitioner),
        ("ig_officer", &mut roles.ig_officer),
        ("org_admin", &mut roles.org_admin),
    ] {
        list.iter_mut().for_each(|v| *v = v.trim().to_string());
        list.retain(|v| !v.is_empty());
        if list.len() > 50 || list.iter().any(|v| v.len() > 256 || v.chars().any(char::is_control)) {
            errors.push(FieldError::new(
                format!("roles.{name}"),
                "invalid",
                "at most 50 claim values, each at most 256 characters",
            ));
        }
    }
    if roles.is_empty() {
        errors.push(FieldError::new(
            "roles",
            "required",
            "map at least one claim value to practitioner, ig_officer or org_admin, or nobody can sign in",
        ));
    }
    roles
}

/// The values of a role claim: a string, an array of strings, or (NHS CIS2's
/// `nhsid_nrbac_roles`) an array of objects whose `role_code` counts whole and by each of its
/// `:`-separated parts (so `R8000` matches `S8000:G8000:R8000`). A dotted name reaches inside
/// objects.
pub fn claim_values(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    let mut value = claims.get(claim);
    if value.is_none() && claim.contains('.') {
        let mut parts = claim.split('.');
        value = parts.next().and_then(|first| claims.get(first));
        for part in parts {
            value = value.and_then(|v| v.get(part));
        }
    }
    let mut out = Vec::new();
    let mut push_code = |code: &str| {
        out.push(code.to_string());
        if code.contains(':') {
            out.extend(code.split(':').filter(|p| !p.is_empty()).map(str::to_string));
        }
    };
    match value {
        Some(Value::String(s)) => push_code(s),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => push_code(s),
                    Value::Object(o) => {
                        if let Some(Value::String(code)) = o.get("role_code") {
                            push_code(code);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

/// Why a person who proved who they are still may not sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefusal {
    /// The `tid` is not the configured tenant.
    Tenant,
    /// No `email`, `preferred_username` or `upn` in the configured domain.
    Domain,
    /// No claim value maps to a role.
    NoRole,
}

impl ClaimRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimRefusal::Tenant => "wrong_tenant",
            ClaimRefusal::Domain => "wrong_domain",
            ClaimRefusal::NoRole => "no_role",
        }
    }
}

/// The tenant and domain rules.
pub fn check_tenant_and_domain(
    claims: &Map<String, Value>,
    tenant: Option<&str>,
    domain: Option<&str>,
) -> Result<(), ClaimRefusal> {
    if let Some(tenant) = tenant
        && claims.get("tid").and_then(Value::as_str) != Some(tenant)
    {
        return Err(ClaimRefusal::Tenant);
    }
    if let Some(domain) = domain {
        let suffix = format!("@{domain}");
        let in_domain = ["email", "preferred_username", "upn"]
            .iter()
            .filter_map(|name| claims.get(*name).and_then(Value::as_str))
            .any(|v| v.to_ascii_lowercase().ends_with(&suffix));
        if !in_domain {
            return Err(ClaimRefusal::Domain);
        }
    }
    Ok(())
}

/// A display name for a person from their claims (never their e-mail address alone: the
/// `name`, else given and family names, else "a person at <organisation>" by the caller).
pub fn display_name(claims: &Map<String, Value>) -> Option<String> {
    let get = |k: &str| claims.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let name = get("name").map(str::to_string).or_else(|| match (get("given_name"), get("family_name")) {
        (Some(g), Some(f)) => Some(format!("{g} {f}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        _ => None,
    })?;
    Some(name.chars().filter(|c| !c.is_control()).take(120).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_most_powerful_mapped_role_wins_and_operator_is_never_granted() {
        let roles = RoleMapping {
            practitioner: vec!["sw".into()],
            ig_officer: vec!["ig".into()],
            org_admin: vec!["admins".into()],
        };
        assert_eq!(roles.role_for(&["sw".into()]), Some(Role::Practitioner));
        assert_eq!(roles.role_for(&["sw".into(), "ig".into()]), Some(Role::IgOfficer));
        assert_eq!(roles.role_for(&["admins".into(), "sw".into()]), Some(Role::OrgAdmin));
        assert_eq!(roles.role_for(&["operator".into(), "other".into()]), None);
        assert_eq!(roles.role_for(&[]), None);
    }

    #[test]
    fn claim_values_read_strings_arrays_cis2_role_objects_and_dotted_paths() {
        let claims = map(json!({
            "groups": ["a", "b"],
            "role": "single",
            "nhsid_nrbac_roles": [{"role_code": "S8000:G8000:R8001", "person_roleid": "1"}],
            "realm_access": {"roles": ["x"]},
        }));
        assert_eq!(claim_values(&claims, "groups"), vec!["a", "b"]);
        assert_eq!(claim_values(&claims, "role"), vec!["single"]);
        assert!(claim_values(&claims, "nhsid_nrbac_roles").contains(&"R8001".to_string()));
        assert_eq!(claim_values(&claims, "realm_access.roles"), vec!["x"]);
        assert!(claim_values(&claims, "missing").is_empty());
    }

    #[test]
    fn tenant_and_domain_are_enforced_when_configured() {
        let claims = map(json!({"tid": "t1", "preferred_username": "Ann@Council.gov.uk"}));
        assert_eq!(check_tenant_and_domain(&claims, Some("t1"), Some("council.gov.uk")), Ok(()));
        assert_eq!(check_tenant_and_domain(&claims, Some("t2"), None), Err(ClaimRefusal::Tenant));
        assert_eq!(check_tenant_and_domain(&claims, None, Some("other.gov.uk")), Err(ClaimRefusal::Domain));
        assert_eq!(check_tenant_and_domain(&claims, None, None), Ok(()));
    }

    #[test]
    fn a_configuration_needs_an_https_issuer_one_credential_and_a_role_mapping() {
        let input = ProviderInput {
            issuer: Some("http://login.example/".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            private_key_ref: Some("file:/k.pem".into()),
            ..ProviderInput::default()
        };
        let errors = input.into_settings().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["issuer", "client_secret", "roles"]);
        assert!(errors.iter().all(|e| !e.message.contains("login.example")), "never echoes input");
        let ok = ProviderInput {
            issuer: Some("http://127.0.0.1:9999".into()),
            client_id: Some("c".into()),
            client_secret_ref: Some("env:IDP_SECRET".into()),
            roles: RoleMapping { practitioner: vec!["sw".into()], ..RoleMapping::default() },
            ..ProviderInput::default()
        };
        let settings = ok.into_settings().expect("valid");
        assert_eq!(settings.auth, ClientAuth::SecretRef(SecretRef::Env("IDP_SECRET".into())));
        assert_eq!(settings.scopes, vec!["profile", "email"]);
        assert_eq!(settings.role_claim, "groups");
    }

    #[test]
    fn exactly_one_credential_is_taken_and_a_private_key_only_from_a_file() {
        let codes = |secret: Option<&str>, secret_ref: Option<&str>, key_ref: Option<&str>| {
            let mut errors = Vec::new();
            let auth = client_auth(secret, secret_ref, key_ref, &mut errors);
            (auth, errors.iter().map(|e| format!("{}:{}", e.field, e.code)).collect::<Vec<_>>())
        };
        assert_eq!(codes(None, None, None).1, vec!["client_secret:required"]);
        assert_eq!(codes(Some("  "), None, None).1, vec!["client_secret:required"], "a blank secret is no secret");
        assert_eq!(codes(Some("s"), Some("env:X"), None).1, vec!["client_secret:ambiguous"]);
        assert_eq!(codes(None, None, Some("env:KEY")).1, vec!["private_key_ref:invalid_reference"]);
        assert_eq!(codes(Some(&"x".repeat(1025)), None, None).1, vec!["client_secret:invalid"]);
        assert_eq!(codes(Some(" s "), None, None).0, Some(ClientAuth::Secret("s".into())));
        assert_eq!(
            codes(None, None, Some("file:/k.pem")).0,
            Some(ClientAuth::PrivateKey(SecretRef::File("/k.pem".into())))
        );
    }
}
