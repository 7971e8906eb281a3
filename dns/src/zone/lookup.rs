//! The authoritative lookup algorithm over one [`Zone`].
//!
//! Pure: takes a zone and a question, returns the sections of the answer and
//! what kind of answer it was ([`AnswerKind`]) so that a DNSSEC signer can
//! later add the matching proofs (NSEC3 / compact denial, wildcard proofs).

use super::tree::{DynamicRRset, Node, RRset, LUA};
use super::Zone;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Maximum number of CNAMEs followed inside one zone (loops stop earlier).
pub(super) const MAX_CNAME_CHAIN: usize = 8;

/// What kind of answer a lookup produced (hook for DNSSEC proofs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AnswerKind {
    /// Data found at the exact name.
    #[default]
    Positive,
    /// Data synthesized from the wildcard `*.<closest_encloser>`.
    Wildcard {
        /// Closest encloser of the query name.
        closest_encloser: Name,
    },
    /// The name exists (or a wildcard matched) but has no data of this type.
    NoData {
        /// Set when the NODATA came from a wildcard: its closest encloser.
        wildcard: Option<Name>,
    },
    /// The name does not exist and no wildcard matched.
    NxDomain {
        /// Closest encloser of the query name.
        closest_encloser: Name,
    },
    /// The name is at or below a delegation point: referral to the child.
    Referral {
        /// The delegation point (owner of the NS RRset).
        cut: Name,
    },
    /// One or more CNAMEs were followed; `end` is how the chain ended.
    CnameChain {
        /// Each followed CNAME owner, with its closest encloser if it was wildcard-synthesized.
        links: Vec<(Name, Option<Name>)>,
        /// The outcome at the last name of the chain.
        end: Box<AnswerKind>,
    },
    /// The name is not in this zone (the server answers REFUSED).
    NotInZone,
}

/// The result of looking a question up in one zone, before EDNS/size policy.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// NoError or NXDomain (Refused/ServFail are decided by the server).
    pub rcode: ResponseCode,
    /// AA flag: false for referrals.
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authority: Vec<Record>,
    /// Additional section.
    pub additional: Vec<Record>,
    /// What kind of answer this is (for DNSSEC proofs and metrics).
    pub kind: AnswerKind,
    /// Set when the NODATA came from LUA records of this type that
    /// returned nothing: the type exists at the name but must not be
    /// claimed in this answer's denial bitmap.
    pub empty_dynamic: Option<RecordType>,
}

/// Where a name landed in the tree. (The tree keeps keys, not names: the
/// closest encloser and the cut are named here, made from their keys.)
enum Located<'z> {
    /// Exact node (not at/below a cut, except a DS query at the cut itself).
    Exact(&'z Node),
    /// Synthesized from a wildcard node.
    Wildcard { node: &'z Node, ce: Name },
    /// At or below a delegation point.
    Referral { cut: Name, node: &'z Node },
    /// Name does not exist.
    NxDomain { ce: Name },
}

impl Zone {
    /// Find where `qname`, whose canonical key is `key`, lands; `None`
    /// when it is outside the zone.
    fn locate(&self, qname: &Name, key: &[u8], qtype: RecordType) -> Option<Located<'_>> {
        if !self.origin().zone_of(qname) {
            return None;
        }
        if let Some(node) = self.node_by_key(key) {
            if node.occluded || (node.cut && qtype != RecordType::DS) {
                return Some(self.referral_for(qname));
            }
            return Some(Located::Exact(node));
        }
        // Closest encloser: the deepest existing ancestor. ENTs are nodes, so
        // the first hit walking up is it; the apex always exists. The
        // ancestors' keys are prefixes of the query's.
        let mut ends = [0usize; 128];
        let mut n = 0;
        for end in super::key::prefixes(key)
            .skip(self.origin_labels())
            .filter(|&end| end < key.len())
        {
            if let Some(slot) = ends.get_mut(n) {
                *slot = end;
                n += 1;
            }
        }
        let found = ends[..n].iter().rev().find_map(|&end| {
            let k = key.get(..end)?;
            self.node_by_key(k).map(|hit| (k, hit))
        });
        let (ce_key, ce_node) = match found {
            Some(found) => found,
            // Unreachable for a well-formed zone (apex exists).
            None => (&[][..], self.node(self.origin())?),
        };
        let ce = if ce_key.is_empty() {
            self.origin().clone()
        } else {
            super::key::name_of(ce_key)
        };
        if self.has_cuts() && (ce_node.cut || ce_node.occluded) {
            return Some(self.referral_for(&ce));
        }
        if self.has_wildcards() {
            let star = if ce_key.is_empty() {
                ce.prepend_label("*").ok().map(|n| super::key::of(&n))
            } else {
                Some(super::key::child(ce_key, b"*"))
            };
            if let Some(node) = star.and_then(|k| self.node_by_key(&k)) {
                return Some(Located::Wildcard { node, ce });
            }
        }
        Some(Located::NxDomain { ce })
    }

    fn referral_for(&self, name: &Name) -> Located<'_> {
        match self.topmost_cut(name) {
            Some((cut, node)) => Located::Referral { cut, node },
            // Flags say there is a cut; if not, treat as non-existent.
            None => Located::NxDomain {
                ce: self.origin().clone(),
            },
        }
    }
}

