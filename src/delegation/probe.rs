//! The DNS side of the propagation check: find the parent zone's
//! authoritative servers and ask each of them, directly and without
//! recursion (RD=0), for the child's NS (the referral's authority section)
//! and DS. UDP with EDNS (1232 bytes), TCP when the answer is truncated.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use pdm_adapters::DsData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::propagation::Observation;
use crate::config::DelegationConfig;

/// Referrals followed from the root before giving up.
const MAX_DEPTH: usize = 16;
/// Servers tried at one level before giving up.
const MAX_TRIES: usize = 4;

/// Asks parent servers about a child's delegation.
#[derive(Debug, Clone)]
pub struct Prober {
    parent_servers: Vec<SocketAddr>,
    root_hints: Vec<SocketAddr>,
    timeout: Duration,
}

/// A parent server: address and, when found iteratively, host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentServer {
    /// Where to send queries.
    pub addr: SocketAddr,
    /// NS host name, when known.
    pub host: Option<String>,
}

impl Prober {
    /// From the `[delegation]` section.
    pub fn from_config(c: &DelegationConfig) -> Self {
        Self {
            parent_servers: c.parent_servers.clone(),
            root_hints: c.root_hints.clone(),
            timeout: Duration::from_millis(c.query_timeout_ms),
        }
    }

    /// Asks every parent server of `child` for its NS and DS.
    pub async fn observe(&self, child: &Name) -> Result<Vec<Observation>, String> {
        let servers = self.parent_servers(child).await?;
        let asks = servers.iter().map(|s| async move {
            let (ns, ds) = tokio::join!(self.ask_ns(s.addr, child), self.ask_ds(s.addr, child));
            Observation {
                server: s.addr.to_string(),
                host: s.host.clone(),
                ns,
                ds,
            }
        });
        Ok(futures_join_all(asks).await)
    }

    /// The parent zone's servers: the configured ones, else found by
    /// following referrals from the root hints.
    pub async fn parent_servers(&self, child: &Name) -> Result<Vec<ParentServer>, String> {
        if !self.parent_servers.is_empty() {
            return Ok(self
                .parent_servers
                .iter()
                .map(|a| ParentServer {
                    addr: *a,
                    host: None,
                })
                .collect());
        }
        self.find_parent(child, 0).await
    }

