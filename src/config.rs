//! Every setting in one place: its default, its environment name and its flag.
//! Precedence: command-line flag, then `LOCATOR_*` environment variable, then the TOML file, then default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The settings every command accepts. Clap reads flags and environment variables here;
/// each field is `None` when neither was given, so the file and the default can fill it.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file (optional); flags and environment variables override it.
    #[arg(long, global = true, env = "LOCATOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database: `sqlite://PATH` (embedded default) or `postgres://...` [default: sqlite://locator.db]
    #[arg(long, global = true, env = "LOCATOR_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// The index secret: 32 random bytes [default: locator.key beside the database]
    #[arg(long, global = true, env = "LOCATOR_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Ed25519 key that signs audit checkpoints, kept apart from the database
    /// [default: locator-audit.key beside the index secret]
    #[arg(long, global = true, env = "LOCATOR_AUDIT_KEY_FILE", value_name = "FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:8080]
    #[arg(long, global = true, env = "LOCATOR_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// `on` or `off`; `off` disables every rate limit (load tests only) [default: on]
    #[arg(long, global = true, env = "LOCATOR_RATE_LIMITS", value_name = "on|off")]
    pub rate_limits: Option<String>,
    /// Push the audit log's signed checkpoint to this witness on a schedule while serving:
    /// a file path (appended) or an `http://` webhook (POSTed) [default: none]
    #[arg(long, global = true, env = "LOCATOR_AUDIT_WITNESS", value_name = "PATH|URL")]
    pub audit_witness: Option<String>,
    /// Log format: `pretty` or `json` [default: pretty]
    #[arg(long, global = true, env = "LOCATOR_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter, e.g. `info` or `child_locator=debug` [default: info]
    #[arg(long, global = true, env = "LOCATOR_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// `yes` lets `serve` listen for plain HTTP on a non-loopback address; only behind a TLS
    /// reverse proxy or ingress on a private network [default: no]
    #[arg(long, global = true, env = "LOCATOR_ALLOW_PUBLIC_HTTP", value_name = "yes|no")]
    pub allow_public_http: Option<String>,
    /// Web session cookies: `yes` always Secure, `no` never, `auto` Secure unless serving plain
    /// HTTP on loopback without `X-Forwarded-Proto: https` [default: auto]
    #[arg(long, global = true, env = "LOCATOR_SECURE_COOKIES", value_name = "auto|yes|no")]
    pub secure_cookies: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client: addresses or CIDR ranges,
    /// comma-separated, e.g. `10.0.0.0/8,192.0.2.1`. Anyone else's header is ignored [default: none]
    #[arg(long, global = true, env = "LOCATOR_TRUSTED_PROXIES", value_name = "ADDRS")]
    pub trusted_proxies: Option<String>,
    /// The address clients reach this service at, e.g. `https://locator.example.nhs.uk`; the
    /// OAuth token endpoint (the `aud` of client assertions) is this plus `/oauth/token`
    /// [default: http://BIND]
    #[arg(long, global = true, env = "LOCATOR_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

/// The optional TOML file. Same names as the flags, in snake_case.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub key_file: Option<PathBuf>,
    pub audit_key_file: Option<PathBuf>,
    pub bind: Option<String>,
    pub rate_limits: Option<String>,
    pub audit_witness: Option<String>,
    /// How often `serve` pushes to the witness (default 300 seconds).
    pub audit_witness_interval_secs: Option<u64>,
    pub log_format: Option<String>,
    pub log: Option<String>,
    pub allow_public_http: Option<String>,
    pub secure_cookies: Option<String>,
    pub trusted_proxies: Option<String>,
    pub public_url: Option<String>,
    pub request_timeout_secs: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub max_sync_bytes: Option<usize>,
    /// How long a sync's hold on its organisation lasts unless renewed (default 60 seconds): a
    /// sync whose process died is accounted for and the organisation free to sync again after it.
    pub sync_lease_secs: Option<u64>,
    /// Days a closed holding stays findable before it is purged.
    pub closed_retention_days: Option<u32>,
    /// Days free text typed into the audit trail (a purpose's detail) is kept before purge erases it.
    pub free_text_retention_days: Option<u32>,
    #[serde(default)]
    pub limits: Option<LimitsFile>,
    /// Anomaly thresholds for IG review (see docs/audit.md).
    #[serde(default)]
    pub anomalies: Option<AnomaliesFile>,
    /// Disclosure by organisation kind, e.g. `school = "full"` (default: see docs/policy.md).
    #[serde(default)]
    pub disclosure: Option<std::collections::HashMap<String, crate::domain::policy::Disclosure>>,
    /// Record request deadlines (see docs/requests.md).
    #[serde(default)]
    pub requests: Option<RequestsFile>,
    /// Webhook delivery of the outbox.
    #[serde(default)]
    pub outbox: Option<OutboxFile>,
    /// Web page sessions.
    #[serde(default)]
    pub web: Option<WebFile>,
    /// Limits on client connections (see `ConnectionSettings`).
    #[serde(default)]
    pub connections: Option<ConnectionsFile>,
    /// Client credentials (see `OAuthSettings`).
    #[serde(default)]
    pub oauth: Option<OAuthFile>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct OAuthFile {
    pub token_endpoint: Option<String>,
    pub access_token_minutes: Option<u32>,
    pub max_assertion_lifetime_secs: Option<u32>,
    pub clock_skew_secs: Option<u32>,
}

