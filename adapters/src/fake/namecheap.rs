//! Fake Namecheap XML API (registrars.md §2, §8).
//!
//! Enforces: GET query or POST `application/x-www-form-urlencoded` form on
//! `/xml.response`; the global parameters `ApiUser`, `ApiKey`, `UserName`,
//! `ClientIp` (IPv4) and `Command` with exact names; the key; the source-IP
//! whitelist checked against the *connection's* address (1011150), as the
//! real API does; `Command` routing; HTTP 200 XML envelopes with
//! `Status="OK"|"ERROR"`; HTTP 405 past the request budget; SLD/TLD pairs
//! that must form a registrable domain (PSL); `PageSize` 10..=100; at least 2
//! custom nameservers; IPv4-only host objects under the domain, with `OldIP`
//! checked on update; `dns.setHosts`/`dns.getHosts` only while the domain
//! is on Namecheap's own DNS (2030288 otherwise), with 1-indexed
//! `HostName`/`RecordType`/`Address`/`TTL`/`MXPref` and `EmailType=MX` for MX
//! records, as a full replace. State: per-domain NS, custom/default flag,
//! glue and host records.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Form, Router};

use super::{valid_host, xml_escape, FakeCommon, FakeServer, Gate};

/// Namecheap's own nameservers, restored by `dns.setDefault`.
pub const DEFAULT_NS: [&str; 2] = ["dns1.registrar-servers.com", "dns2.registrar-servers.com"];

/// One host record as the fake stores it (Namecheap's own words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHostRecord {
    /// `HostName` (`@` is the apex).
    pub name: String,
    /// `RecordType`, upper case.
    pub rtype: String,
    /// `Address`.
    pub address: String,
    /// `TTL`.
    pub ttl: u32,
    /// `MXPref` (Namecheap shows 10 for records that have none).
    pub mx_pref: u16,
}

/// One domain in the fake account.
#[derive(Debug, Clone)]
struct Domain {
    ns: Vec<String>,
    custom: bool,
    hosts: BTreeMap<String, Ipv4Addr>,
    records: Vec<FakeHostRecord>,
    email_type: String,
}

/// What a new domain on Namecheap's BasicDNS has: the parking page.
fn parking_records(domain: &str) -> Vec<FakeHostRecord> {
    vec![
        FakeHostRecord {
            name: "@".into(),
            rtype: "URL".into(),
            address: format!("http://www.{domain}/"),
            ttl: 1800,
            mx_pref: 10,
        },
        FakeHostRecord {
            name: "www".into(),
            rtype: "CNAME".into(),
            address: "parkingpage.namecheap.com.".into(),
            ttl: 1800,
            mx_pref: 10,
        },
    ]
}

/// Record types `setHosts` accepts.
const RECORD_TYPES: [&str; 12] = [
    "A", "AAAA", "ALIAS", "CAA", "CNAME", "MX", "MXE", "NS", "TXT", "URL", "URL301", "FRAME",
];

#[derive(Debug)]
struct State_ {
    api_user: String,
    api_key: String,
    user_name: String,
    whitelist: Vec<IpAddr>,
    eligible: bool,
    domains: BTreeMap<String, Domain>,
    foreign: BTreeSet<String>,
}

/// The fake Namecheap account and server state.
#[derive(Debug)]
pub struct FakeNamecheap {
    common: FakeCommon,
    state: Mutex<State_>,
}

