//! DNS queries: [`dig_at`] (one UDP query, parsed), [`dig_tcp_at`] (one over TCP; [`query_tcp_at`] undigested), [`DigResult`] and [`Rr`] for assertions.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};

use super::{tail, PdmServer};

/// One resource record, flattened for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    /// Owner, lower-case, fully qualified with trailing dot.
    pub name: String,
    pub rtype: RecordType,
    pub ttl: u32,
    /// RDATA in presentation format (hickory's Display), e.g. `192.0.2.1`, `ns1.example.test.`.
    pub data: String,
}

impl std::fmt::Display for Rr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} {}", self.name, self.ttl, self.rtype, self.data)
    }
}

/// A parsed DNS response.
#[derive(Debug, Clone)]
pub struct DigResult {
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, `FORMERR`, `NOTIMP`, or hickory's Debug otherwise.
    pub rcode: String,
    pub aa: bool,
    pub tc: bool,
    /// `"<owner> <TYPE> <rdata>"`, e.g. `"acme.example.test. A 192.0.2.1"`.
    pub answers: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    pub answer_rrs: Vec<Rr>,
    pub authority_rrs: Vec<Rr>,
    pub additional_rrs: Vec<Rr>,
}

impl DigResult {
    /// RDATA of answer records of type `t`.
    pub fn answer_data(&self, t: RecordType) -> Vec<String> {
        self.answer_rrs
            .iter()
            .filter(|r| r.rtype == t)
            .map(|r| r.data.clone())
            .collect()
    }

    /// Authority records of type `t`.
    pub fn authority_of(&self, t: RecordType) -> Vec<&Rr> {
        self.authority_rrs.iter().filter(|r| r.rtype == t).collect()
    }

    pub fn is_nxdomain(&self) -> bool {
        self.rcode == "NXDOMAIN"
    }
}

impl std::fmt::Display for DigResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "rcode={} aa={} tc={}", self.rcode, self.aa, self.tc)?;
        for (sec, rrs) in [
            ("ANSWER", &self.answer_rrs),
            ("AUTHORITY", &self.authority_rrs),
            ("ADDITIONAL", &self.additional_rrs),
        ] {
            for r in rrs {
                writeln!(f, "  {sec}: {r}")?;
            }
        }
        Ok(())
    }
}

fn rr_of(r: &Record) -> Rr {
    Rr {
        name: r.name.to_lowercase().to_string(),
        rtype: r.record_type(),
        ttl: r.ttl,
        data: r.data.to_string(),
    }
}

fn rcode_str(c: ResponseCode) -> String {
    match c {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        other => format!("{other:?}"),
    }
}

/// A response, flattened for assertions.
fn dig_result(resp: &Message) -> DigResult {
    let answer_rrs: Vec<Rr> = resp.answers.iter().map(rr_of).collect();
    let authority_rrs: Vec<Rr> = resp.authorities.iter().map(rr_of).collect();
    let additional_rrs: Vec<Rr> = resp.additionals.iter().map(rr_of).collect();
    let short = |v: &Vec<Rr>| {
        v.iter()
            .map(|r| format!("{} {} {}", r.name, r.rtype, r.data))
            .collect()
    };
    DigResult {
        rcode: rcode_str(resp.metadata.response_code),
        aa: resp.metadata.authoritative,
        tc: resp.metadata.truncation,
        answers: short(&answer_rrs),
        authority: short(&authority_rrs),
        additional: short(&additional_rrs),
        answer_rrs,
        authority_rrs,
        additional_rrs,
    }
}

/// Send one query to `addr` over TCP (2-byte length framing) and parse the answer.
pub fn dig_tcp_at(addr: SocketAddr, name: &str, qtype: RecordType) -> Result<DigResult, String> {
    query_tcp_at(addr, name, qtype).map(|resp| dig_result(&resp))
}

/// [`dig_tcp_at`]'s answer as hickory decoded it (record data typed, e.g.
/// each string of a TXT).
pub fn query_tcp_at(addr: SocketAddr, name: &str, qtype: RecordType) -> Result<Message, String> {
    use std::io::{Read, Write};
    let mut qname = Name::from_ascii(name).map_err(|e| format!("bad name {name}: {e}"))?;
    qname.set_fqdn(true);
    let mut msg = Message::query();
    msg.metadata.recursion_desired = false;
    msg.add_query(Query::query(qname, qtype));
    let id = msg.metadata.id;
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    let mut sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    sock.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    sock.read_exact(&mut len).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    sock.read_exact(&mut buf).map_err(|e| e.to_string())?;
    let resp = Message::from_vec(&buf).map_err(|e| format!("unparseable response: {e}"))?;
    if resp.metadata.id != id {
        return Err("answer with another id".into());
    }
    Ok(resp)
}

/// Send one UDP query to `addr` and parse the answer.
pub fn dig_at(addr: SocketAddr, name: &str, qtype: RecordType) -> Result<DigResult, String> {
    let mut qname = Name::from_ascii(name).map_err(|e| format!("bad name {name}: {e}"))?;
    qname.set_fqdn(true);
    let mut last = String::from("no attempt");
    for _ in 0..3 {
        let mut msg = Message::query();
        msg.metadata.recursion_desired = false;
        msg.add_query(Query::query(qname.clone(), qtype));
        let id = msg.metadata.id;
        let bytes = msg.to_vec().map_err(|e| e.to_string())?;
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(&bytes, addr).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65535];
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if Instant::now() > deadline {
                last = "timeout".into();
                break;
            }
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let resp = match Message::from_vec(&buf[..n]) {
                        Ok(m) => m,
                        Err(e) => return Err(format!("unparseable response: {e}")),
                    };
                    if resp.metadata.id != id || resp.metadata.message_type != MessageType::Response
                    {
                        continue;
                    }
                    return Ok(dig_result(&resp));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    last = "timeout (no answer within 2 s)".into();
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    break;
                }
            }
        }
    }
    Err(last)
}

impl PdmServer {
    /// One UDP query (RD=0) to where the zones are served ([`PdmServer::zone_dns_addr`]),
    /// 2 s timeout, 3 tries.
    pub fn dig(&self, name: &str, qtype: RecordType) -> DigResult {
        dig_at(self.zone_dns_addr(), name, qtype)
            .unwrap_or_else(|e| panic!("dig {name} {qtype}: {e}\n{}", tail(&self.log(), 3000)))
    }
}