/// Systems authenticating with OAuth 2.0 client credentials and a signed JWT assertion
/// (docs/integrators.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// This service's token endpoint URL, which every client assertion's `aud` must be
    /// (default: the public URL, or `http://BIND`, plus `/oauth/token`).
    pub token_endpoint: String,
    /// How long an access token works (default 10 minutes).
    pub access_token_lifetime: Duration,
    /// How far ahead an assertion's `exp` may be (default 5 minutes, the most allowed).
    pub max_assertion_lifetime: Duration,
    /// Clock difference tolerated between a client and this service (default 30 seconds).
    pub clock_skew: Duration,
    /// `LOCATOR_PUBLIC_URL` without a trailing `/`, when set: identity providers send people back
    /// to it (else to the host the browser asked for).
    pub public_base: Option<String>,
}

impl OAuthSettings {
    fn resolve(public_url: Option<&str>, bind: SocketAddr, file: Option<&OAuthFile>) -> Result<Self, ConfigError> {
        let default = OAuthFile::default();
        let file = file.unwrap_or(&default);
        let base = public_url.map(|u| u.trim().trim_end_matches('/').to_string());
        if let Some(base) = &base
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(ConfigError("LOCATOR_PUBLIC_URL must start with https:// or http://".into()));
        }
        let token_endpoint = match &file.token_endpoint {
            Some(url) => url.trim().to_string(),
            None => format!("{}/oauth/token", base.clone().unwrap_or_else(|| format!("http://{bind}"))),
        };
        Ok(OAuthSettings {
            token_endpoint,
            access_token_lifetime: Duration::from_secs(
                u64::from(file.access_token_minutes.unwrap_or(10).clamp(1, 60)) * 60,
            ),
            max_assertion_lifetime: Duration::from_secs(u64::from(
                file.max_assertion_lifetime_secs.unwrap_or(300).clamp(10, 300),
            )),
            clock_skew: Duration::from_secs(u64::from(file.clock_skew_secs.unwrap_or(30).min(120))),
            public_base: base,
        })
    }
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsFile {
    pub idle_timeout_secs: Option<u64>,
    pub max: Option<usize>,
    pub max_per_client: Option<usize>,
}

/// How many connections the server holds open, and for how long one may sit idle: each holds
/// a file descriptor and a task, and with the process's file limit reached nothing else (not
/// even `/healthz`) can be accepted. A connection over a cap is refused at once with a 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// A connection with no request in flight and no byte moving for this long is closed
    /// (HTTP/1 keep-alive, HTTP/2, and one that never sent a request) (default 60 s).
    pub idle_timeout: Duration,
    /// Open connections in all (default 4,096, and never within 256 of the file limit).
    pub max: usize,
    /// Open connections from one client address (default 256: behind a reverse proxy every
    /// connection comes from the proxy, so this must stay above what the proxy pools).
    pub max_per_client: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings { idle_timeout: Duration::from_secs(60), max: 4096, max_per_client: 256 }
    }
}

impl ConnectionSettings {
    fn from_file(file: Option<&ConnectionsFile>) -> ConnectionSettings {
        let default = ConnectionSettings::default();
        let Some(file) = file else { return default };
        ConnectionSettings {
            idle_timeout: file.idle_timeout_secs.map_or(default.idle_timeout, |s| Duration::from_secs(s.max(1))),
            max: file.max.unwrap_or(default.max).max(1),
            max_per_client: file.max_per_client.unwrap_or(default.max_per_client).max(1),
        }
    }
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct WebFile {
    pub session_idle_minutes: Option<u32>,
    pub session_max_hours: Option<u32>,
}

/// Whether session cookies carry `Secure` (see `WebSettings::secure_cookie`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookies {
    /// Secure when the listener is not loopback (so a TLS proxy is in front) or the request came
    /// through a proxy that says `X-Forwarded-Proto: https`. Trusting that header can only ever
    /// add `Secure`, never remove it, so a forged header harms no one but its sender.
    Auto,
    Always,
    Never,
}