    fn find_parent<'a>(
        &'a self,
        child: &'a Name,
        nesting: usize,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<ParentServer>, String>> + Send + 'a>,
    > {
        Box::pin(async move {
            if nesting > 3 {
                return Err("nameserver addresses nest too deeply".into());
            }
            let mut servers: Vec<ParentServer> = self
                .root_hints
                .iter()
                .map(|a| ParentServer {
                    addr: *a,
                    host: None,
                })
                .collect();
            let mut zone = Name::root();
            for _ in 0..MAX_DEPTH {
                let resp = self.ask_any(&servers, child, RecordType::NS).await?;
                if resp.metadata.response_code == ResponseCode::NXDomain {
                    return Err(format!("{zone} says {child} does not exist"));
                }
                let child_ns = resp
                    .authorities
                    .iter()
                    .chain(resp.answers.iter())
                    .any(|r| r.record_type() == RecordType::NS && r.name == *child);
                if child_ns {
                    return Ok(servers);
                }
                let cut = resp
                    .authorities
                    .iter()
                    .filter(|r| r.record_type() == RecordType::NS)
                    .map(|r| r.name.clone())
                    .find(|n| n.zone_of(child) && n.num_labels() > zone.num_labels());
                let Some(cut) = cut else {
                    return Err(format!(
                        "the {zone} servers give no referral towards {child}"
                    ));
                };
                let mut next = Vec::new();
                for r in resp.authorities.iter().filter(|r| r.name == cut) {
                    let RData::NS(ns) = &r.data else { continue };
                    let host = ns.0.clone();
                    let mut addrs: Vec<IpAddr> = resp
                        .additionals
                        .iter()
                        .filter(|a| a.name == host)
                        .filter_map(|a| match &a.data {
                            RData::A(v4) => Some(IpAddr::V4(v4.0)),
                            _ => None,
                        })
                        .collect();
                    if addrs.is_empty() && !cut.zone_of(&host) {
                        addrs = self
                            .resolve_v4(&host, nesting + 1)
                            .await
                            .unwrap_or_default();
                    }
                    for a in addrs {
                        next.push(ParentServer {
                            addr: SocketAddr::new(a, 53),
                            host: Some(host.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
                        });
                    }
                }
                if next.is_empty() {
                    return Err(format!("no address for any nameserver of {cut}"));
                }
                servers = next;
                zone = cut;
            }
            Err(format!("more than {MAX_DEPTH} referrals towards {child}"))
        })
    }

    /// IPv4 addresses of `host`, resolved iteratively from the root.
    async fn resolve_v4(&self, host: &Name, nesting: usize) -> Result<Vec<IpAddr>, String> {
        let servers = self.find_parent(host, nesting).await?;
        // The parent of `host` refers to the zone holding it: ask there.
        let resp = self.ask_any(&servers, host, RecordType::NS).await?;
        let mut zone_servers = Vec::new();
        for r in resp
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
        {
            if let RData::NS(ns) = &r.data {
                for a in resp.additionals.iter().filter(|a| a.name == ns.0) {
                    if let RData::A(v4) = &a.data {
                        zone_servers.push(ParentServer {
                            addr: SocketAddr::new(IpAddr::V4(v4.0), 53),
                            host: None,
                        });
                    }
                }
            }
        }
        if zone_servers.is_empty() {
            zone_servers = servers;
        }
        let resp = self.ask_any(&zone_servers, host, RecordType::A).await?;
        Ok(resp
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(v4) => Some(IpAddr::V4(v4.0)),
                _ => None,
            })
            .collect())
    }

    async fn ask_any(
        &self,
        servers: &[ParentServer],
        name: &Name,
        t: RecordType,
    ) -> Result<Message, String> {
        let mut last = "no servers to ask".to_string();
        for s in servers.iter().take(MAX_TRIES) {
            match query(s.addr, name, t, self.timeout).await {
                Ok(m) if m.metadata.response_code == ResponseCode::Refused => {
                    last = format!("{} refused", s.addr);
                }
                Ok(m) => return Ok(m),
                Err(e) => last = format!("{}: {e}", s.addr),
            }
        }
        Err(last)
    }

    /// Whether the parent's servers delegate `child` to a server outside
    /// `ours` (pdm's own nameservers, lower-case without the dot): the first
    /// such `(parent server, NS host)`, `None` when every parent server shows
    /// no delegation or one to pdm alone. Fails only when no parent server
    /// answers, so "cannot tell" is never read as "not live".
    pub async fn delegated_elsewhere(
        &self,
        child: &Name,
        ours: &[String],
    ) -> Result<Option<(String, String)>, String> {
        let servers = self.parent_servers(child).await?;
        let mut answered = 0;
        let mut last = String::from("no parent servers");
        for s in &servers {
            match self.ask_ns(s.addr, child).await {
                Ok(ns) => {
                    answered += 1;
                    let foreign = ns.iter().find(|h| {
                        let h = h.trim_end_matches('.').to_ascii_lowercase();
                        !ours.contains(&h)
                    });
                    if let Some(h) = foreign {
                        return Ok(Some((s.addr.to_string(), h.clone())));
                    }
                }
                Err(e) => last = format!("{}: {e}", s.addr),
            }
        }
        if answered == 0 {
            return Err(last);
        }
        Ok(None)
    }

    /// The NS a parent server delegates `child` to (empty when it has no delegation).
    pub async fn ask_ns(&self, server: SocketAddr, child: &Name) -> Result<Vec<String>, String> {
        let m = query(server, child, RecordType::NS, self.timeout).await?;
        match m.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            other => return Err(format!("answered {other}")),
        }
        // A referral (authority section), or an answer when the server is
        // authoritative for the child too.
        let ns: Vec<String> = m
            .authorities
            .iter()
            .chain(m.answers.iter())
            .filter(|r| r.name == *child)
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some(ns.0.to_ascii()),
                _ => None,
            })
            .collect();
        Ok(ns)
    }

    /// The DS a parent server holds for `child` (empty when none).
    pub async fn ask_ds(&self, server: SocketAddr, child: &Name) -> Result<Vec<DsData>, String> {
        let m = query(server, child, RecordType::DS, self.timeout).await?;
        match m.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            other => return Err(format!("answered {other}")),
        }
        Ok(m.answers
            .iter()
            .filter(|r| r.name == *child)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DS(ds)) => Some(DsData {
                    key_tag: ds.key_tag(),
                    algorithm: u8::from(ds.algorithm()),
                    digest_type: u8::from(ds.digest_type()),
                    digest: hex::encode(ds.digest()),
                }),
                _ => None,
            })
            .collect())
    }
}

async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = futs.into_iter().collect();
    // Few servers (13 at most for a TLD): run them together on this task.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

/// One non-recursive query to `server`: UDP (EDNS, 1232 bytes), then TCP if truncated.
pub async fn query(
    server: SocketAddr,
    name: &Name,
    t: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let mut msg = Message::query();
    msg.metadata.id = rand::random();
    msg.metadata.recursion_desired = false;
    msg.add_query(Query::query(name.clone(), t));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(true);
    msg.set_edns(edns);
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    let id = msg.metadata.id;
    let udp = tokio::time::timeout(timeout, udp_exchange(server, &bytes, id))
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))??;
    let resp = check(udp, id, name, t)?;
    if !resp.metadata.truncation {
        return Ok(resp);
    }
    let tcp = tokio::time::timeout(timeout, tcp_exchange(server, &bytes))
        .await
        .map_err(|_| format!("no TCP answer within {} ms", timeout.as_millis()))??;
    check(tcp, id, name, t)
}

fn check(bytes: Vec<u8>, id: u16, name: &Name, t: RecordType) -> Result<Message, String> {
    let m = Message::from_vec(&bytes).map_err(|e| format!("unparseable answer: {e}"))?;
    if m.metadata.id != id || m.metadata.message_type != MessageType::Response {
        return Err("answer does not match the query".into());
    }
    match m.queries.first() {
        Some(q) if q.name() == name && q.query_type() == t => Ok(m),
        _ => Err("answer is for another question".into()),
    }
}

async fn udp_exchange(server: SocketAddr, bytes: &[u8], id: u16) -> Result<Vec<u8>, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "bind address")?
    } else {
        "[::]:0".parse().map_err(|_| "bind address")?
    };
    let sock = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
        // Ignore stray datagrams with another id (the caller's timeout bounds this).
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Ok(buf[..n].to_vec());
        }
    }
}

async fn tcp_exchange(server: SocketAddr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|_| "query too long")?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    s.write_all(&framed).await.map_err(|e| e.to_string())?;
    let mut lenb = [0u8; 2];
    s.read_exact(&mut lenb).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lenb))];
    s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(buf)
}