fn push_additional(out: &mut Vec<Record>, set: &RRset) {
    out.extend(set.additional().iter().cloned());
}

/// Produces the records of dynamic (LUA) RRsets while a lookup runs. The
/// server implements it with the LUA engine; the lookup itself stays pure
/// and only decides where synthesized records go.
pub trait Synthesizer {
    /// Why synthesis failed (the server answers SERVFAIL).
    type Error;
    /// The rdata `set` yields when asked for `qname` (the name as queried:
    /// a wildcard's expansion or a CNAME target, never the wildcard owner).
    /// An empty result means "no records" (NODATA).
    fn synthesize(&mut self, qname: &Name, set: &DynamicRRset) -> Result<Vec<RData>, Self::Error>;
}

/// The synthesizer of [`lookup`]: dynamic RRsets cannot be evaluated.
struct NoSynthesis;

impl Synthesizer for NoSynthesis {
    type Error = ();
    fn synthesize(&mut self, _: &Name, _: &DynamicRRset) -> Result<Vec<RData>, ()> {
        Err(())
    }
}

/// Outcome of answering at one node for one name in the chain.
enum Step {
    Done(AnswerKind),
    Follow(Name),
}

/// Synthesize `set` for `owner` and append the records; returns how many.
fn push_dynamic<S: Synthesizer>(
    out: &mut Vec<Record>,
    set: &DynamicRRset,
    owner: &Name,
    synth: &mut S,
) -> Result<usize, S::Error> {
    let data = synth.synthesize(owner, set)?;
    let n = data.len();
    out.extend(
        data.into_iter()
            .map(|d| Record::from_rdata(owner.clone(), set.ttl, d)),
    );
    Ok(n)
}

/// The additional section for NS/MX/SRV records a LUA program synthesized
/// (`ans.answers[start..]`): the in-zone A/AAAA of their targets, as for
/// static RRsets, without repeating what a static RRset of the same type
/// already added.
fn push_dynamic_additional(ans: &mut Answer, zone: &Zone, rtype: RecordType, start: usize) {
    if !matches!(rtype, RecordType::NS | RecordType::MX | RecordType::SRV) {
        return;
    }
    let synthesized = ans.answers.get(start..).unwrap_or(&[]);
    let extra = zone.additional_for(rtype, synthesized.iter().map(|r| &r.data));
    for r in extra {
        if !ans.additional.contains(&r) {
            ans.additional.push(r);
        }
    }
}

/// The lowest type with data at `node` for an ANY query (RRSIG and LUA
/// itself excluded; LUA programs count as their type).
fn any_type(node: &Node) -> Option<RecordType> {
    node.rrsets
        .iter()
        .map(|s| s.rtype)
        .chain(node.dynamic.iter().map(|d| d.rtype))
        .filter(|t| !matches!(*t, RecordType::RRSIG | LUA))
        .min_by_key(|t| u16::from(*t))
}