/// The web pages' sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// A session unused for this long ends (default 30 minutes).
    pub session_idle: Duration,
    /// A session ends this long after sign-in however busy it is (default 10 hours: a working day).
    pub session_max: Duration,
    pub secure_cookies: SecureCookies,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(10 * 3600),
            secure_cookies: SecureCookies::Auto,
        }
    }
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RequestsFile {
    pub immediate_hours: Option<u32>,
    pub urgent_hours: Option<u32>,
    pub routine_working_days: Option<u32>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct OutboxFile {
    pub max_attempts: Option<u32>,
    pub poll_secs: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub allow_http: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
}

/// How notifications are delivered to organisations' webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Attempts before a message is dead (visible to the org-admin as undeliverable).
    pub max_attempts: u32,
    /// How often the background task looks for due messages and overdue requests.
    pub poll: Duration,
    /// How long one delivery may take.
    pub timeout: Duration,
    /// Accept `http://` webhook URLs (local receivers, tests, demos); production uses https.
    pub allow_http: bool,
    /// Hosts (names or addresses, exactly as in the URL) a webhook may reach even though they
    /// are loopback, private or link-local; every other internal destination is refused.
    pub allowed_hosts: Vec<String>,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: 8,
            poll: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            allow_http: false,
            allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub user_lookups_per_minute: Option<u32>,
    pub user_lookup_burst: Option<u32>,
    pub org_lookups_per_minute: Option<u32>,
    pub org_lookup_burst: Option<u32>,
    pub user_daily_lookups: Option<u32>,
    pub failed_auth_per_minute: Option<u32>,
    pub sign_in_starts_per_minute: Option<u32>,
    pub refusals_recorded_per_minute: Option<u32>,
    pub holdings_churn_floor: Option<u32>,
    pub holdings_churn_percent: Option<u32>,
    pub sync_name_variants_floor: Option<u32>,
    pub sync_name_variants_per_mille: Option<u32>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct AnomaliesFile {
    pub office_hours_start: Option<u8>,
    pub office_hours_end: Option<u8>,
    pub weekends_out_of_hours: Option<bool>,
    pub volume_multiplier: Option<f64>,
    pub volume_floor: Option<u32>,
    pub norm_days: Option<u32>,
    pub repeat_limit: Option<u32>,
    pub repeat_window_days: Option<u32>,
}

/// Reverse proxies trusted to say who the client is (`X-Forwarded-For`); see `http::client_ip`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(std::net::IpAddr, u8)>);

impl TrustedProxies {
    /// Comma-separated addresses or CIDR ranges; empty means none.
    pub fn parse(text: &str) -> Result<TrustedProxies, ConfigError> {
        let bad = || ConfigError("LOCATOR_TRUSTED_PROXIES must be addresses or CIDR ranges, comma-separated".into());
        let mut ranges = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits.parse::<u8>().map_err(|_| bad())?)),
                None => (item, None),
            };
            let ip: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            if bits > max {
                return Err(bad());
            }
            ranges.push((ip, bits));
        }
        Ok(TrustedProxies(ranges))
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            _ => false,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn describe(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        self.0.iter().map(|(ip, bits)| format!("{ip}/{bits}")).collect::<Vec<_>>().join(",")
    }
}

/// Whether the first `bits` bits of two addresses agree.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Where the resolved value of a setting came from, for `locator config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    FlagOrEnv,
    File,
    Default,
}

/// Rate limits. Per user and per organisation, burst and sustained, plus a daily quota per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub enabled: bool,
    pub user_lookups_per_minute: u32,
    pub user_lookup_burst: u32,
    pub org_lookups_per_minute: u32,
    pub org_lookup_burst: u32,
    pub user_daily_lookups: u32,
    pub failed_auth_per_minute: u32,
    /// Sign-ins through an identity provider started per client address a minute: each leaves
    /// a pending row for ten minutes, so an unauthenticated page must not add them unbounded.
    pub sign_in_starts_per_minute: u32,
    /// Refusals (access denied, rate limited) recorded one by one per user and minute; the
    /// rest are counted into one summary event.
    pub refusals_recorded_per_minute: u32,
    /// Holdings an organisation may add and remove in a day: at least this many...
    pub holdings_churn_floor: u32,
    /// ...or this percentage of its holdings, if more. A first load counts its removals only.
    pub holdings_churn_percent: u32,
    /// When a caseload file's rows sharing one name look like guesses (`domain::enumeration`).
    pub enumeration: crate::domain::enumeration::EnumerationRules,
}

