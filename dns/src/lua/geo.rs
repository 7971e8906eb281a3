//! GeoIP lookups behind the geo functions (`country`, `continent`,
//! `region`, `asnum`, `latlon`, `pickclosest`, ...).
//!
//! PowerDNS needs its geoip backend for these; without it 4.7 silently
//! answers `--` / `0.000000 0.000000` / a random "closest" address. pdm
//! instead fails the evaluation (SERVFAIL) with a clear error when no
//! provider is configured, so a misconfiguration is visible.

use std::net::IpAddr;

/// What a GeoIP database knows about one address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    /// ISO 3166 two-letter country code (`Country2`).
    pub country: Option<String>,
    /// Two-letter continent code (`Continent`).
    pub continent: Option<String>,
    /// First subdivision code (`Region`).
    pub region: Option<String>,
    /// Autonomous system number (`ASn`).
    pub asn: Option<u32>,
    /// Latitude and longitude in degrees (`Location`).
    pub location: Option<(f64, f64)>,
    /// City name (`City`).
    pub city: Option<String>,
}

/// A GeoIP source (a MaxMind-format database in production, a table in tests).
pub trait GeoProvider: Send + Sync {
    /// Everything known about `addr` (empty when unknown).
    fn lookup(&self, addr: &IpAddr) -> GeoInfo;
}

/// A fixed table of networks, for tests and small static setups.
#[derive(Debug, Clone, Default)]
pub struct StaticGeo {
    entries: Vec<(super::addr::Netmask, GeoInfo)>,
}

impl StaticGeo {
    /// Add a network (`"192.0.2.0/24"`); longest prefix wins.
    pub fn with(mut self, net: &str, info: GeoInfo) -> Self {
        if let Some(nm) = super::addr::Netmask::parse(net) {
            self.entries.push((nm, info));
        }
        self
    }
}

impl GeoProvider for StaticGeo {
    fn lookup(&self, addr: &IpAddr) -> GeoInfo {
        self.entries
            .iter()
            .filter(|(nm, _)| nm.matches(addr))
            .max_by_key(|(nm, _)| nm.bits)
            .map(|(_, i)| i.clone())
            .unwrap_or_default()
    }
}

/// One or more MaxMind-format databases (e.g. GeoLite2-City + GeoLite2-ASN);
/// fields found in several come from the first that has them.
pub struct MaxMindGeo {
    readers: Vec<maxminddb::Reader<Vec<u8>>>,
}

impl std::fmt::Debug for MaxMindGeo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxMindGeo")
            .field("databases", &self.readers.len())
            .finish()
    }
}

/// The GeoIP2 fields PowerDNS's geoip backend reads (owned, so the
/// database layout of any GeoIP2/GeoLite2 edition decodes).
#[derive(serde::Deserialize, Default)]
struct MmdbRecord {
    country: Option<MmdbIso>,
    continent: Option<MmdbCode>,
    subdivisions: Option<Vec<MmdbIso>>,
    location: Option<MmdbLocation>,
    city: Option<MmdbNames>,
    autonomous_system_number: Option<u32>,
}

#[derive(serde::Deserialize)]
struct MmdbIso {
    iso_code: Option<String>,
}

#[derive(serde::Deserialize)]
struct MmdbCode {
    code: Option<String>,
}

#[derive(serde::Deserialize)]
struct MmdbLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

#[derive(serde::Deserialize)]
struct MmdbNames {
    names: Option<std::collections::BTreeMap<String, String>>,
}

