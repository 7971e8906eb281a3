//! The authoritative lookup algorithm over one [`Zone`].
//!
//! Pure: takes a zone and a question, returns the sections of the answer and
//! what kind of answer it was ([`AnswerKind`]) so that a DNSSEC signer can
//! later add the matching proofs (NSEC3 / compact denial, wildcard proofs).

use super::tree::{Node, RRset};
use super::Zone;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Maximum number of CNAMEs followed inside one zone (loops stop earlier).
pub const MAX_CNAME_CHAIN: usize = 8;

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
}

/// Where a name landed in the tree.
enum Located<'z> {
    /// Exact node (not at/below a cut, except a DS query at the cut itself).
    Exact(&'z Node),
    /// Synthesized from a wildcard node.
    Wildcard { node: &'z Node, ce: &'z Name },
    /// At or below a delegation point.
    Referral { cut: &'z Name, node: &'z Node },
    /// Name does not exist.
    NxDomain { ce: &'z Name },
}

impl Zone {
    /// Find where `qname` lands; `None` when it is outside the zone.
    fn locate(&self, qname: &Name, qtype: RecordType) -> Option<Located<'_>> {
        if !self.origin().zone_of(qname) {
            return None;
        }
        if let Some((_, node)) = self.node_entry(qname) {
            if node.occluded || (node.cut && qtype != RecordType::DS) {
                return Some(self.referral_for(qname));
            }
            return Some(Located::Exact(node));
        }
        // Closest encloser: the deepest existing ancestor. ENTs are nodes, so
        // the first hit walking up is it; the apex always exists.
        let mut anc = qname.base_name();
        let (ce, ce_node) = loop {
            if let Some(e) = self.node_entry(&anc) {
                break e;
            }
            if super::tree::label_count(&anc) <= self.origin_labels() {
                // Unreachable for a well-formed zone (apex exists).
                let (k, n) = self.node_entry(self.origin())?;
                break (k, n);
            }
            anc = anc.base_name();
        };
        if self.has_cuts() && (ce_node.cut || ce_node.occluded) {
            return Some(self.referral_for(ce));
        }
        if self.has_wildcards() {
            if let Ok(star) = ce.prepend_label("*") {
                if let Some(node) = self.node(&star) {
                    return Some(Located::Wildcard { node, ce });
                }
            }
        }
        Some(Located::NxDomain { ce })
    }

    fn referral_for(&self, name: &Name) -> Located<'_> {
        match self.topmost_cut(name) {
            Some((cut, node)) => Located::Referral { cut, node },
            // Flags say there is a cut; if not, treat as non-existent.
            None => Located::NxDomain { ce: self.origin() },
        }
    }
}

/// Copy an RRset's records into `out` with the owner replaced by `owner`
/// (the query's spelling, for 0x20 case preservation and wildcard synthesis).
fn push_owned(out: &mut Vec<Record>, set: &RRset, owner: &Name) {
    out.reserve(set.records.len());
    for r in &set.records {
        out.push(Record::from_rdata(owner.clone(), r.ttl, r.data.clone()));
    }
}

fn push_additional(out: &mut Vec<Record>, set: &RRset) {
    out.extend(set.additional.iter().cloned());
}

/// Outcome of answering at one node for one name in the chain.
enum Step<'z> {
    Done(AnswerKind),
    Follow(&'z Name),
}

/// Answer at an existing node (exact or wildcard) for `owner`.
fn answer_at_node<'z>(
    node: &'z Node,
    owner: &Name,
    qtype: RecordType,
    wildcard_ce: Option<&Name>,
    ans: &mut Answer,
    zone: &Zone,
) -> Step<'z> {
    let positive = || match wildcard_ce {
        Some(ce) => AnswerKind::Wildcard {
            closest_encloser: ce.clone(),
        },
        None => AnswerKind::Positive,
    };
    if qtype == RecordType::ANY {
        // RFC 8482: one RRset, chosen deterministically (lowest type code).
        if let Some(set) = node.rrsets.iter().find(|s| s.rtype != RecordType::RRSIG) {
            push_owned(&mut ans.answers, set, owner);
            return Step::Done(positive());
        }
    } else if let Some(set) = node.rrset(qtype) {
        push_owned(&mut ans.answers, set, owner);
        push_additional(&mut ans.additional, set);
        return Step::Done(positive());
    } else if let Some(set) = node.rrset(RecordType::CNAME) {
        push_owned(&mut ans.answers, set, owner);
        if let Some(RData::CNAME(target)) = set.records.first().map(|r| &r.data) {
            return Step::Follow(&target.0);
        }
        return Step::Done(positive());
    }
    ans.authority.push(zone.negative_soa().clone());
    Step::Done(AnswerKind::NoData {
        wildcard: wildcard_ce.cloned(),
    })
}

/// Answer `qname`/`qtype` from `zone` as an authoritative server.
///
/// `qname` may be in any case: records owned by it are returned under the
/// query's spelling. Out-of-zone names give `Refused` with
/// [`AnswerKind::NotInZone`].
pub fn lookup(zone: &Zone, qname: &Name, qtype: RecordType) -> Answer {
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
    let end = loop {
        let Some(loc) = zone.locate(&current, qtype) else {
            if links.is_empty() {
                ans.rcode = ResponseCode::Refused;
                ans.authoritative = false;
                return Answer {
                    kind: AnswerKind::NotInZone,
                    ..ans
                };
            }
            // CNAME left the zone: the resolver follows it.
            break AnswerKind::NotInZone;
        };
        let (step, wild) = match loc {
            Located::Exact(node) => (
                answer_at_node(node, &current, qtype, None, &mut ans, zone),
                None,
            ),
            Located::Wildcard { node, ce } => (
                answer_at_node(node, &current, qtype, Some(ce), &mut ans, zone),
                Some(ce),
            ),
            Located::Referral { cut, node } => {
                if let Some(ns) = node.rrset(RecordType::NS) {
                    ans.authority.extend(ns.records.iter().cloned());
                    push_additional(&mut ans.additional, ns);
                }
                // AA=0 only when the referral is the whole answer; after a
                // CNAME the answer section is still authoritative data.
                if links.is_empty() {
                    ans.authoritative = false;
                }
                break AnswerKind::Referral { cut: cut.clone() };
            }
            Located::NxDomain { ce } => {
                // RFC 6604: the rcode describes the last name in the chain.
                ans.rcode = ResponseCode::NXDomain;
                ans.authority.push(zone.negative_soa().clone());
                break AnswerKind::NxDomain {
                    closest_encloser: ce.clone(),
                };
            }
        };
        match step {
            Step::Done(kind) => break kind,
            Step::Follow(target) => {
                links.push((current, wild.cloned()));
                let looped = links.iter().any(|(n, _)| n == target);
                if looped || links.len() >= MAX_CNAME_CHAIN {
                    break AnswerKind::Positive;
                }
                current = target.clone();
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
    ans
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
}