impl Default for Limits {
    fn default() -> Self {
        // A practitioner rarely needs more than a handful of lookups a minute; a busy front door
        // team of 30 shares the organisation's allowance.
        Limits {
            enabled: true,
            user_lookups_per_minute: 30,
            user_lookup_burst: 10,
            org_lookups_per_minute: 600,
            org_lookup_burst: 100,
            user_daily_lookups: 500,
            failed_auth_per_minute: 20,
            sign_in_starts_per_minute: 30,
            refusals_recorded_per_minute: 10,
            holdings_churn_floor: 500,
            holdings_churn_percent: 10,
            enumeration: crate::domain::enumeration::EnumerationRules::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub key_file: PathBuf,
    pub audit_key_file: PathBuf,
    pub bind: SocketAddr,
    pub limits: Limits,
    pub log_format: LogFormat,
    pub log: String,
    /// Whether plain HTTP may be served on a non-loopback address (see `check_bind`).
    pub allow_public_http: bool,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_sync_bytes: usize,
    /// A sync's lease on its organisation: renewed every quarter of it while the sync runs.
    pub sync_lease: Duration,
    /// Closed holdings are purged this many days after they were closed (default 730).
    pub closed_retention_days: u32,
    /// Free text beside the audit trail is erased by purge this many days after the event
    /// (default 365); the leaf keeps only its commitment, and still verifies.
    pub free_text_retention_days: u32,
    pub policy: crate::domain::policy::Policy,
    pub deadlines: crate::domain::request::Deadlines,
    pub outbox: OutboxSettings,
    pub web: WebSettings,
    /// Proxies whose `X-Forwarded-For` names the client (failed sign-in limits count per client).
    pub trusted_proxies: TrustedProxies,
    pub connections: ConnectionSettings,
    pub oauth: OAuthSettings,
    /// Where `serve` pushes signed audit checkpoints, and how often.
    pub audit_witness: Option<crate::audit::witness::WitnessTarget>,
    pub audit_witness_interval: Duration,
    pub anomaly_rules: crate::domain::anomaly::AnomalyRules,
    /// Where each top-level value came from, in display order.
    pub sources: Vec<(&'static str, Source)>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

pub const DEFAULT_DATABASE_URL: &str = "sqlite://locator.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

impl Settings {
    /// Whether `database_url` names PostgreSQL (otherwise SQLite), as the store reads it.
    pub fn uses_postgres(&self) -> bool {
        crate::store::Engine::of_url(&self.database_url) == crate::store::Engine::Postgres
    }

    /// Resolves flags/environment, then the file named by `--config`, then defaults.
    pub fn resolve(args: &ConfigArgs) -> Result<Settings, ConfigError> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        Settings::resolve_with(args, &file)
    }

    pub fn resolve_with(args: &ConfigArgs, file: &FileConfig) -> Result<Settings, ConfigError> {
        let mut sources = Vec::new();
        let mut pick = |name: &'static str, flag: Option<String>, from_file: Option<String>| {
            let (value, source) = match (flag, from_file) {
                (Some(v), _) => (Some(v), Source::FlagOrEnv),
                (None, Some(v)) => (Some(v), Source::File),
                (None, None) => (None, Source::Default),
            };
            sources.push((name, source));
            value
        };
        let path_text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());

        let database_url = database_url(pick("database_url", args.database_url.clone(), file.database_url.clone()))?;
        let key_file = pick("key_file", path_text(&args.key_file), path_text(&file.key_file))
            .map(PathBuf::from)
            .unwrap_or_else(|| default_key_file(&database_url));
        let audit_key_file = pick("audit_key_file", path_text(&args.audit_key_file), path_text(&file.audit_key_file))
            .map(PathBuf::from)
            .unwrap_or_else(|| sibling(&key_file, "locator-audit.key"));
        let bind = bind_address(pick("bind", args.bind.clone(), file.bind.clone()))?;
        let rate_limits = pick("rate_limits", args.rate_limits.clone(), file.rate_limits.clone());
        let enabled = one_of(
            rate_limits,
            true,
            &[("on", true), ("true", true), ("off", false), ("false", false)],
            "LOCATOR_RATE_LIMITS must be `on` or `off`",
        )?;
        let log_format = one_of(
            pick("log_format", args.log_format.clone(), file.log_format.clone()),
            LogFormat::Pretty,
            &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
            "LOCATOR_LOG_FORMAT must be `pretty` or `json`",
        )?;
        let log = pick("log", args.log.clone(), file.log.clone()).unwrap_or_else(|| "info".into());
        let allow_public_http = one_of(
            pick("allow_public_http", args.allow_public_http.clone(), file.allow_public_http.clone()),
            false,
            &[("no", false), ("false", false), ("yes", true), ("true", true)],
            "LOCATOR_ALLOW_PUBLIC_HTTP must be `yes` or `no`",
        )?;
        let secure_cookies = one_of(
            pick("secure_cookies", args.secure_cookies.clone(), file.secure_cookies.clone()),
            SecureCookies::Auto,
            SECURE_COOKIES,
            "LOCATOR_SECURE_COOKIES must be `auto`, `yes` or `no`",
        )?;
        let trusted_proxies = match pick("trusted_proxies", args.trusted_proxies.clone(), file.trusted_proxies.clone())
        {
            Some(text) => TrustedProxies::parse(&text)?,
            None => TrustedProxies::default(),
        };
        let web = WebSettings::from_file(file, secure_cookies);
        let audit_witness = pick("audit_witness", args.audit_witness.clone(), file.audit_witness.clone())
            .map(|text| {
                crate::audit::witness::WitnessTarget::parse(&text)
                    .map_err(|e| ConfigError(format!("LOCATOR_AUDIT_WITNESS: {e}")))
            })
            .transpose()?;
        let anomaly_rules = anomaly_rules(file.anomalies.as_ref().cloned().unwrap_or_default())?;
        let public_url = pick("public_url", args.public_url.clone(), file.public_url.clone());
        let oauth = OAuthSettings::resolve(public_url.as_deref(), bind, file.oauth.as_ref())?;

        let limits = Limits::from_file(file, enabled);
        let policy = match &file.disclosure {
            Some(overrides) => crate::domain::policy::Policy::with_overrides(overrides).map_err(ConfigError)?,
            None => crate::domain::policy::Policy::default(),
        };
        Ok(Settings {
            policy,
            deadlines: request_deadlines(file),
            outbox: OutboxSettings::from_file(file),
            web,
            trusted_proxies,
            connections: ConnectionSettings::from_file(file.connections.as_ref()),
            oauth,
            database_url,
            key_file,
            audit_key_file,
            bind,
            limits,
            log_format,
            log,
            allow_public_http,
            request_timeout: Duration::from_secs(file.request_timeout_secs.unwrap_or(30).max(1)),
            max_body_bytes: file.max_body_bytes.unwrap_or(1024 * 1024),
            max_sync_bytes: file.max_sync_bytes.unwrap_or(1024 * 1024 * 1024),
            sync_lease: Duration::from_secs(file.sync_lease_secs.unwrap_or(60).max(1)),
            closed_retention_days: file.closed_retention_days.unwrap_or(730),
            free_text_retention_days: file.free_text_retention_days.unwrap_or(365),
            audit_witness,
            audit_witness_interval: Duration::from_secs(file.audit_witness_interval_secs.unwrap_or(300).max(10)),
            anomaly_rules,
            sources,
        })
    }

    /// Settings for tests and embedding: defaults around the given database and key files.
    pub fn for_database(database_url: &str, key_dir: &Path) -> Settings {
        let args = ConfigArgs {
            database_url: Some(database_url.to_string()),
            key_file: Some(key_dir.join("locator.key")),
            audit_key_file: Some(key_dir.join("locator-audit.key")),
            ..ConfigArgs::default()
        };
        Settings::resolve_with(&args, &FileConfig::default())
            .unwrap_or_else(|e| unreachable!("built-in test settings are valid: {e}"))
    }

    /// Refuses plain HTTP on a non-loopback address unless explicitly allowed: the index serves
    /// bearer tokens and safeguarding contacts, which must never cross a network unencrypted.
    pub fn check_bind(&self) -> Result<(), ConfigError> {
        if self.bind.ip().is_loopback() || self.allow_public_http {
            return Ok(());
        }
        Err(ConfigError(format!(
            "LOCATOR_BIND={} is not a loopback address and child-locator serves plain HTTP; put a TLS \
             reverse proxy in front and set LOCATOR_ALLOW_PUBLIC_HTTP=yes (see docs/operator-guide.md)",
            self.bind
        )))
    }

    /// A readable summary with no secrets, for `locator config`.
    pub fn describe(&self) -> String {
        let source_of = |name: &str| match self.sources.iter().find(|(n, _)| *n == name).map(|(_, s)| *s) {
            Some(Source::FlagOrEnv) => "flag/env",
            Some(Source::File) => "file",
            _ => "default",
        };
        let lines = [
            ("database_url", redact_url(&self.database_url)),
            ("key_file", self.key_file.display().to_string()),
            ("audit_key_file", self.audit_key_file.display().to_string()),
            ("bind", self.bind.to_string()),
            ("rate_limits", if self.limits.enabled { "on" } else { "off" }.to_string()),
            ("log_format", format!("{:?}", self.log_format).to_lowercase()),
            ("log", self.log.clone()),
            ("allow_public_http", if self.allow_public_http { "yes" } else { "no" }.to_string()),
            ("secure_cookies", format!("{:?}", self.web.secure_cookies).to_lowercase()),
            ("trusted_proxies", self.trusted_proxies.describe()),
            ("public_url", self.oauth.token_endpoint.trim_end_matches("/oauth/token").to_string()),
            ("audit_witness", self.audit_witness.as_ref().map_or("none".to_string(), |w| w.describe())),
        ];
        lines.iter().map(|(name, value)| format!("{name} = {value}  ({})\n", source_of(name))).collect()
    }
}

/// The anomaly thresholds: defaults, with any the file sets.
fn anomaly_rules(f: AnomaliesFile) -> Result<crate::domain::anomaly::AnomalyRules, ConfigError> {
    let mut rules = crate::domain::anomaly::AnomalyRules::default();
    rules.day_starts_hour = f.office_hours_start.unwrap_or(rules.day_starts_hour);
    rules.day_ends_hour = f.office_hours_end.unwrap_or(rules.day_ends_hour);
    if rules.day_starts_hour >= rules.day_ends_hour || rules.day_ends_hour > 24 {
        return Err(ConfigError(
            "anomalies: office_hours_start must be before office_hours_end (hours 0 to 24)".into(),
        ));
    }
    rules.weekends_out_of_hours = f.weekends_out_of_hours.unwrap_or(rules.weekends_out_of_hours);
    rules.volume_multiplier =
        f.volume_multiplier.filter(|m| m.is_finite() && *m >= 1.0).unwrap_or(rules.volume_multiplier);
    rules.volume_floor = f.volume_floor.unwrap_or(rules.volume_floor);
    rules.norm_days = f.norm_days.unwrap_or(rules.norm_days).clamp(1, 366);
    rules.repeat_limit = f.repeat_limit.unwrap_or(rules.repeat_limit).max(1);
    if let Some(days) = f.repeat_window_days {
        rules.repeat_window_ms = i64::from(days.clamp(1, 366)) * 86_400_000;
    }
    Ok(rules)
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read configuration file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let detail = e.message().to_string();
        ConfigError(format!("configuration file {}: {detail}", path.display()))
    })
}

