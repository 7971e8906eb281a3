//! The zones and engines the targets answer from, built once per process:
//! an unsigned zone (delegation, wildcard, CNAME chains and loops, an empty non-terminal), the
//! same records signed with NSEC3 and with compact denial, and a zone of
//! LUA records (no health-check functions: a fuzzer must not probe ports).

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use pdm_dns::dnssec::keys::generate;
use pdm_dns::dnssec::{
    DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, ZoneKey, ZoneSigner,
};
use pdm_dns::lua::{LuaConfig, LuaEngine};
use pdm_dns::server::cache::PacketCache;
use pdm_dns::server::{Handler, LuaRuntime, ServedZone, SharedZones, ZoneSet};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::Zone;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What every target shares.
pub(crate) struct Fixture {
    /// The zone table the handler reads.
    pub zones: SharedZones,
    /// The handler, LUA evaluated inline.
    pub handler: Handler,
    /// A packet cache in front of it (UDP), as the receive loops use one.
    pub cache: PacketCache,
    /// The engine the LUA target evaluates with.
    pub lua: LuaEngine,
}

/// The fixture, built on first use.
pub(crate) fn get() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// Static records of the plain and signed zones; `@ORIGIN@` is replaced.
const STATIC: &str = "$TTL 300
@ IN SOA ns1 hostmaster 7 3600 600 86400 60
@ IN NS ns1
@ IN NS ns2.elsewhere.test.
@ IN MX 10 mail
@ IN TXT \"v=spf1 -all\"
ns1 IN A 192.0.2.1
ns1 IN AAAA 2001:db8::1
www IN A 192.0.2.2
www IN AAAA 2001:db8::2
mail IN A 192.0.2.3
alias IN CNAME www
loop1 IN CNAME loop2
loop2 IN CNAME loop1
out IN CNAME www.elsewhere.test.
*.wild IN A 192.0.2.4
*.wild IN TXT \"wildcard\"
sub IN NS ns.sub
ns.sub IN A 192.0.2.5
deep.empty.non.terminal IN A 192.0.2.6
srv._tcp IN SRV 0 5 443 www
caa IN CAA 0 issue \"ca.example\"
";

/// The LUA zone's records.
const LUA: &str = "$ORIGIN lua.test.
$TTL 60
@ IN SOA ns hostmaster 1 3600 600 86400 60
@ IN NS ns
ns IN A 192.0.2.1
rnd IN LUA A \"pickrandom({'192.0.2.1','192.0.2.2','192.0.2.3'})\"
whash IN LUA A \"pickwhashed({{1,'192.0.2.1'},{2,'192.0.2.2'}})\"
hashed IN LUA AAAA \"pickhashed({'2001:db8::1','2001:db8::2'})\"
all IN LUA A \"{'192.0.2.8','192.0.2.9'}\"
txt IN LUA TXT \"'hello ' .. qname:toString()\"
who IN LUA TXT \"bestwho:toString()\"
none IN LUA A \"{}\"
bad IN LUA A \"error('boom')\"
spin IN LUA A \"while true do end\"
*.fwd IN LUA A \"createForward()\"
*.rev IN LUA PTR \"createReverse('host-%1%-%2%-%3%-%4%.example.test')\"
";

fn build() -> Fixture {
    // Ed25519: its signatures are deterministic, so an RRset signed again
    // after the small signature cache evicted it (compact denial fills it
    // with one NSEC per random name) still gives the same bytes, and the
    // two planning paths compare equal. With ECDSA's random nonces they
    // differed, validly, once the cache churned (seed 3, 40 s).
    let key = Arc::new(
        ZoneKey::from_pkcs8(
            KeyAlgorithm::Ed25519,
            KeyRole::Csk,
            &generate(KeyAlgorithm::Ed25519).expect("key generation"),
        )
        .expect("a generated key loads"),
    );
    let mut set = ZoneSet::new();
    let zone = |origin: &str| {
        let text = format!("$ORIGIN {origin}\n{STATIC}");
        let (origin, records) = parse_master(&text, None).expect("fixture zone parses");
        Zone::new(origin, records).expect("fixture zone builds")
    };
    set.insert(Arc::new(zone("example.com.")).into());
    for (origin, mode) in [
        ("nsec3.test.", DenialMode::Nsec3),
        ("compact.test.", DenialMode::Compact),
    ] {
        let zone = zone(origin);
        let signer = ZoneSigner::new(
            &zone,
            vec![key.clone()],
            vec![key.clone()],
            mode,
            Arc::new(SigCache::new(256)),
            SigningPolicy::default(),
        );
        set.insert(ServedZone::signed(Arc::new(zone), Arc::new(signer)));
    }
    let (origin, records) = parse_master(LUA, None).expect("LUA zone parses");
    set.insert(Arc::new(Zone::new(origin, records).expect("LUA zone builds")).into());
    debug_assert!(set
        .get(&Name::from_ascii("lua.test.").expect("name"))
        .is_some());

    // Small budgets keep a runaway program from dominating the run.
    let lua = LuaEngine::new(LuaConfig {
        max_instructions: 20_000,
        timeout: Duration::from_millis(50),
        memory_limit: 4 << 20,
        pool_size: 2,
        ..LuaConfig::default()
    });
    let zones: SharedZones = Arc::new(ArcSwap::from_pointee(set));
    let handler =
        Handler::new(zones.clone()).with_lua(Some(LuaRuntime::new(lua.clone(), 1).inline()));
    Fixture {
        zones,
        handler,
        cache: PacketCache::new(1024),
        lua,
    }
}