/// Answer at an existing node (exact or wildcard) for `owner`.
fn answer_at_node<S: Synthesizer>(
    node: &Node,
    owner: &Name,
    qtype: RecordType,
    wildcard_ce: Option<&Name>,
    ans: &mut Answer,
    zone: &Zone,
    synth: &mut S,
) -> Result<Step, S::Error> {
    let positive = || match wildcard_ce {
        Some(ce) => AnswerKind::Wildcard {
            closest_encloser: ce.clone(),
        },
        None => AnswerKind::Positive,
    };
    let nodata = |ans: &mut Answer| {
        ans.authority.push(zone.negative_soa());
        Step::Done(AnswerKind::NoData {
            wildcard: wildcard_ce.cloned(),
        })
    };
    // The LUA type itself is never served (its code is private).
    if qtype == LUA {
        return Ok(nodata(ans));
    }
    // RFC 8482: ANY gets one RRset, chosen deterministically (lowest type code).
    let want = if qtype == RecordType::ANY {
        match any_type(node) {
            Some(t) => t,
            None => return Ok(nodata(ans)),
        }
    } else {
        qtype
    };
    let stat = node.rrset(want).filter(|_| want != LUA);
    let dyn_set = node.dynamic(want);
    if stat.is_some() || dyn_set.is_some() {
        let mut n = 0;
        if let Some(set) = stat {
            // Owned by the query's spelling (0x20 case, wildcard synthesis).
            set.push_records(owner, &mut ans.answers);
            if qtype != RecordType::ANY {
                push_additional(&mut ans.additional, set);
            }
            n += set.len();
        }
        if let Some(set) = dyn_set {
            let start = ans.answers.len();
            let k = push_dynamic(&mut ans.answers, set, owner, synth)?;
            if k > 0 && qtype != RecordType::ANY {
                push_dynamic_additional(ans, zone, want, start);
            }
            n += k;
        }
        if n == 0 {
            // A LUA program that returned no records: NODATA.
            ans.empty_dynamic = Some(want);
            return Ok(nodata(ans));
        }
        return Ok(Step::Done(positive()));
    }
    if let Some(set) = node.rrset(RecordType::CNAME) {
        set.push_records(owner, &mut ans.answers);
        if let Some(RData::CNAME(target)) = set.rdata().first() {
            return Ok(Step::Follow(target.0.clone()));
        }
        return Ok(Step::Done(positive()));
    }
    if let Some(set) = node.dynamic(RecordType::CNAME) {
        let start = ans.answers.len();
        if push_dynamic(&mut ans.answers, set, owner, synth)? == 0 {
            ans.empty_dynamic = Some(RecordType::CNAME);
            return Ok(nodata(ans));
        }
        if let Some(RData::CNAME(target)) = ans.answers.get(start).map(|r| &r.data) {
            return Ok(Step::Follow(target.0.clone()));
        }
        return Ok(Step::Done(positive()));
    }
    Ok(nodata(ans))
}

/// Answer `qname`/`qtype` from `zone` as an authoritative server.
///
/// `qname` may be in any case: records owned by it are returned under the
/// query's spelling. Out-of-zone names give `Refused` with
/// [`AnswerKind::NotInZone`]. Names whose answer needs a LUA program give
/// `ServFail` here; the server uses [`lookup_with`].
pub fn lookup(zone: &Zone, qname: &Name, qtype: RecordType) -> Answer {
    lookup_key(zone, qname, &super::key::of(qname), qtype)
}

/// [`lookup`] for a caller that already has `qname`'s canonical key.
pub fn lookup_key(zone: &Zone, qname: &Name, qkey: &[u8], qtype: RecordType) -> Answer {
    match lookup_keyed(zone, qname, qkey, qtype, &mut NoSynthesis) {
        Ok(a) => a,
        Err(()) => Answer {
            rcode: ResponseCode::ServFail,
            ..Answer::default()
        },
    }
}

/// [`lookup`] with dynamic RRsets synthesized by `synth`; its first error
/// aborts the lookup (the server answers SERVFAIL).
pub fn lookup_with<S: Synthesizer>(
    zone: &Zone,
    qname: &Name,
    qtype: RecordType,
    synth: &mut S,
) -> Result<Answer, S::Error> {
    lookup_keyed(zone, qname, &super::key::of(qname), qtype, synth)
}