/// The key file defaults to `locator.key` beside an SQLite database, or the working directory.
fn default_key_file(database_url: &str) -> PathBuf {
    match sqlite_path(database_url) {
        Some(db) => sibling(&db, "locator.key"),
        None => PathBuf::from("locator.key"),
    }
}

fn sibling(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// The file path inside an `sqlite://PATH` or `sqlite:PATH` URL, without query options.
pub fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Hides a password in a database URL before it is printed or logged.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((credentials, host)) = rest.split_once('@')
    {
        let user = credentials.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl WebSettings {
    /// The `[web]` table over the defaults.
    fn from_file(file: &FileConfig, secure_cookies: SecureCookies) -> WebSettings {
        let mut web = WebSettings { secure_cookies, ..WebSettings::default() };
        if let Some(w) = &file.web {
            if let Some(m) = w.session_idle_minutes {
                web.session_idle = Duration::from_secs(u64::from(m.max(1)) * 60);
            }
            if let Some(h) = w.session_max_hours {
                web.session_max = Duration::from_secs(u64::from(h.max(1)) * 3600);
            }
        }
        web
    }
}

impl Limits {
    /// The `[limits]` table over the defaults; every limit is at least 1.
    fn from_file(file: &FileConfig, enabled: bool) -> Limits {
        let mut limits = Limits { enabled, ..Limits::default() };
        if let Some(l) = &file.limits {
            let set = |target: &mut u32, v: Option<u32>| {
                if let Some(v) = v {
                    *target = v.max(1);
                }
            };
            set(&mut limits.user_lookups_per_minute, l.user_lookups_per_minute);
            set(&mut limits.user_lookup_burst, l.user_lookup_burst);
            set(&mut limits.org_lookups_per_minute, l.org_lookups_per_minute);
            set(&mut limits.org_lookup_burst, l.org_lookup_burst);
            set(&mut limits.user_daily_lookups, l.user_daily_lookups);
            set(&mut limits.failed_auth_per_minute, l.failed_auth_per_minute);
            set(&mut limits.sign_in_starts_per_minute, l.sign_in_starts_per_minute);
            set(&mut limits.refusals_recorded_per_minute, l.refusals_recorded_per_minute);
            set(&mut limits.holdings_churn_floor, l.holdings_churn_floor);
            set(&mut limits.holdings_churn_percent, l.holdings_churn_percent);
            set(&mut limits.enumeration.name_variants_floor, l.sync_name_variants_floor);
            set(&mut limits.enumeration.name_variants_per_mille, l.sync_name_variants_per_mille);
        }
        limits
    }
}

/// The `[requests]` table's deadlines over the defaults; each at least 1.
fn request_deadlines(file: &FileConfig) -> crate::domain::request::Deadlines {
    let mut deadlines = crate::domain::request::Deadlines::default();
    if let Some(r) = &file.requests {
        deadlines.immediate_hours = r.immediate_hours.unwrap_or(deadlines.immediate_hours).max(1);
        deadlines.urgent_hours = r.urgent_hours.unwrap_or(deadlines.urgent_hours).max(1);
        deadlines.routine_working_days = r.routine_working_days.unwrap_or(deadlines.routine_working_days).max(1);
    }
    deadlines
}

impl OutboxSettings {
    /// The `[outbox]` table over the defaults.
    fn from_file(file: &FileConfig) -> OutboxSettings {
        let mut outbox = OutboxSettings::default();
        if let Some(o) = &file.outbox {
            outbox.max_attempts = o.max_attempts.unwrap_or(outbox.max_attempts).max(1);
            outbox.poll = o.poll_secs.map(|s| Duration::from_secs(s.max(1))).unwrap_or(outbox.poll);
            outbox.timeout = o.timeout_secs.map(|s| Duration::from_secs(s.max(1))).unwrap_or(outbox.timeout);
            outbox.allow_http = o.allow_http.unwrap_or(outbox.allow_http);
            outbox.allowed_hosts = o.allowed_hosts.clone().unwrap_or_default();
        }
        outbox
    }
}

/// The database URL, or the embedded default; only SQLite and PostgreSQL are served.
fn database_url(value: Option<String>) -> Result<String, ConfigError> {
    let url = value.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    if ["sqlite:", "postgres://", "postgresql://"].iter().any(|scheme| url.starts_with(scheme)) {
        Ok(url)
    } else {
        Err(ConfigError("LOCATOR_DATABASE_URL must start with sqlite:// or postgres://".into()))
    }
}

fn bind_address(value: Option<String>) -> Result<SocketAddr, ConfigError> {
    let text = value.unwrap_or_else(|| DEFAULT_BIND.to_string());
    text.trim()
        .parse()
        .map_err(|_| ConfigError("LOCATOR_BIND must be an address and port such as 127.0.0.1:8080".into()))
}

const SECURE_COOKIES: &[(&str, SecureCookies)] = &[
    ("auto", SecureCookies::Auto),
    ("yes", SecureCookies::Always),
    ("true", SecureCookies::Always),
    ("no", SecureCookies::Never),
    ("false", SecureCookies::Never),
];

/// A setting that takes one of a few words (spaces around it ignored); unset gives `default`.
fn one_of<T: Clone>(value: Option<String>, default: T, words: &[(&str, T)], refusal: &str) -> Result<T, ConfigError> {
    let Some(value) = value else { return Ok(default) };
    let value = value.trim();
    words.iter().find(|(word, _)| *word == value).map(|(_, v)| v.clone()).ok_or_else(|| ConfigError(refusal.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ConfigArgs {
        ConfigArgs::default()
    }

    #[test]
    fn no_configuration_gives_the_contract_defaults() {
        let s = Settings::resolve_with(&args(), &FileConfig::default()).unwrap();
        assert_eq!(s.database_url, "sqlite://locator.db");
        assert_eq!(s.key_file, PathBuf::from("locator.key"));
        assert_eq!(s.audit_key_file, PathBuf::from("locator-audit.key"));
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(s.limits.enabled);
    }

    #[test]
    fn a_flag_or_environment_value_beats_the_file_and_the_file_beats_the_default() {
        let file = FileConfig {
            bind: Some("127.0.0.1:9000".into()),
            database_url: Some("sqlite://from-file.db".into()),
            ..FileConfig::default()
        };
        let flags = ConfigArgs { bind: Some("127.0.0.1:9999".into()), ..args() };
        let s = Settings::resolve_with(&flags, &file).unwrap();
        assert_eq!(s.bind.port(), 9999);
        assert_eq!(s.database_url, "sqlite://from-file.db");
        assert!(s.describe().contains("bind = 127.0.0.1:9999  (flag/env)"));
        assert!(s.describe().contains("(file)"));
    }

    #[test]
    fn the_key_file_defaults_to_beside_the_sqlite_database() {
        let flags = ConfigArgs { database_url: Some("sqlite:///var/lib/locator/index.db".into()), ..args() };
        let s = Settings::resolve_with(&flags, &FileConfig::default()).unwrap();
        assert_eq!(s.key_file, PathBuf::from("/var/lib/locator/locator.key"));
        assert_eq!(s.audit_key_file, PathBuf::from("/var/lib/locator/locator-audit.key"));
    }

    #[test]
    fn invalid_values_fail_with_one_clear_line() {
        for bad in [
            ConfigArgs { bind: Some("nonsense".into()), ..args() },
            ConfigArgs { rate_limits: Some("maybe".into()), ..args() },
            ConfigArgs { database_url: Some("mysql://x".into()), ..args() },
            ConfigArgs { log_format: Some("xml".into()), ..args() },
        ] {
            let err = Settings::resolve_with(&bad, &FileConfig::default()).unwrap_err().to_string();
            assert!(err.starts_with("invalid configuration: "), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn rate_limits_off_disables_every_limit() {
        let s =
            Settings::resolve_with(&ConfigArgs { rate_limits: Some("off".into()), ..args() }, &FileConfig::default())
                .unwrap();
        assert!(!s.limits.enabled);
    }

    #[test]
    fn request_deadlines_and_outbox_delivery_come_from_the_file() {
        let file: FileConfig = toml::from_str(
            "[requests]\nimmediate_hours = 2\nroutine_working_days = 5\n[outbox]\nmax_attempts = 3\nallow_http = true\n\
             allowed_hosts = [\"hooks.internal\"]\n",
        )
        .unwrap();
        let s = Settings::resolve_with(&args(), &file).unwrap();
        assert_eq!(s.deadlines.immediate_hours, 2);
        assert_eq!(s.deadlines.urgent_hours, 24, "unset values keep their default");
        assert_eq!(s.deadlines.routine_working_days, 5);
        assert_eq!(s.outbox.max_attempts, 3);
        assert!(s.outbox.allow_http);
        assert_eq!(s.outbox.allowed_hosts, ["hooks.internal"]);
        assert!(!Settings::resolve_with(&args(), &FileConfig::default()).unwrap().outbox.allow_http);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let err = toml::from_str::<FileConfig>("bnid = \"x\"").unwrap_err();
        assert!(err.message().contains("unknown field"));
    }

    #[test]
    fn plain_http_on_a_non_loopback_address_is_refused_unless_explicitly_allowed() {
        for loopback in ["127.0.0.1:8080", "[::1]:8080"] {
            let s =
                Settings::resolve_with(&ConfigArgs { bind: Some(loopback.into()), ..args() }, &FileConfig::default())
                    .unwrap();
            assert!(s.check_bind().is_ok(), "{loopback}");
        }
        for public in ["0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080"] {
            let s = Settings::resolve_with(&ConfigArgs { bind: Some(public.into()), ..args() }, &FileConfig::default())
                .unwrap();
            let err = s.check_bind().unwrap_err().to_string();
            assert!(err.contains("LOCATOR_ALLOW_PUBLIC_HTTP=yes") && !err.contains('\n'), "{err}");
            let allowed = ConfigArgs { bind: Some(public.into()), allow_public_http: Some("yes".into()), ..args() };
            assert!(Settings::resolve_with(&allowed, &FileConfig::default()).unwrap().check_bind().is_ok());
            let from_file = FileConfig { allow_public_http: Some("yes".into()), ..FileConfig::default() };
            let s = Settings::resolve_with(&ConfigArgs { bind: Some(public.into()), ..args() }, &from_file).unwrap();
            assert!(s.check_bind().is_ok(), "the file can allow it too");
        }
        let bad = ConfigArgs { allow_public_http: Some("sure".into()), ..args() };
        assert!(Settings::resolve_with(&bad, &FileConfig::default()).is_err());
    }

    #[test]
    fn the_example_configuration_file_parses_and_sets_every_setting() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/locator.example.toml");
        let s = Settings::resolve(&ConfigArgs { config: Some(path.clone()), ..args() }).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let file: FileConfig = toml::from_str(&text).unwrap();
        // Every top-level setting is written out (not left to its default), so the file documents them all.
        assert!(s.sources.iter().all(|(_, source)| *source == Source::File), "{:?}", s.sources);
        assert!(file.request_timeout_secs.is_some() && file.max_body_bytes.is_some() && file.max_sync_bytes.is_some());
        let limits = file.limits.expect("[limits] is in the example");
        assert!(limits.user_lookups_per_minute.is_some() && limits.failed_auth_per_minute.is_some());
        assert!(limits.sign_in_starts_per_minute.is_some());
        assert!(limits.user_lookup_burst.is_some() && limits.org_lookups_per_minute.is_some());
        assert!(limits.org_lookup_burst.is_some() && limits.user_daily_lookups.is_some());
        assert!(file.disclosure.is_some_and(|d| !d.is_empty()), "[disclosure] is in the example");
        let connections = file.connections.expect("[connections] is in the example");
        assert!(connections.idle_timeout_secs.is_some() && connections.max.is_some());
        assert!(connections.max_per_client.is_some());
        assert!(s.database_url.starts_with("postgres://"));
    }

    #[test]
    fn the_witness_and_anomaly_thresholds_come_from_configuration() {
        let file: FileConfig = toml::from_str(
            "audit_witness = \"/srv/witness/audit.log\"\n[anomalies]\noffice_hours_start = 7\nvolume_floor = 25\n",
        )
        .unwrap();
        let s = Settings::resolve_with(&args(), &file).unwrap();
        assert!(matches!(s.audit_witness, Some(crate::audit::witness::WitnessTarget::File(_))));
        assert_eq!(s.audit_witness_interval, Duration::from_secs(300));
        assert_eq!((s.anomaly_rules.day_starts_hour, s.anomaly_rules.volume_floor), (7, 25));
        assert_eq!(s.anomaly_rules.day_ends_hour, 18);
        let https = ConfigArgs { audit_witness: Some("https://witness.example/".into()), ..args() };
        assert!(Settings::resolve_with(&https, &FileConfig::default()).is_ok(), "https witnesses are supported");
        let backwards: FileConfig = toml::from_str("[anomalies]\noffice_hours_start = 19\n").unwrap();
        assert!(Settings::resolve_with(&args(), &backwards).is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let p = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1,2001:db8::/32").unwrap();
        for inside in ["10.200.3.4", "192.0.2.1", "2001:db8::7", "::ffff:10.0.0.1"] {
            assert!(p.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["11.0.0.1", "192.0.2.2", "2001:db9::1"] {
            assert!(!p.contains(outside.parse().unwrap()), "{outside}");
        }
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        let flags = ConfigArgs { trusted_proxies: Some("127.0.0.1".into()), ..args() };
        let s = Settings::resolve_with(&flags, &FileConfig::default()).unwrap();
        assert!(s.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(s.describe().contains("trusted_proxies = 127.0.0.1/32"));
    }

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact_url("sqlite://locator.db"), "sqlite://locator.db");
    }
}