impl MaxMindGeo {
    /// Open the database files (read into memory once).
    pub fn open(paths: &[impl AsRef<std::path::Path>]) -> Result<MaxMindGeo, String> {
        let readers = paths
            .iter()
            .map(|p| {
                maxminddb::Reader::open_readfile(p.as_ref())
                    .map_err(|e| format!("{}: {e}", p.as_ref().display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MaxMindGeo { readers })
    }

    /// Databases already in memory (tests, embedded data).
    pub fn from_bytes(dbs: Vec<Vec<u8>>) -> Result<MaxMindGeo, String> {
        let readers = dbs
            .into_iter()
            .map(|b| maxminddb::Reader::from_source(b).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MaxMindGeo { readers })
    }
}

impl GeoProvider for MaxMindGeo {
    fn lookup(&self, addr: &IpAddr) -> GeoInfo {
        let mut info = GeoInfo::default();
        for r in &self.readers {
            let rec: MmdbRecord = match r.lookup(*addr).and_then(|l| l.decode::<MmdbRecord>()) {
                Ok(Some(rec)) => rec,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "GeoIP lookup failed");
                    continue;
                }
            };
            let first_sub = rec.subdivisions.and_then(|s| s.into_iter().next());
            info.country = info.country.or(rec.country.and_then(|c| c.iso_code));
            info.continent = info.continent.or(rec.continent.and_then(|c| c.code));
            info.region = info.region.or(first_sub.and_then(|s| s.iso_code));
            info.asn = info.asn.or(rec.autonomous_system_number);
            info.city = info.city.or(rec
                .city
                .and_then(|c| c.names)
                .and_then(|mut n| n.remove("en")));
            if info.location.is_none() {
                if let Some(MmdbLocation {
                    latitude: Some(lat),
                    longitude: Some(lon),
                }) = rec.location
                {
                    info.location = Some((lat, lon));
                }
            }
        }
        info
    }
}

/// `"lat lon"` with C `std::to_string(double)` formatting (6 decimals).
pub(super) fn latlon_text(ll: (f64, f64)) -> String {
    format!("{:.6} {:.6}", ll.0, ll.1)
}

/// LOC-format text as PowerDNS `latlonloc()` writes it.
pub(super) fn latlon_loc(ll: (f64, f64)) -> String {
    let (mut lat, mut lon) = ll;
    let lathem = if lat > 0.0 {
        'N'
    } else {
        lat = -lat;
        'S'
    };
    let lonhem = if lon > 0.0 {
        'E'
    } else {
        lon = -lon;
        'W'
    };
    let dms = |v: f64| {
        let deg = v.trunc();
        let min = ((v - deg) * 60.0).trunc();
        let sec = ((v - deg) * 60.0 - min) * 60.0;
        // boost::format's %d does not convert: the double seconds print as
        // an ostream would (%g, precision 6).
        (deg as i64, min as i64, super::synth::format_g(sec, 6))
    };
    let (ad, am, asec) = dms(lat);
    let (od, om, osec) = dms(lon);
    format!("{ad} {am} {asec} {lathem} {od} {om} {osec} {lonhem} 0.00m 1.00m 10000.00m 10.00m")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal MaxMind DB (format 2.0, IPv4 tree, 24-bit records)
    /// mapping 192.0.2.0/24 to one GeoIP2-style record.
    fn tiny_mmdb() -> Vec<u8> {
        fn ctrl(out: &mut Vec<u8>, ty: u8, size: usize) {
            if ty <= 7 {
                out.push(ty << 5 | size as u8);
            } else {
                out.push(size as u8);
                out.push(ty - 7);
            }
        }
        fn string(out: &mut Vec<u8>, s: &str) {
            ctrl(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        fn uint(out: &mut Vec<u8>, ty: u8, v: u64, width: usize) {
            ctrl(out, ty, width);
            out.extend_from_slice(&v.to_be_bytes()[8 - width..]);
        }
        fn double(out: &mut Vec<u8>, v: f64) {
            ctrl(out, 3, 8);
            out.extend_from_slice(&v.to_be_bytes());
        }
        let mut data = Vec::new();
        ctrl(&mut data, 7, 5);
        string(&mut data, "country");
        ctrl(&mut data, 7, 1);
        string(&mut data, "iso_code");
        string(&mut data, "NL");
        string(&mut data, "continent");
        ctrl(&mut data, 7, 1);
        string(&mut data, "code");
        string(&mut data, "EU");
        string(&mut data, "subdivisions");
        ctrl(&mut data, 11, 1);
        ctrl(&mut data, 7, 1);
        string(&mut data, "iso_code");
        string(&mut data, "GE");
        string(&mut data, "location");
        ctrl(&mut data, 7, 2);
        string(&mut data, "latitude");
        double(&mut data, 52.0);
        string(&mut data, "longitude");
        double(&mut data, 5.0);
        string(&mut data, "autonomous_system_number");
        uint(&mut data, 6, 64500, 2);

        // 24 nodes follow the bits of 192.0.2.0; the other branch of each
        // is "no data" (node_count); the last points at the record.
        let prefix: u32 = u32::from(std::net::Ipv4Addr::new(192, 0, 2, 0));
        let node_count: u32 = 24;
        let mut tree = Vec::new();
        for depth in 0..24u32 {
            let bit = (prefix >> (31 - depth)) & 1;
            let next = if depth == 23 {
                node_count + 16
            } else {
                depth + 1
            };
            let (l, r) = if bit == 0 {
                (next, node_count)
            } else {
                (node_count, next)
            };
            tree.extend_from_slice(&l.to_be_bytes()[1..]);
            tree.extend_from_slice(&r.to_be_bytes()[1..]);
        }
        let mut db = tree;
        db.extend_from_slice(&[0u8; 16]);
        db.extend_from_slice(&data);
        db.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let mut meta = Vec::new();
        ctrl(&mut meta, 7, 9);
        string(&mut meta, "node_count");
        uint(&mut meta, 6, u64::from(node_count), 4);
        string(&mut meta, "record_size");
        uint(&mut meta, 5, 24, 2);
        string(&mut meta, "ip_version");
        uint(&mut meta, 5, 4, 2);
        string(&mut meta, "database_type");
        string(&mut meta, "Test-City");
        string(&mut meta, "languages");
        ctrl(&mut meta, 11, 1);
        string(&mut meta, "en");
        string(&mut meta, "binary_format_major_version");
        uint(&mut meta, 5, 2, 2);
        string(&mut meta, "binary_format_minor_version");
        uint(&mut meta, 5, 0, 2);
        string(&mut meta, "build_epoch");
        uint(&mut meta, 9, 0, 8);
        string(&mut meta, "description");
        ctrl(&mut meta, 7, 1);
        string(&mut meta, "en");
        string(&mut meta, "test");
        db.extend_from_slice(&meta);
        db
    }

    #[test]
    fn maxmind_format() {
        let g = MaxMindGeo::from_bytes(vec![tiny_mmdb()]).unwrap();
        let i = g.lookup(&"192.0.2.99".parse().unwrap());
        assert_eq!(i.country.as_deref(), Some("NL"));
        assert_eq!(i.continent.as_deref(), Some("EU"));
        assert_eq!(i.region.as_deref(), Some("GE"));
        assert_eq!(i.asn, Some(64500));
        assert_eq!(i.location, Some((52.0, 5.0)));
        assert_eq!(
            g.lookup(&"198.51.100.1".parse().unwrap()),
            GeoInfo::default()
        );
        assert!(MaxMindGeo::from_bytes(vec![b"junk".to_vec()]).is_err());
        assert!(MaxMindGeo::open(&["/nonexistent.mmdb"]).is_err());
    }

    #[test]
    fn static_lookup_and_text() {
        let g = StaticGeo::default()
            .with(
                "192.0.2.0/24",
                GeoInfo {
                    country: Some("NL".into()),
                    ..Default::default()
                },
            )
            .with(
                "192.0.2.128/25",
                GeoInfo {
                    country: Some("BE".into()),
                    ..Default::default()
                },
            );
        assert_eq!(
            g.lookup(&"192.0.2.1".parse().unwrap()).country.as_deref(),
            Some("NL")
        );
        assert_eq!(
            g.lookup(&"192.0.2.200".parse().unwrap()).country.as_deref(),
            Some("BE")
        );
        assert_eq!(
            g.lookup(&"198.51.100.1".parse().unwrap()),
            GeoInfo::default()
        );
        assert_eq!(latlon_text((52.5, -1.25)), "52.500000 -1.250000");
        assert_eq!(
            latlon_loc((51.9833, 5.9167)),
            "51 58 59.88 N 5 55 0.12 E 0.00m 1.00m 10000.00m 10.00m"
        );
    }
}
