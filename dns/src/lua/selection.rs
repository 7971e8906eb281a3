//! Which addresses an `ifportup`, `ifurlup` or `ifurlextup` call answers
//! with, given the health of its targets: PowerDNS 4.7 `genericIfUp` and
//! `ifurlextup` (pdns/lua-record.cc) as a pure function, with no Lua state
//! and no IO (the caller looks the health up).
//!
//! - The candidates come as sets (`{a, b}` is one set, `{{a, b}, {c}}`
//!   two). The first set with an address up wins, and `selector` picks
//!   among its up addresses.
//! - When no set has one, `backupSelector` picks among every address.
//! - A target not checked yet counts as down (PowerDNS 4.7.3 answers the
//!   first query with the backup selector) unless the checker is set to
//!   assume it up; with `failOnIncompleteCheck` (5.0) the call fails
//!   instead while no target at all has been checked.
//! - The selectors are PowerDNS `useSelector`'s: `all`, `random`, `hashed`
//!   (on `bestwho`) and `pickclosest`. Any other name (`wrandom`,
//!   `whashed`, ...) is logged and treated as `random`.

use super::health::Health;
use super::synth::{self, SynthError};
use rand::Rng;
use std::collections::HashMap;
use std::net::IpAddr;

/// The options of one call that steer the choice (the check options
/// belong to the health checker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IfUpOptions<'a> {
    /// `selector`: picks among the up addresses of the winning set.
    pub(super) selector: &'a str,
    /// `backupSelector`: picks among all addresses when none is up.
    pub(super) backup_selector: &'a str,
    /// `failOnIncompleteCheck`: fail rather than use the backup selector
    /// while no target has been checked yet.
    pub(super) fail_on_incomplete: bool,
    /// Count targets that were never checked as up.
    pub(super) assume_up: bool,
    /// Look up every target, not only those up to the winning set (zone
    /// load primes the record so that all its checks are registered).
    pub(super) visit_all: bool,
}

impl<'a> IfUpOptions<'a> {
    /// The options of a call's option table (selectors default to `random`).
    pub(super) fn from_opts(
        opts: &'a HashMap<String, String>,
        assume_up: bool,
        visit_all: bool,
    ) -> Self {
        let selector = |name: &str| opts.get(name).map_or("random", String::as_str);
        IfUpOptions {
            selector: selector("selector"),
            backup_selector: selector("backupSelector"),
            fail_on_incomplete: opts
                .get("failOnIncompleteCheck")
                .is_some_and(|v| v == "true"),
            assume_up,
            visit_all,
        }
    }
}

/// Why no address was chosen.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum IfUpError<E> {
    /// A candidate could not be read (e.g. it is not an address).
    Candidate(E),
    /// No target has been checked yet and `failOnIncompleteCheck` is set.
    Incomplete,
    /// The selector failed (e.g. no candidates at all, or no GeoIP data
    /// for `pickclosest`).
    Selector(SynthError),
}

