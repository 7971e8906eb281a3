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

/// `"lat lon"` with C `std::to_string(double)` formatting (6 decimals).
pub fn latlon_text(ll: (f64, f64)) -> String {
    format!("{:.6} {:.6}", ll.0, ll.1)
}

/// LOC-format text as PowerDNS `latlonloc()` writes it.
pub fn latlon_loc(ll: (f64, f64)) -> String {
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
