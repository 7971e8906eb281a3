//! The messages of a zone transfer: the SOA, every record (signed zones:
//! RRSIGs and the NSEC3 chain too), the SOA again, packed into messages of
//! up to 64 KiB with name compression, each signed when the request was.

use super::history::{History, Version};
use super::{tsig, Job, TransferKind};
use crate::server::respond::record_ub;
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_proto::ProtoError;

/// What a transfer sent.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Stats {
    pub messages: usize,
    pub bytes: usize,
    pub complete: bool,
}

/// Records buffered before a message is packed (upper bound of their size):
/// about one full message, so most messages are packed once.
const SOFT_LIMIT: usize = 60_000;
/// The largest message we emit, leaving room for the TSIG RR.
const MAX_MESSAGE: usize = 65_535 - tsig::RESERVE;

/// Packs records into messages and hands them to a sink.
struct Packer<'a> {
    id: u16,
    recursion_desired: bool,
    question: &'a [u8],
    first: bool,
    pending: Vec<Record>,
    pending_ub: usize,
    signer: Option<&'a mut tsig::ResponseSigner>,
    sink: &'a mut dyn FnMut(Vec<u8>) -> bool,
    stats: Stats,
    open: bool,
}

impl Packer<'_> {
    fn push(&mut self, records: Vec<Record>) -> bool {
        self.pending_ub += records.iter().map(record_ub).sum::<usize>();
        self.pending.extend(records);
        if self.pending_ub >= SOFT_LIMIT {
            return self.flush(false);
        }
        self.open
    }

    /// Pack pending records into messages; with `all`, until none is left
    /// (otherwise one message, the rest staying pending).
    fn flush(&mut self, all: bool) -> bool {
        while self.open && !self.pending.is_empty() {
            let Some(n) = self.pack_one() else {
                self.open = false;
                return false;
            };
            self.pending.drain(..n);
            self.pending_ub = self.pending.iter().map(record_ub).sum();
            if !all {
                break;
            }
        }
        self.open
    }

    /// Pack one message from the front of `pending`; how many records went in.
    fn pack_one(&mut self) -> Option<usize> {
        let mut buf = Vec::with_capacity(MAX_MESSAGE.min(self.pending_ub + 512));
        let question = if self.first { self.question } else { &[] };
        let (written, len) = {
            let mut enc = BinEncoder::new(&mut buf);
            enc.set_max_size(MAX_MESSAGE as u16);
            enc.emit_vec(&[0u8; 12]).ok()?;
            enc.emit_vec(question).ok()?;
            if !question.is_empty() {
                enc.store_label_pointer(12, 12 + question.len());
            }
            let n = match enc.emit_all(self.pending.iter()) {
                Ok(n) => n,
                Err(ProtoError::NotAllRecordsWritten { count, .. }) => count,
                Err(e) => {
                    tracing::error!(error = %e, "encoding a transfer message failed");
                    return None;
                }
            };
            (n, enc.offset())
        };
        if written == 0 && !self.pending.is_empty() {
            tracing::error!("a record does not fit in a transfer message");
            return None;
        }
        buf.truncate(len);
        let qd = u16::from(!question.is_empty());
        let an = u16::try_from(written).ok()?;
        let header = &mut buf[..12];
        header[..2].copy_from_slice(&self.id.to_be_bytes());
        header[2] = 0x80 | 0x04 | u8::from(self.recursion_desired);
        header[3] = 0;
        header[4..6].copy_from_slice(&qd.to_be_bytes());
        header[6..8].copy_from_slice(&an.to_be_bytes());
        if let Some(s) = self.signer.as_deref_mut() {
            s.sign(&mut buf);
        }
        self.first = false;
        self.stats.messages += 1;
        self.stats.bytes += buf.len();
        if !(self.sink)(buf) {
            return None;
        }
        Some(written)
    }
}