impl FakeNamecheap {
    /// A fake account for `api_user` (also the UserName) with `api_key`; the
    /// whitelist allows 127.0.0.1.
    pub fn new(api_user: &str, api_key: &str) -> Arc<Self> {
        Arc::new(Self {
            common: FakeCommon::default(),
            state: Mutex::new(State_ {
                api_user: api_user.into(),
                api_key: api_key.into(),
                user_name: api_user.into(),
                whitelist: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                eligible: true,
                domains: BTreeMap::new(),
                foreign: BTreeSet::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counters, budget and failure injection.
    pub fn common(&self) -> &FakeCommon {
        &self.common
    }

    /// Adds `domain` to the account, on Namecheap's default nameservers.
    pub fn add_domain(&self, domain: &str) {
        let name = domain.to_ascii_lowercase();
        self.lock().domains.insert(
            name.clone(),
            Domain {
                ns: DEFAULT_NS.iter().map(|s| s.to_string()).collect(),
                custom: false,
                hosts: BTreeMap::new(),
                records: parking_records(&name),
                email_type: "NONE".into(),
            },
        );
    }

    /// The host records on Namecheap's DNS for `domain`, in `getHosts` order.
    pub fn host_records(&self, domain: &str) -> Vec<FakeHostRecord> {
        self.lock()
            .domains
            .get(&domain.to_ascii_lowercase())
            .map(|d| d.records.clone())
            .unwrap_or_default()
    }

    /// The domain's `EmailType` (`MX` once MX records were set).
    pub fn email_type(&self, domain: &str) -> Option<String> {
        self.lock()
            .domains
            .get(&domain.to_ascii_lowercase())
            .map(|d| d.email_type.clone())
    }

    /// Registers `domain` at Namecheap under another account (error 2016166).
    pub fn add_foreign_domain(&self, domain: &str) {
        self.lock().foreign.insert(domain.to_ascii_lowercase());
    }

    /// Replaces the source-IP whitelist.
    pub fn set_whitelist(&self, ips: Vec<IpAddr>) {
        self.lock().whitelist = ips;
    }

    /// Makes the account (in)eligible for API access.
    pub fn set_eligible(&self, eligible: bool) {
        self.lock().eligible = eligible;
    }

    /// The NS the fake registry has for `domain`.
    pub fn ns(&self, domain: &str) -> Vec<String> {
        self.lock()
            .domains
            .get(&domain.to_ascii_lowercase())
            .map(|d| d.ns.clone())
            .unwrap_or_default()
    }

    /// The glue IP for `host` under `domain`.
    pub fn glue(&self, domain: &str, host: &str) -> Option<Ipv4Addr> {
        self.lock()
            .domains
            .get(&domain.to_ascii_lowercase())
            .and_then(|d| d.hosts.get(host).copied())
    }

    /// Presets glue for `host` under `domain`.
    pub fn set_glue(&self, domain: &str, host: &str, ip: Ipv4Addr) {
        if let Some(d) = self.lock().domains.get_mut(&domain.to_ascii_lowercase()) {
            d.hosts.insert(host.to_ascii_lowercase(), ip);
        }
    }

    /// The axum router (`/xml.response`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/xml.response", any(handle))
            .with_state(self.clone())
    }

    /// Starts the fake on loopback; the endpoint is `base_url() + "/xml.response"`.
    pub async fn start(self: &Arc<Self>) -> std::io::Result<FakeServer> {
        FakeServer::start(self.router()).await
    }
}

fn envelope(command: &str, status: &str, errors: &str, body: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <ApiResponse Status=\"{status}\" xmlns=\"http://api.namecheap.com/xml.response\">\
         <Errors>{errors}</Errors><Warnings /><RequestedCommand>{}</RequestedCommand>\
         {body}<Server>FAKE01</Server><GMTTimeDifference>--5:00</GMTTimeDifference>\
         <ExecutionTime>0.01</ExecutionTime></ApiResponse>",
        xml_escape(command)
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

fn error(command: &str, number: &str, message: &str) -> Response {
    let e = format!("<Error Number=\"{number}\">{}</Error>", xml_escape(message));
    envelope(command, "ERROR", &e, "<CommandResponse />")
}

fn ok(command: &str, inner: &str) -> Response {
    envelope(
        command,
        "OK",
        "",
        &format!(
            "<CommandResponse Type=\"{}\">{inner}</CommandResponse>",
            xml_escape(command)
        ),
    )
}

async fn handle(
    State(fake): State<Arc<FakeNamecheap>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(pairs)) = form else {
        // Wrong content type or unparseable form: Namecheap answers a generic error.
        return error("", "1010104", "Parameter Command is missing");
    };
    let params: BTreeMap<String, String> = pairs.into_iter().collect();
    let command = params.get("Command").cloned().unwrap_or_default();
    let route = if command.is_empty() {
        "(none)".to_string()
    } else {
        command.to_ascii_lowercase()
    };
    match fake.common.admit(&route) {
        Gate::Pass => {}
        // Rate limiting is a bare HTTP 405, no XML and no Retry-After (registrars.md §2).
        Gate::RateLimited { .. } => {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>405 - Too many requests</h1></body></html>",
            )
                .into_response()
        }
        Gate::ServerError(code) => {
            return (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Service Unavailable",
            )
                .into_response()
        }
    }
    let mut st = fake.lock();
    for (name, number) in [
        ("ApiUser", "1010101"),
        ("ApiKey", "1010102"),
        ("UserName", "1010103"),
        ("ClientIp", "1010105"),
    ] {
        if params.get(name).is_none_or(|v| v.is_empty()) {
            return error(&command, number, &format!("Parameter {name} is missing"));
        }
    }
    if command.is_empty() {
        return error(&command, "1010104", "Parameter Command is missing");
    }
    if params.get("ApiUser") != Some(&st.api_user)
        || params.get("ApiKey") != Some(&st.api_key)
        || params.get("UserName") != Some(&st.user_name)
    {
        return error(
            &command,
            "1011102",
            "API Key is invalid or API access has not been enabled",
        );
    }
    if params
        .get("ClientIp")
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .is_none()
    {
        return error(&command, "1011105", "Parameter ClientIP is invalid");
    }
    // The real check is on the source address of the connection, not the parameter.
    if !st.whitelist.contains(&peer.ip()) {
        return error(
            &command,
            "1011150",
            &format!("Invalid request IP: {}", peer.ip()),
        );
    }
    if !st.eligible {
        return error(&command, "4011103", "Access denied");
    }
    let p = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    match command.as_str() {
        "namecheap.users.getBalances" => ok(
            &command,
            "<UserGetBalancesResult Currency=\"USD\" AvailableBalance=\"60.00\" AccountBalance=\"60.00\" />",
        ),
        "namecheap.domains.getList" => {
            let page: usize = match p("Page") {
                "" => 1,
                v => match v.parse() {
                    Ok(n) if n >= 1 => n,
                    _ => return error(&command, "2011170", "Parameter Page is invalid"),
                },
            };
            let size: usize = match p("PageSize") {
                "" => 20,
                v => match v.parse() {
                    Ok(n) if (10..=100).contains(&n) => n,
                    _ => return error(&command, "2011170", "PageSize should be between 10 and 100"),
                },
            };
            let total = st.domains.len();
            let rows: String = st
                .domains
                .keys()
                .skip((page - 1) * size)
                .take(size)
                .enumerate()
                .map(|(i, name)| {
                    format!(
                        "<Domain ID=\"{}\" Name=\"{}\" User=\"{}\" Created=\"06/02/2021\" Expires=\"06/02/2030\" \
                         IsExpired=\"false\" IsLocked=\"false\" AutoRenew=\"true\" WhoisGuard=\"ENABLED\" \
                         IsPremium=\"false\" IsOurDNS=\"true\" />",
                        (page - 1) * size + i + 1,
                        xml_escape(name),
                        xml_escape(&st.user_name)
                    )
                })
                .collect();
            ok(
                &command,
                &format!(
                    "<DomainGetListResult>{rows}</DomainGetListResult><Paging><TotalItems>{total}</TotalItems>\
                     <CurrentPage>{page}</CurrentPage><PageSize>{size}</PageSize></Paging>"
                ),
            )
        }
        "namecheap.domains.getInfo" => {
            let name = p("DomainName").to_ascii_lowercase();
            match st.domains.get(&name) {
                Some(d) => ok(
                    &command,
                    &format!(
                        "<DomainGetInfoResult Status=\"Ok\" DomainName=\"{}\" IsOwner=\"true\"><DnsDetails \
                         ProviderType=\"{}\" IsUsingOurDNS=\"{}\">{}</DnsDetails></DomainGetInfoResult>",
                        xml_escape(&name),
                        if d.custom { "CUSTOM" } else { "FREE" },
                        !d.custom,
                        ns_xml(&d.ns)
                    ),
                ),
                None => missing(&st, &command, &name),
            }
        }
        "namecheap.domains.dns.getList"
        | "namecheap.domains.dns.getHosts"
        | "namecheap.domains.dns.setHosts"
        | "namecheap.domains.dns.setCustom"
        | "namecheap.domains.dns.setDefault"
        | "namecheap.domains.ns.create"
        | "namecheap.domains.ns.update"
        | "namecheap.domains.ns.getInfo"
        | "namecheap.domains.ns.delete" => {
            let (sld, tld) = (p("SLD").to_ascii_lowercase(), p("TLD").to_ascii_lowercase());
            if sld.is_empty() || tld.is_empty() {
                return error(&command, "2010324", "Parameters SLD and TLD are required");
            }
            let name = format!("{sld}.{tld}");
            // SLD/TLD must be exactly the PSL split (catches `example.co` + `uk`).
            let valid = crate::names::split_registrable(&name)
                .map(|d| d.sld() == sld && d.tld() == tld)
                .unwrap_or(false);
            if !valid {
                return error(&command, "2030166", "Domain is invalid");
            }
            if !st.domains.contains_key(&name) {
                return missing(&st, &command, &name);
            }
            domain_command(&fake, &mut st, &command, &name, &params)
        }
        _ => error(&command, "1010106", "Invalid Command"),
    }
}

fn missing(st: &State_, command: &str, name: &str) -> Response {
    if st.foreign.contains(name) {
        error(
            command,
            "2016166",
            "Domain is not associated with your account",
        )
    } else {
        error(command, "2019166", "Domain not found")
    }
}

fn ns_xml(ns: &[String]) -> String {
    ns.iter()
        .map(|n| format!("<Nameserver>{}</Nameserver>", xml_escape(n)))
        .collect()
}

fn domain_command(
    fake: &FakeNamecheap,
    st: &mut State_,
    command: &str,
    name: &str,
    params: &BTreeMap<String, String>,
) -> Response {
    let p = |k: &str| {
        params
            .get(k)
            .map(String::as_str)
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let Some(d) = st.domains.get_mut(name) else {
        return error(command, "2019166", "Domain not found");
    };
    let attrs = |extra: &str| format!("Domain=\"{}\"{extra}", xml_escape(name));
    match command {
        "namecheap.domains.dns.getList" => ok(
            command,
            &format!(
                "<DomainDNSGetListResult {} IsUsingOurDNS=\"{}\" IsPremiumDNS=\"false\" \
                 IsUsingFreeDNS=\"false\">{}</DomainDNSGetListResult>",
                attrs(""),
                !d.custom,
                ns_xml(&d.ns)
            ),
        ),
        "namecheap.domains.dns.setCustom" => {
            let raw = p("Nameservers");
            if raw.len() > 1200 {
                return error(command, "2011280", "Nameservers exceeds 1200 characters");
            }
            let hosts: Vec<String> = raw
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect();
            if hosts.len() < 2 {
                return error(command, "2011280", "At least two nameservers are required");
            }
            if let Some(bad) = hosts.iter().find(|h| !valid_host(h)) {
                return error(command, "2011280", &format!("Invalid nameserver: {bad}"));
            }
            d.ns = hosts;
            d.custom = true;
            fake.common.counters.record_write(name);
            ok(
                command,
                &format!(
                    "<DomainDNSSetCustomResult {} Updated=\"true\" />",
                    attrs("")
                ),
            )
        }
        "namecheap.domains.dns.getHosts" | "namecheap.domains.dns.setHosts" if d.custom => error(
            command,
            "2030288",
            "Cannot complete this command as this domain is not using proper DNS servers",
        ),
        "namecheap.domains.dns.getHosts" => {
            let rows: String = d
                .records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    format!(
                        "<host HostId=\"{}\" Name=\"{}\" Type=\"{}\" Address=\"{}\" MXPref=\"{}\" \
                         TTL=\"{}\" AssociatedAppTitle=\"\" FriendlyName=\"\" IsActive=\"true\" \
                         IsDDNSEnabled=\"false\" />",
                        i + 1,
                        xml_escape(&r.name),
                        xml_escape(&r.rtype),
                        xml_escape(&r.address),
                        r.mx_pref,
                        r.ttl
                    )
                })
                .collect();
            ok(
                command,
                &format!(
                    "<DomainDNSGetHostsResult {} EmailType=\"{}\" IsUsingOurDNS=\"true\">{rows}</DomainDNSGetHostsResult>",
                    attrs(""),
                    xml_escape(&d.email_type)
                ),
            )
        }
        "namecheap.domains.dns.setHosts" => {
            let records = match host_records_from(params) {
                Ok(r) => r,
                Err((number, message)) => return error(command, number, &message),
            };
            let email_type = p("EmailType");
            let has_mx = records.iter().any(|r| r.rtype == "MX");
            // [U] error number; the rule (MX needs EmailType=MX) is the documented one.
            if has_mx && email_type != "MX" {
                return error(
                    command,
                    "2011280",
                    "EmailType must be MX when MX records are given",
                );
            }
            d.records = records;
            if !email_type.is_empty() {
                d.email_type = email_type;
            }
            fake.common.counters.record_write(name);
            ok(
                command,
                &format!(
                    "<DomainDNSSetHostsResult {} IsSuccess=\"true\"><Warnings /></DomainDNSSetHostsResult>",
                    attrs("")
                ),
            )
        }
        "namecheap.domains.dns.setDefault" => {
            d.ns = DEFAULT_NS.iter().map(|s| s.to_string()).collect();
            d.custom = false;
            fake.common.counters.record_write(name);
            ok(
                command,
                &format!(
                    "<DomainDNSSetDefaultResult {} Updated=\"true\" />",
                    attrs("")
                ),
            )
        }
        _ => {
            let host = p("Nameserver").to_ascii_lowercase();
            if host.is_empty() {
                return error(command, "2010325", "Parameter Nameserver is missing");
            }
            if !host.ends_with(&format!(".{name}")) || !valid_host(&host) {
                return error(command, "2030166", "Nameserver is invalid for this domain");
            }
            let ip_param = |k: &str| -> Result<Ipv4Addr, Response> {
                let v = p(k);
                // IPv4 only, MaxLength 15.
                if v.len() > 15 {
                    return Err(error(
                        command,
                        "2011331",
                        &format!("Parameter {k} is invalid"),
                    ));
                }
                v.parse::<Ipv4Addr>()
                    .map_err(|_| error(command, "2011331", &format!("Parameter {k} is invalid")))
            };
            match command {
                "namecheap.domains.ns.getInfo" => match d.hosts.get(&host) {
                    Some(ip) => ok(
                        command,
                        &format!(
                            "<DomainNSInfoResult {} IP=\"{ip}\"><NameserverStatuses><Status>OK</Status>\
                             <Status>Linked</Status></NameserverStatuses></DomainNSInfoResult>",
                            attrs(&format!(" Nameserver=\"{}\"", xml_escape(&host)))
                        ),
                    ),
                    // [U] Enom-backed error text for an unknown host object.
                    None => error(command, "3031510", "Error From Enom when Errorcount <> 0 (Nameserver does not exist)"),
                },
                "namecheap.domains.ns.create" => {
                    let ip = match ip_param("IP") {
                        Ok(ip) => ip,
                        Err(r) => return r,
                    };
                    if d.hosts.contains_key(&host) {
                        return error(command, "3031510", "Error From Enom when Errorcount <> 0 (Nameserver already exists)");
                    }
                    d.hosts.insert(host.clone(), ip);
                    fake.common.counters.record_write(name);
                    ok(
                        command,
                        &format!(
                            "<DomainNSCreateResult {} IP=\"{ip}\" IsSuccess=\"true\" />",
                            attrs(&format!(" Nameserver=\"{}\"", xml_escape(&host)))
                        ),
                    )
                }
                "namecheap.domains.ns.update" => {
                    let (old, ip) = match (ip_param("OldIP"), ip_param("IP")) {
                        (Ok(o), Ok(i)) => (o, i),
                        (Err(r), _) | (_, Err(r)) => return r,
                    };
                    match d.hosts.get_mut(&host) {
                        None => error(command, "3031510", "Error From Enom when Errorcount <> 0 (Nameserver does not exist)"),
                        Some(cur) if *cur != old => error(command, "2011331", "OldIP does not match the current IP"),
                        Some(cur) => {
                            *cur = ip;
                            fake.common.counters.record_write(name);
                            ok(
                                command,
                                &format!(
                                    "<DomainNSUpdateResult {} IsSuccess=\"true\" />",
                                    attrs(&format!(" Nameserver=\"{}\"", xml_escape(&host)))
                                ),
                            )
                        }
                    }
                }
                "namecheap.domains.ns.delete" => {
                    if d.hosts.remove(&host).is_none() {
                        return error(command, "3031510", "Error From Enom when Errorcount <> 0 (Nameserver does not exist)");
                    }
                    fake.common.counters.record_write(name);
                    ok(
                        command,
                        &format!(
                            "<DomainNSDeleteResult {} IsSuccess=\"true\" />",
                            attrs(&format!(" Nameserver=\"{}\"", xml_escape(&host)))
                        ),
                    )
                }
                _ => error(command, "1010106", "Invalid Command"),
            }
        }
    }
}

/// The records of a `setHosts` form: indexes 1..=n with no gaps, every
/// record with `HostName`, `RecordType` and `Address`, a `TTL` of 60..=60000
/// (default 1800), and `MXPref` on MX records. Errors are (number, message);
/// [U] the numbers, as Namecheap does not document per-parameter codes.
fn host_records_from(
    params: &BTreeMap<String, String>,
) -> Result<Vec<FakeHostRecord>, (&'static str, String)> {
    const FIELDS: [&str; 5] = ["HostName", "RecordType", "Address", "TTL", "MXPref"];
    let mut indexes = BTreeSet::new();
    for key in params.keys() {
        for f in FIELDS {
            if let Some(n) = key.strip_prefix(f) {
                match n.parse::<usize>() {
                    Ok(n) if n >= 1 => {
                        indexes.insert(n);
                    }
                    _ => return Err(("2011170", format!("Parameter {key} is invalid"))),
                }
            }
        }
    }
    let count = indexes.len();
    if count == 0 {
        return Err(("2010324", "Parameter HostName1 is missing".into()));
    }
    if indexes.iter().copied().ne(1..=count) {
        return Err((
            "2011170",
            "Host record indexes must start at 1 without gaps".into(),
        ));
    }
    let mut out = Vec::with_capacity(count);
    for n in 1..=count {
        let get = |f: &str| params.get(&format!("{f}{n}")).map(|v| v.trim().to_string());
        let (Some(name), Some(rtype), Some(address)) =
            (get("HostName"), get("RecordType"), get("Address"))
        else {
            return Err((
                "2010324",
                format!("HostName{n}, RecordType{n} and Address{n} are required"),
            ));
        };
        let rtype = rtype.to_ascii_uppercase();
        if !RECORD_TYPES.contains(&rtype.as_str()) {
            return Err(("2011170", format!("RecordType{n} is invalid")));
        }
        if name.is_empty() || address.is_empty() {
            return Err((
                "2011170",
                format!("HostName{n} and Address{n} must not be empty"),
            ));
        }
        let valid_address = match rtype.as_str() {
            "A" => address.parse::<Ipv4Addr>().is_ok(),
            "AAAA" => address.parse::<std::net::Ipv6Addr>().is_ok(),
            _ => true,
        };
        if !valid_address {
            return Err(("2011170", format!("Address{n} is invalid for {rtype}")));
        }
        let ttl = match get("TTL") {
            None => 1800,
            Some(t) => match t.parse::<u32>() {
                Ok(t) if (60..=60000).contains(&t) => t,
                _ => return Err(("2011170", format!("TTL{n} must be between 60 and 60000"))),
            },
        };
        let mx_pref = match (rtype.as_str(), get("MXPref")) {
            ("MX", None) => return Err(("2010324", format!("MXPref{n} is required for MX"))),
            (_, None) => 10,
            (_, Some(v)) => match v.parse::<u16>() {
                Ok(v) => v,
                Err(_) => return Err(("2011170", format!("MXPref{n} is invalid"))),
            },
        };
        out.push(FakeHostRecord {
            name,
            rtype,
            address,
            ttl,
            mx_pref,
        });
    }
    Ok(out)
}