/// [`lookup_with`] for a caller that already has `qname`'s canonical key
/// (the server, which found the zone by it: one key per query).
pub fn lookup_keyed<S: Synthesizer>(
    zone: &Zone,
    qname: &Name,
    qkey: &[u8],
    qtype: RecordType,
    synth: &mut S,
) -> Result<Answer, S::Error> {
    let mut ans = Answer {
        rcode: ResponseCode::NoError,
        authoritative: true,
        ..Answer::default()
    };
    let mut links: Vec<(Name, Option<Name>)> = Vec::new();
    // Owner for the current step: the query name, then CNAME targets.
    let mut current: Name = qname.clone();
    // Tree keys are FQDNs and hickory orders FQDN and relative names apart.
    current.set_fqdn(true);
    // The query's key, then each CNAME target's.
    let mut current_key: Option<Vec<u8>> = None;
    let end = loop {
        let key = current_key.as_deref().unwrap_or(qkey);
        let Some(loc) = zone.locate(&current, key, qtype) else {
            if links.is_empty() {
                ans.rcode = ResponseCode::Refused;
                ans.authoritative = false;
                return Ok(Answer {
                    kind: AnswerKind::NotInZone,
                    ..ans
                });
            }
            // CNAME left the zone: the resolver follows it.
            break AnswerKind::NotInZone;
        };
        let (step, wild) = match loc {
            Located::Exact(node) => (
                answer_at_node(node, &current, qtype, None, &mut ans, zone, synth)?,
                None,
            ),
            Located::Wildcard { node, ce } => (
                answer_at_node(node, &current, qtype, Some(&ce), &mut ans, zone, synth)?,
                Some(ce),
            ),
            Located::Referral { cut, node } => {
                if let Some(ns) = node.rrset(RecordType::NS) {
                    ns.push_records(&cut, &mut ans.authority);
                    push_additional(&mut ans.additional, ns);
                }
                // AA=0 only when the referral is the whole answer; after a
                // CNAME the answer section is still authoritative data.
                if links.is_empty() {
                    ans.authoritative = false;
                }
                break AnswerKind::Referral { cut };
            }
            Located::NxDomain { ce } => {
                // RFC 6604: the rcode describes the last name in the chain.
                ans.rcode = ResponseCode::NXDomain;
                ans.authority.push(zone.negative_soa());
                break AnswerKind::NxDomain {
                    closest_encloser: ce,
                };
            }
        };
        match step {
            Step::Done(kind) => break kind,
            Step::Follow(mut target) => {
                links.push((current, wild));
                target.set_fqdn(true);
                let looped = links.iter().any(|(n, _)| n == &target);
                if looped || links.len() >= MAX_CNAME_CHAIN {
                    break AnswerKind::Positive;
                }
                current_key = Some(super::key::of(&target));
                current = target;
            }
        }
    };
    ans.kind = if links.is_empty() {
        end
    } else {
        AnswerKind::CnameChain {
            links,
            end: Box::new(end),
        }
    };
    Ok(ans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::file::parse_master;
    use std::str::FromStr;

    const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@        IN NS  ns1
@        IN NS  ns2.example.net.
@        IN MX  10 mail
@        IN A   192.0.2.1
ns1      IN A   192.0.2.53
ns1      IN AAAA 2001:db8::53
mail     IN A   192.0.2.25
www      IN CNAME web
web      IN A   192.0.2.80
loop1    IN CNAME loop2
loop2    IN CNAME loop1
out      IN CNAME www.example.net.
dangling IN CNAME nothere
tochild  IN CNAME host.child
deep.ent.sub IN A 192.0.2.99
*.wild   IN A   192.0.2.77
*.wild   IN TXT "wild"
exists.wild IN A 192.0.2.78
a.ent2.wild IN A 192.0.2.79
*.cw     IN CNAME web
child    IN NS  ns.child
child    IN NS  ns1
child    IN NS  ns.other.net.
child    IN DS  12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.child IN A   192.0.2.200
ns.child IN AAAA 2001:db8::200
host.child IN A 192.0.2.201
nods     IN NS  ns1
_sip._tcp IN SRV 10 60 5060 web
"#;

    fn zone() -> Zone {
        let (origin, records) = parse_master(ZONE, None).unwrap();
        Zone::new(origin, records).unwrap()
    }

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn q(z: &Zone, name: &str, t: RecordType) -> Answer {
        lookup(z, &n(name), t)
    }

    fn types(rs: &[Record]) -> Vec<RecordType> {
        rs.iter().map(|r| r.record_type()).collect()
    }

    #[test]
    fn exact_match() {
        let z = zone();
        let a = q(&z, "web.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.authoritative);
        assert_eq!(a.answers.len(), 1);
        assert!(a.authority.is_empty());
        assert_eq!(a.kind, AnswerKind::Positive);
    }

    #[test]
    fn owner_case_follows_query() {
        let z = zone();
        let qn = Name::from_ascii("WeB.ExAmple.COM.").unwrap();
        let a = lookup(&z, &qn, RecordType::A);
        assert_eq!(a.answers[0].name.to_string(), "WeB.ExAmple.COM.");
        assert!(a.answers[0].name.eq_case(&qn));
    }

    #[test]
    fn nodata_has_soa_with_negative_ttl() {
        let z = zone();
        let a = q(&z, "web.example.com.", RecordType::AAAA);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.answers.is_empty());
        assert_eq!(types(&a.authority), vec![RecordType::SOA]);
        assert_eq!(a.authority[0].ttl, 300);
        assert_eq!(a.kind, AnswerKind::NoData { wildcard: None });
    }

    #[test]
    fn nxdomain_has_soa() {
        let z = zone();
        let a = q(&z, "nope.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert!(a.authoritative);
        assert_eq!(types(&a.authority), vec![RecordType::SOA]);
        assert_eq!(
            a.kind,
            AnswerKind::NxDomain {
                closest_encloser: n("example.com.")
            }
        );
        let a = q(&z, "x.y.web.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(
            a.kind,
            AnswerKind::NxDomain {
                closest_encloser: n("web.example.com.")
            }
        );
    }

    #[test]
    fn empty_non_terminal_is_nodata() {
        let z = zone();
        for name in ["sub.example.com.", "ent.sub.example.com."] {
            let a = q(&z, name, RecordType::A);
            assert_eq!(a.rcode, ResponseCode::NoError, "{name}");
            assert!(a.answers.is_empty());
            assert_eq!(types(&a.authority), vec![RecordType::SOA]);
        }
    }

    #[test]
    fn cname_chain_followed_in_zone() {
        let z = zone();
        let a = q(&z, "www.example.com.", RecordType::A);
        assert_eq!(types(&a.answers), vec![RecordType::CNAME, RecordType::A]);
        assert_eq!(a.answers[1].name, n("web.example.com."));
        assert!(
            matches!(a.kind, AnswerKind::CnameChain { ref end, .. } if **end == AnswerKind::Positive)
        );
        // CNAME query returns just the CNAME.
        let a = q(&z, "www.example.com.", RecordType::CNAME);
        assert_eq!(types(&a.answers), vec![RecordType::CNAME]);
        assert_eq!(a.kind, AnswerKind::Positive);
    }

    #[test]
    fn cname_loop_stops() {
        let z = zone();
        let a = q(&z, "loop1.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(
            types(&a.answers),
            vec![RecordType::CNAME, RecordType::CNAME]
        );
    }

    #[test]
    fn cname_out_of_zone_stops() {
        let z = zone();
        let a = q(&z, "out.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(types(&a.answers), vec![RecordType::CNAME]);
        assert!(a.authority.is_empty());
    }

    #[test]
    fn cname_to_nonexistent_is_nxdomain() {
        let z = zone();
        let a = q(&z, "dangling.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(types(&a.answers), vec![RecordType::CNAME]);
        assert_eq!(types(&a.authority), vec![RecordType::SOA]);
    }

    #[test]
    fn cname_into_delegation_gives_referral_in_authority() {
        let z = zone();
        let a = q(&z, "tochild.example.com.", RecordType::A);
        assert!(a.authoritative);
        assert_eq!(types(&a.answers), vec![RecordType::CNAME]);
        assert!(a
            .authority
            .iter()
            .all(|r| r.record_type() == RecordType::NS));
        assert_eq!(a.authority.len(), 3);
    }

    #[test]
    fn wildcard_synthesis() {
        let z = zone();
        let qn = Name::from_ascii("Foo.wild.example.com.").unwrap();
        let a = lookup(&z, &qn, RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(a.answers.len(), 1);
        assert!(a.answers[0].name.eq_case(&qn));
        assert_eq!(
            a.kind,
            AnswerKind::Wildcard {
                closest_encloser: n("wild.example.com.")
            }
        );
        // deeper names match too
        let a = q(&z, "a.b.wild.example.com.", RecordType::TXT);
        assert_eq!(a.answers.len(), 1);
        // wildcard NODATA
        let a = q(&z, "foo.wild.example.com.", RecordType::MX);
        assert!(a.answers.is_empty());
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(
            a.kind,
            AnswerKind::NoData {
                wildcard: Some(n("wild.example.com."))
            }
        );
    }

    #[test]
    fn wildcard_does_not_match_existing_names_or_ents() {
        let z = zone();
        let a = q(&z, "exists.wild.example.com.", RecordType::TXT);
        assert!(a.answers.is_empty());
        assert_eq!(a.kind, AnswerKind::NoData { wildcard: None });
        // ent2.wild is an empty non-terminal: NODATA, not wildcard.
        let a = q(&z, "ent2.wild.example.com.", RecordType::A);
        assert!(a.answers.is_empty());
        assert_eq!(a.rcode, ResponseCode::NoError);
        // below the ENT the closest encloser is ent2.wild: no *.ent2.wild → NXDOMAIN
        let a = q(&z, "x.ent2.wild.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        // the wildcard owner itself is an ordinary name
        let a = q(&z, "*.wild.example.com.", RecordType::A);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.kind, AnswerKind::Positive);
    }

    #[test]
    fn wildcard_cname_is_followed() {
        let z = zone();
        let a = q(&z, "x.cw.example.com.", RecordType::A);
        assert_eq!(types(&a.answers), vec![RecordType::CNAME, RecordType::A]);
        assert_eq!(a.answers[0].name, n("x.cw.example.com."));
        match a.kind {
            AnswerKind::CnameChain { links, .. } => {
                assert_eq!(links[0].1, Some(n("cw.example.com.")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn referral_at_and_below_cut() {
        let z = zone();
        for name in [
            "child.example.com.",
            "host.child.example.com.",
            "x.y.child.example.com.",
            "ns.child.example.com.",
        ] {
            for t in [RecordType::A, RecordType::NS, RecordType::ANY] {
                let a = q(&z, name, t);
                assert_eq!(a.rcode, ResponseCode::NoError, "{name}");
                assert!(!a.authoritative, "{name}");
                assert!(a.answers.is_empty());
                assert_eq!(types(&a.authority), vec![RecordType::NS; 3]);
                // glue: ns.child A+AAAA and ns1 (in zone, not under the cut) A+AAAA
                assert_eq!(a.additional.len(), 4, "{name} {:?}", a.additional);
                assert_eq!(
                    a.kind,
                    AnswerKind::Referral {
                        cut: n("child.example.com.")
                    }
                );
            }
        }
    }

    #[test]
    fn ds_at_cut_is_authoritative_from_parent() {
        let z = zone();
        let a = q(&z, "child.example.com.", RecordType::DS);
        assert!(a.authoritative);
        assert_eq!(types(&a.answers), vec![RecordType::DS]);
        let a = q(&z, "nods.example.com.", RecordType::DS);
        assert!(a.authoritative);
        assert!(a.answers.is_empty());
        assert_eq!(types(&a.authority), vec![RecordType::SOA]);
        // DS below a cut is the child's business: referral.
        let a = q(&z, "host.child.example.com.", RecordType::DS);
        assert!(!a.authoritative);
    }

    #[test]
    fn any_is_minimal() {
        let z = zone();
        let a = q(&z, "example.com.", RecordType::ANY);
        assert!(a.authoritative);
        let ts = types(&a.answers);
        assert!(!ts.is_empty());
        assert!(ts.iter().all(|t| *t == ts[0]));
        assert_eq!(ts[0], RecordType::A);
        let a = q(&z, "www.example.com.", RecordType::ANY);
        assert_eq!(types(&a.answers), vec![RecordType::CNAME]);
        let a = q(&z, "sub.example.com.", RecordType::ANY);
        assert!(a.answers.is_empty());
        assert_eq!(types(&a.authority), vec![RecordType::SOA]);
    }

    #[test]
    fn additional_for_mx_ns_srv() {
        let z = zone();
        let a = q(&z, "example.com.", RecordType::MX);
        assert_eq!(types(&a.additional), vec![RecordType::A]);
        let a = q(&z, "example.com.", RecordType::NS);
        assert!(a.authoritative);
        assert_eq!(a.answers.len(), 2);
        assert_eq!(types(&a.additional), vec![RecordType::A, RecordType::AAAA]);
        let a = q(&z, "_sip._tcp.example.com.", RecordType::SRV);
        assert_eq!(types(&a.additional), vec![RecordType::A]);
    }

    #[test]
    fn soa_query_at_apex() {
        let z = zone();
        let a = q(&z, "example.com.", RecordType::SOA);
        assert_eq!(types(&a.answers), vec![RecordType::SOA]);
        assert_eq!(a.answers[0].ttl, 3600);
    }

    #[test]
    fn relative_qname_is_treated_as_fqdn() {
        let z = zone();
        let qn = Name::from_ascii("web.example.com").unwrap();
        assert!(!qn.is_fqdn());
        assert_eq!(lookup(&z, &qn, RecordType::A).answers.len(), 1);
    }

    #[test]
    fn wildcard_owner_without_siblings_creates_ent() {
        let (origin, records) = parse_master(
            "$ORIGIN example.com.\n@ 60 IN SOA ns hm 1 1 1 1 60\n*.only 60 IN A 192.0.2.1\n",
            None,
        )
        .unwrap();
        let z = Zone::new(origin, records).unwrap();
        // only.example.com exists as an ENT: NODATA, and names below match the wildcard.
        let a = q(&z, "only.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.answers.is_empty());
        assert_eq!(q(&z, "x.only.example.com.", RecordType::A).answers.len(), 1);
        assert_eq!(
            q(&z, "x.other.example.com.", RecordType::A).rcode,
            ResponseCode::NXDomain
        );
    }

    #[test]
    fn out_of_zone_is_refused() {
        let z = zone();
        let a = q(&z, "example.net.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::Refused);
        assert_eq!(a.kind, AnswerKind::NotInZone);
    }

    /// Programs are comma-separated rdata of their type; `ERR` fails.
    struct Fake {
        calls: Vec<String>,
    }

    impl Synthesizer for Fake {
        type Error = String;
        fn synthesize(&mut self, qname: &Name, set: &DynamicRRset) -> Result<Vec<RData>, String> {
            self.calls.push(qname.to_string());
            let mut out = Vec::new();
            for p in &set.programs {
                let code = p.chunks.join("");
                if code == "ERR" {
                    return Err("boom".into());
                }
                for v in code.split(',').filter(|v| !v.is_empty()) {
                    out.push(RData::try_from_str(set.rtype, v).map_err(|e| e.to_string())?);
                }
            }
            Ok(out)
        }
    }

    const LUA_ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@        IN NS  ns1
ns1      IN A   192.0.2.53
web      IN A   192.0.2.80
two      IN LUA A "192.0.2.1,192.0.2.2"
two      IN LUA TXT "hello"
mixed    IN A   192.0.2.9
mixed    IN LUA A "192.0.2.10"
empty    IN LUA A ""
err      IN LUA A "ERR"
cn       IN LUA CNAME "web.example.com."
cnempty  IN LUA CNAME ""
*.wild   IN LUA A "192.0.2.7"
inc      IN LUA LUA "x=1"
sub      IN NS  ns1
x.sub    IN LUA A "192.0.2.66"
mail     IN A   192.0.2.25
mail     IN AAAA 2001:db8::25
mx       IN LUA MX "10 mail.example.com.,20 web.example.com.,30 mx.example.net.,40 ns.sub.example.com."
mxboth   IN MX  10 web
mxboth   IN LUA MX "20 web.example.com.,30 mail.example.com."
_s._tcp  IN LUA SRV "0 0 443 web.example.com."
@        IN LUA NS "ns.sub.example.com."
ns.sub   IN A   192.0.2.67
"#;

    fn lua_zone(lua_records: bool) -> Zone {
        let (origin, records) = parse_master(LUA_ZONE, None).unwrap();
        Zone::with_options(origin, records, crate::zone::ZoneOptions { lua_records }).unwrap()
    }

    fn ql(z: &Zone, name: &str, t: RecordType) -> (Result<Answer, String>, Vec<String>) {
        let mut f = Fake { calls: Vec::new() };
        let a = lookup_with(z, &n(name), t, &mut f);
        (a, f.calls)
    }

    #[test]
    fn lua_rrsets_answer_as_their_type() {
        let z = lua_zone(true);
        assert!(z.has_dynamic());
        let (a, calls) = ql(&z, "two.example.com.", RecordType::A);
        let a = a.unwrap();
        assert_eq!(types(&a.answers), vec![RecordType::A, RecordType::A]);
        assert_eq!(a.answers[0].ttl, 3600);
        assert_eq!(a.kind, AnswerKind::Positive);
        assert_eq!(calls, vec!["two.example.com."]);
        let (a, _) = ql(&z, "two.example.com.", RecordType::TXT);
        assert_eq!(types(&a.unwrap().answers), vec![RecordType::TXT]);
        // Static and LUA records of one type are both answered.
        let (a, _) = ql(&z, "mixed.example.com.", RecordType::A);
        assert_eq!(a.unwrap().answers.len(), 2);
    }

    #[test]
    fn lua_names_exist_and_other_types_are_nodata() {
        let z = lua_zone(true);
        let (a, calls) = ql(&z, "two.example.com.", RecordType::AAAA);
        let a = a.unwrap();
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.answers.is_empty());
        assert_eq!(types(&a.authority), vec![RecordType::SOA]);
        assert!(calls.is_empty(), "no evaluation for other types");
        // The LUA type itself is never served.
        let (a, calls) = ql(&z, "two.example.com.", LUA);
        assert!(a.unwrap().answers.is_empty());
        assert!(calls.is_empty());
        let (a, _) = ql(&z, "inc.example.com.", RecordType::A);
        assert_eq!(a.unwrap().kind, AnswerKind::NoData { wildcard: None });
    }

    #[test]
    fn lua_empty_is_nodata_and_error_propagates() {
        let z = lua_zone(true);
        let (a, _) = ql(&z, "empty.example.com.", RecordType::A);
        let a = a.unwrap();
        assert!(a.answers.is_empty());
        assert_eq!(types(&a.authority), vec![RecordType::SOA]);
        assert_eq!(a.kind, AnswerKind::NoData { wildcard: None });
        let (a, _) = ql(&z, "err.example.com.", RecordType::A);
        assert_eq!(a.unwrap_err(), "boom");
        // Plain lookup has no engine: SERVFAIL.
        assert_eq!(
            lookup(&z, &n("two.example.com."), RecordType::A).rcode,
            ResponseCode::ServFail
        );
        // Static names never need the engine.
        assert_eq!(
            lookup(&z, &n("web.example.com."), RecordType::A)
                .answers
                .len(),
            1
        );
    }

    #[test]
    fn lua_cname_is_chased() {
        let z = lua_zone(true);
        let (a, _) = ql(&z, "cn.example.com.", RecordType::A);
        let a = a.unwrap();
        assert_eq!(types(&a.answers), vec![RecordType::CNAME, RecordType::A]);
        assert!(matches!(a.kind, AnswerKind::CnameChain { .. }));
        let (a, _) = ql(&z, "cn.example.com.", RecordType::CNAME);
        assert_eq!(types(&a.unwrap().answers), vec![RecordType::CNAME]);
        let (a, _) = ql(&z, "cnempty.example.com.", RecordType::A);
        assert!(a.unwrap().answers.is_empty());
    }

    #[test]
    fn lua_wildcard_any_and_occlusion() {
        let z = lua_zone(true);
        let mut f = Fake { calls: Vec::new() };
        let qn = Name::from_ascii("Foo.wild.example.com.").unwrap();
        let a = lookup_with(&z, &qn, RecordType::A, &mut f).unwrap();
        let calls = f.calls;
        assert_eq!(a.answers.len(), 1);
        assert_eq!(calls, vec!["Foo.wild.example.com."]);
        assert!(matches!(a.kind, AnswerKind::Wildcard { .. }));
        let (a, _) = ql(&z, "two.example.com.", RecordType::ANY);
        assert_eq!(
            types(&a.unwrap().answers),
            vec![RecordType::A, RecordType::A]
        );
        let (a, calls) = ql(&z, "x.sub.example.com.", RecordType::A);
        assert!(matches!(a.unwrap().kind, AnswerKind::Referral { .. }));
        assert!(calls.is_empty());
    }

    #[test]
    fn lua_disabled_serves_nothing_dynamic() {
        let z = lua_zone(false);
        assert!(!z.has_dynamic());
        let (a, calls) = ql(&z, "two.example.com.", RecordType::A);
        let a = a.unwrap();
        assert!(a.answers.is_empty());
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(calls.is_empty());
        let (a, _) = ql(&z, "two.example.com.", LUA);
        assert!(a.unwrap().answers.is_empty(), "code never leaks");
        // Still exported.
        assert!(z.records().iter().any(|r| r.record_type() == LUA));
    }

    #[test]
    fn served_types_show_lua_targets() {
        let z = lua_zone(true);
        let node = z.node(&n("two.example.com.")).unwrap();
        assert_eq!(node.served_types(), vec![RecordType::A, RecordType::TXT]);
        let node = z.node(&n("mixed.example.com.")).unwrap();
        assert_eq!(node.served_types(), vec![RecordType::A]);
        let node = z.node(&n("inc.example.com.")).unwrap();
        assert!(node.served_types().is_empty());
        assert_eq!(z.lua_includes(&n("INC.example.com.")).len(), 1);
        // Programs to prime: every LUA record but includes and occluded ones.
        assert_eq!(z.lua_programs().count(), 12);
    }

    #[test]
    fn lua_mx_srv_ns_get_additional_records() {
        let z = lua_zone(true);
        let owners = |rs: &[Record]| -> Vec<(String, RecordType)> {
            rs.iter()
                .map(|r| (r.name.to_string(), r.record_type()))
                .collect()
        };
        // In-zone targets with A/AAAA; out-of-zone and occluded MX targets get nothing.
        let (a, _) = ql(&z, "mx.example.com.", RecordType::MX);
        let a = a.unwrap();
        assert_eq!(a.answers.len(), 4);
        assert_eq!(
            owners(&a.additional),
            vec![
                ("mail.example.com.".into(), RecordType::A),
                ("mail.example.com.".into(), RecordType::AAAA),
                ("web.example.com.".into(), RecordType::A),
            ]
        );
        // Static and synthesized MX at one name: each target once.
        let (a, _) = ql(&z, "mxboth.example.com.", RecordType::MX);
        let a = a.unwrap();
        assert_eq!(a.answers.len(), 3);
        assert_eq!(
            owners(&a.additional),
            vec![
                ("web.example.com.".into(), RecordType::A),
                ("mail.example.com.".into(), RecordType::A),
                ("mail.example.com.".into(), RecordType::AAAA),
            ]
        );
        let (a, _) = ql(&z, "_s._tcp.example.com.", RecordType::SRV);
        assert_eq!(
            owners(&a.unwrap().additional),
            vec![("web.example.com.".into(), RecordType::A)]
        );
        // NS targets may be glue below a cut.
        let (a, _) = ql(&z, "example.com.", RecordType::NS);
        let a = a.unwrap();
        assert_eq!(a.answers.len(), 2);
        assert_eq!(
            owners(&a.additional),
            vec![
                ("ns1.example.com.".into(), RecordType::A),
                ("ns.sub.example.com.".into(), RecordType::A),
            ]
        );
        // Other types and ANY (RFC 8482 minimal) get no additional section.
        let (a, _) = ql(&z, "two.example.com.", RecordType::A);
        assert!(a.unwrap().additional.is_empty());
        let (a, _) = ql(&z, "mx.example.com.", RecordType::ANY);
        let a = a.unwrap();
        assert_eq!(a.answers.len(), 4);
        assert!(a.additional.is_empty());
    }
}