/// Produce every message of `job` into `sink` (false from the sink: the
/// client is gone, stop). IXFR is answered with the differences from the
/// client's version when `history` keeps it, else with the whole zone.
pub(super) fn run(
    job: &mut Job,
    history: Option<&History>,
    sink: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Stats {
    let served = job.zone.clone();
    let zone = served.zone();
    let soa = zone.soa();
    let mut packer = Packer {
        id: job.id,
        recursion_desired: job.recursion_desired,
        question: &job.question,
        first: true,
        pending: Vec::new(),
        pending_ub: 0,
        signer: job.signer.as_mut(),
        sink,
        stats: Stats::default(),
        open: true,
    };
    let Some(history) = history.filter(|_| job.kind != TransferKind::UpToDate) else {
        packer.push(vec![soa]);
        packer.flush(true);
        packer.stats.complete = packer.open;
        return packer.stats;
    };
    let now = crate::server::respond::unix_now();
    let current = match history.publish(&served, now) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(zone = %zone.origin(), error = %e, "cannot sign a zone for transfer");
            return packer.stats;
        }
    };
    let older = job
        .from_serial
        .filter(|_| job.kind == TransferKind::IxfrFull)
        .and_then(|s| history.find(zone.origin(), s, job.remote.ip()));
    let mut ok = match older {
        Some(older) => {
            job.kind = TransferKind::Ixfr;
            differences(&mut packer, &older, &current)
        }
        None => whole(&mut packer, &current),
    };
    ok &= packer.flush(true);
    if ok {
        current.sent_to(job.remote.ip());
    }
    packer.stats.complete = ok;
    packer.stats
}

/// The whole zone: SOA, every RRset with its RRSIGs, the NSEC3 records, SOA.
fn whole(packer: &mut Packer<'_>, v: &Version) -> bool {
    let zone = v.zone.zone();
    let soa = zone.soa();
    let apex = zone.origin();
    let sigs = |name: &Name, t: RecordType| -> Vec<Record> {
        v.view
            .as_ref()
            .map_or_else(Vec::new, |view| view.sigs(name, t).to_vec())
    };
    let mut first = vec![soa.clone()];
    first.extend(sigs(apex, RecordType::SOA));
    if !packer.push(first) {
        return false;
    }
    for (name, node) in zone.nodes() {
        for set in &node.rrsets {
            if set.rtype == RecordType::SOA && name == *apex {
                continue;
            }
            let mut out = set.records(&name);
            out.extend(sigs(&name, set.rtype));
            if !packer.push(out) {
                return false;
            }
        }
    }
    if let Some(view) = &v.view {
        for r in view.nsec3() {
            if !packer.push(vec![r.clone()]) {
                return false;
            }
        }
    }
    packer.push(vec![soa.clone()])
}

/// RFC 1995 §4, condensed: new SOA, old SOA, what went, new SOA, what
/// came, new SOA. Records, signatures and NSEC3 records alike.
fn differences(packer: &mut Packer<'_>, older: &Version, current: &Version) -> bool {
    let (old_zone, zone) = (older.zone.zone(), current.zone.zone());
    let (mut gone, mut came) = (Vec::new(), Vec::new());
    for (name, before, after) in zone.changes_since(old_zone) {
        fn sets(n: Option<&crate::zone::Node>) -> &[crate::zone::RRset] {
            n.map_or(&[][..], |n| &n.rrsets[..])
        }
        // The records of `set` that `other` (the same type's RRset in the
        // other version) does not hold; a TTL change changes every record.
        fn only_in(
            name: &Name,
            set: &crate::zone::RRset,
            other: Option<&crate::zone::RRset>,
            out: &mut Vec<Record>,
        ) {
            let other = other.filter(|o| o.ttl() == set.ttl()).map(|o| o.rdata());
            out.extend(
                set.rdata()
                    .iter()
                    .filter(|d| other.as_ref().is_none_or(|o| !o.contains(d)))
                    .map(|d| Record::from_rdata(name.clone(), set.ttl(), d.clone())),
            );
        }
        let (before, after) = (sets(before), sets(after));
        for set in before {
            let now = after.iter().find(|s| s.rtype == set.rtype);
            only_in(&name, set, now, &mut gone);
        }
        for set in after {
            let was = before.iter().find(|s| s.rtype == set.rtype);
            only_in(&name, set, was, &mut came);
        }
    }
    // The SOAs frame the sequences; they are not part of them.
    gone.retain(|r| r.record_type() != RecordType::SOA);
    came.retain(|r| r.record_type() != RecordType::SOA);
    if let (Some(old_view), Some(view)) = (&older.view, &current.view) {
        let (g, c) = view.changes_since(old_view);
        gone.extend(g);
        came.extend(c);
    }
    let soa = zone.soa();
    packer.push(vec![soa.clone(), old_zone.soa()])
        && packer.push(gone)
        && packer.push(vec![soa.clone()])
        && packer.push(came)
        && packer.push(vec![soa])
}