/// The addresses to answer with.
///
/// `resolve` turns a candidate into its address and current health; it is
/// called once per candidate, in order, up to the end of the winning set
/// (or for all of them with [`IfUpOptions::visit_all`]), so candidates
/// after the winning set are never read. `bestwho`, `rng` and `closest`
/// feed the selectors (`hashed`, `random` and `pickclosest`).
pub(super) fn select_up<C, E, R: Rng + ?Sized>(
    sets: &[Vec<C>],
    mut resolve: impl FnMut(&C) -> Result<(IpAddr, Health), E>,
    opts: &IfUpOptions<'_>,
    bestwho: &IpAddr,
    rng: &mut R,
    closest: &dyn Fn(&[IpAddr]) -> Result<IpAddr, SynthError>,
) -> Result<Vec<IpAddr>, IfUpError<E>> {
    let mut all = Vec::new();
    let mut incomplete = true;
    let mut chosen: Option<Vec<IpAddr>> = None;
    for set in sets {
        let mut available = Vec::new();
        for candidate in set {
            let (addr, health) = resolve(candidate).map_err(IfUpError::Candidate)?;
            all.push(addr);
            if health != Health::Unknown {
                incomplete = false;
            }
            if health == Health::Up || (health == Health::Unknown && opts.assume_up) {
                available.push(addr);
            }
        }
        if !available.is_empty() && chosen.is_none() {
            chosen = Some(available);
            if !opts.visit_all {
                break;
            }
        }
    }
    let picked = match chosen {
        Some(available) => synth::use_selector(opts.selector, bestwho, &available, rng, closest),
        None if incomplete && opts.fail_on_incomplete => return Err(IfUpError::Incomplete),
        None => synth::use_selector(opts.backup_selector, bestwho, &all, rng, closest),
    };
    picked.map_err(IfUpError::Selector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::{BTreeSet, HashSet};
    use std::convert::Infallible;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| ip(s)).collect()
    }

    fn opts(selector: &'static str, backup: &'static str) -> IfUpOptions<'static> {
        IfUpOptions {
            selector,
            backup_selector: backup,
            fail_on_incomplete: false,
            assume_up: false,
            visit_all: false,
        }
    }

    /// Fails the test if a selector asks for geo data.
    fn no_geo(_: &[IpAddr]) -> Result<IpAddr, SynthError> {
        panic!("pickclosest was not asked for")
    }

    /// One selection with `health` as the checker's view (absent = Unknown).
    fn run(
        sets: &[Vec<IpAddr>],
        health: &HashMap<IpAddr, Health>,
        o: &IfUpOptions<'_>,
        bestwho: &str,
        seed: u64,
    ) -> Result<Vec<IpAddr>, IfUpError<Infallible>> {
        let mut rng = StdRng::seed_from_u64(seed);
        select_up(
            sets,
            |a: &IpAddr| Ok((*a, health.get(a).copied().unwrap_or(Health::Unknown))),
            o,
            &ip(bestwho),
            &mut rng,
            &no_geo,
        )
    }

    /// Every address a selection returns over many seeds.
    fn reachable(
        sets: &[Vec<IpAddr>],
        health: &HashMap<IpAddr, Health>,
        o: &IfUpOptions<'_>,
    ) -> BTreeSet<IpAddr> {
        (0..200u64)
            .flat_map(|seed| {
                let picked = run(sets, health, o, "198.51.100.7", seed).expect("selection");
                assert_eq!(picked.len(), 1, "one address per answer: {picked:?}");
                picked
            })
            .collect()
    }

    fn states(pairs: &[(&str, Health)]) -> HashMap<IpAddr, Health> {
        pairs.iter().map(|(a, h)| (ip(a), *h)).collect()
    }

    const A: &str = "192.0.2.1";
    const B: &str = "192.0.2.2";
    const C: &str = "192.0.2.3";
    const D: &str = "192.0.2.4";

    #[test]
    fn all_up_random_reaches_every_address_of_the_set() {
        let sets = vec![ips(&[A, B, C])];
        let h = states(&[(A, Health::Up), (B, Health::Up), (C, Health::Up)]);
        assert_eq!(
            reachable(&sets, &h, &opts("random", "random")),
            ips(&[A, B, C]).into_iter().collect()
        );
    }

    #[test]
    fn down_addresses_are_never_picked_while_another_is_up() {
        let sets = vec![ips(&[A, B, C])];
        let h = states(&[(A, Health::Down), (B, Health::Up), (C, Health::Down)]);
        assert_eq!(
            reachable(&sets, &h, &opts("random", "random")),
            ips(&[B]).into_iter().collect()
        );
        let all = run(&sets, &h, &opts("all", "random"), A, 0).expect("selection");
        assert_eq!(all, ips(&[B]));
    }

    #[test]
    fn selector_all_returns_the_up_addresses_in_order() {
        let sets = vec![ips(&[A, B, C, D])];
        let h = states(&[
            (A, Health::Up),
            (B, Health::Down),
            (C, Health::Up),
            (D, Health::Up),
        ]);
        let got = run(&sets, &h, &opts("all", "all"), A, 0).expect("selection");
        assert_eq!(got, ips(&[A, C, D]));
    }

    #[test]
    fn a_set_with_nothing_up_falls_through_to_the_next() {
        let sets = vec![ips(&[A, B]), ips(&[C, D])];
        let h = states(&[
            (A, Health::Down),
            (B, Health::Down),
            (C, Health::Down),
            (D, Health::Up),
        ]);
        let got = run(&sets, &h, &opts("all", "all"), A, 0).expect("selection");
        assert_eq!(got, ips(&[D]));
    }

    #[test]
    fn the_first_set_with_an_address_up_wins_over_later_sets() {
        let sets = vec![ips(&[A, B]), ips(&[C, D])];
        let h = states(&[
            (A, Health::Down),
            (B, Health::Up),
            (C, Health::Up),
            (D, Health::Up),
        ]);
        let got = run(&sets, &h, &opts("all", "all"), A, 0).expect("selection");
        assert_eq!(got, ips(&[B]));
    }

    #[test]
    fn all_down_applies_the_backup_selector_over_every_address() {
        let sets = vec![ips(&[A, B]), ips(&[C])];
        let h = states(&[(A, Health::Down), (B, Health::Down), (C, Health::Down)]);
        let got = run(&sets, &h, &opts("random", "all"), A, 0).expect("selection");
        assert_eq!(got, ips(&[A, B, C]));
        // Default backup selector: one random address out of all sets.
        assert_eq!(
            reachable(&sets, &h, &opts("random", "random")),
            ips(&[A, B, C]).into_iter().collect()
        );
    }

    #[test]
    fn unchecked_targets_count_as_down_unless_assumed_up() {
        let sets = vec![ips(&[A, B])];
        let h = states(&[(A, Health::Down)]);
        // B never checked: as down, so the backup selector runs over A and B.
        let got = run(&sets, &h, &opts("all", "all"), A, 0).expect("selection");
        assert_eq!(got, ips(&[A, B]));
        // Assumed up: B is the only available address.
        let o = IfUpOptions {
            assume_up: true,
            ..opts("all", "all")
        };
        let got = run(&sets, &h, &o, A, 0).expect("selection");
        assert_eq!(got, ips(&[B]));
    }

    #[test]
    fn fail_on_incomplete_check_fails_only_while_nothing_was_checked() {
        let sets = vec![ips(&[A, B])];
        let o = IfUpOptions {
            fail_on_incomplete: true,
            ..opts("all", "all")
        };
        let nothing = HashMap::new();
        assert_eq!(run(&sets, &nothing, &o, A, 0), Err(IfUpError::Incomplete));
        // One target checked (down): the backup selector applies again.
        let one = states(&[(A, Health::Down)]);
        assert_eq!(run(&sets, &one, &o, A, 0), Ok(ips(&[A, B])));
        // Without the option, nothing checked means the backup selector.
        assert_eq!(
            run(&sets, &nothing, &opts("all", "all"), A, 0),
            Ok(ips(&[A, B]))
        );
        // Assumed up: unchecked targets are available, no failure.
        let up = IfUpOptions {
            assume_up: true,
            ..o
        };
        assert_eq!(run(&sets, &nothing, &up, A, 0), Ok(ips(&[A, B])));
    }

    #[test]
    fn hashed_is_stable_per_client_and_matches_pickhashed() {
        let sets = vec![ips(&[A, B, C, D])];
        let h = states(&[
            (A, Health::Up),
            (B, Health::Up),
            (C, Health::Up),
            (D, Health::Up),
        ]);
        let o = opts("hashed", "random");
        let mut seen = HashSet::new();
        for client in ["198.51.100.1", "198.51.100.2", "203.0.113.9", "2001:db8::1"] {
            let first = run(&sets, &h, &o, client, 1).expect("selection");
            let again = run(&sets, &h, &o, client, 99).expect("selection");
            assert_eq!(first, again, "hashed ignores the rng for {client}");
            let want = synth::pick_hashed(&ip(client), &sets[0]).expect("pick");
            assert_eq!(first, vec![want]);
            seen.insert(first[0]);
        }
        assert!(seen.len() > 1, "different clients spread: {seen:?}");
    }

    #[test]
    fn hashed_backup_hashes_over_all_addresses() {
        let sets = vec![ips(&[A]), ips(&[B, C])];
        let h = states(&[(A, Health::Down), (B, Health::Down), (C, Health::Down)]);
        let client = "203.0.113.77";
        let got = run(&sets, &h, &opts("random", "hashed"), client, 0).expect("selection");
        let want = synth::pick_hashed(&ip(client), &ips(&[A, B, C])).expect("pick");
        assert_eq!(got, vec![want]);
    }

    #[test]
    fn pickclosest_gets_the_available_addresses() {
        let sets = vec![ips(&[A, B, C])];
        let h = states(&[(A, Health::Up), (B, Health::Down), (C, Health::Up)]);
        let closest = |c: &[IpAddr]| {
            assert_eq!(c, ips(&[A, C]).as_slice());
            Ok(c[1])
        };
        let mut rng = StdRng::seed_from_u64(0);
        let got = select_up(
            &sets,
            |a: &IpAddr| Ok::<_, Infallible>((*a, h[a])),
            &opts("pickclosest", "random"),
            &ip("198.51.100.1"),
            &mut rng,
            &closest,
        );
        assert_eq!(got, Ok(ips(&[C])));
        // A failing lookup (no GeoIP data) is the selector's error.
        let fail = |_: &[IpAddr]| Err(SynthError("no geo".into()));
        let got = select_up(
            &sets,
            |a: &IpAddr| Ok::<_, Infallible>((*a, h[a])),
            &opts("pickclosest", "random"),
            &ip("198.51.100.1"),
            &mut rng,
            &fail,
        );
        assert_eq!(got, Err(IfUpError::Selector(SynthError("no geo".into()))));
    }

    #[test]
    fn unknown_selectors_fall_back_to_random() {
        let sets = vec![ips(&[A, B, C])];
        let h = states(&[(A, Health::Up), (B, Health::Up), (C, Health::Down)]);
        for name in ["wrandom", "whashed", "closest", ""] {
            assert_eq!(
                reachable(&sets, &h, &opts(name, "random")),
                ips(&[A, B]).into_iter().collect(),
                "selector {name:?}"
            );
        }
    }

    #[test]
    fn no_candidates_is_a_selector_error() {
        let sets: Vec<Vec<IpAddr>> = vec![];
        let got = run(&sets, &HashMap::new(), &opts("random", "random"), A, 0);
        assert!(matches!(got, Err(IfUpError::Selector(_))), "{got:?}");
        let got = run(&[vec![]], &HashMap::new(), &opts("random", "all"), A, 0);
        assert_eq!(got, Ok(vec![]), "`all` of nothing is nothing");
    }

    #[test]
    fn resolution_stops_after_the_winning_set_unless_visiting_all() {
        let sets = vec![vec![A, B], vec![C, "not an address"]];
        let h = states(&[(A, Health::Up)]);
        let resolve = |seen: &mut Vec<String>, s: &&str| {
            seen.push(s.to_string());
            s.parse::<IpAddr>()
                .map(|a| (a, h.get(&a).copied().unwrap_or(Health::Unknown)))
                .map_err(|_| s.to_string())
        };
        let mut rng = StdRng::seed_from_u64(0);
        let mut seen = Vec::new();
        let got = select_up(
            &sets,
            |s| resolve(&mut seen, s),
            &opts("all", "all"),
            &ip(A),
            &mut rng,
            &no_geo,
        );
        assert_eq!(got, Ok(ips(&[A])));
        assert_eq!(seen, vec![A, B], "the second set is never read");

        // Priming reads (and so registers) everything, and a bad candidate
        // in a later set is an error then.
        let mut seen = Vec::new();
        let o = IfUpOptions {
            visit_all: true,
            ..opts("all", "all")
        };
        let got = select_up(
            &sets,
            |s| resolve(&mut seen, s),
            &o,
            &ip(A),
            &mut rng,
            &no_geo,
        );
        assert_eq!(got, Err(IfUpError::Candidate("not an address".into())));
        assert_eq!(seen, vec![A, B, C, "not an address"]);
    }

    #[test]
    fn visiting_all_keeps_the_first_winning_set() {
        let sets = vec![ips(&[A]), ips(&[B])];
        let h = states(&[(A, Health::Up), (B, Health::Up)]);
        let o = IfUpOptions {
            visit_all: true,
            ..opts("all", "all")
        };
        assert_eq!(run(&sets, &h, &o, A, 0), Ok(ips(&[A])));
    }

    #[test]
    fn options_come_from_the_option_table() {
        let table: HashMap<String, String> = [
            ("selector", "all"),
            ("backupSelector", "hashed"),
            ("failOnIncompleteCheck", "true"),
            ("minimumFailures", "3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = IfUpOptions::from_opts(&table, true, false);
        assert_eq!(
            o,
            IfUpOptions {
                selector: "all",
                backup_selector: "hashed",
                fail_on_incomplete: true,
                assume_up: true,
                visit_all: false,
            }
        );
        let empty = HashMap::new();
        let o = IfUpOptions::from_opts(&empty, false, true);
        assert_eq!((o.selector, o.backup_selector), ("random", "random"));
        assert!(!o.fail_on_incomplete && o.visit_all);
        let other: HashMap<String, String> =
            [("failOnIncompleteCheck".to_string(), "1".to_string())].into();
        assert!(!IfUpOptions::from_opts(&other, false, false).fail_on_incomplete);
    }
}
