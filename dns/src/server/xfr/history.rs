//! The zone versions transfers were served from, per zone: what IXFR
//! computes its differences from. In memory only: after a restart (or for
//! a serial older than the versions kept) a secondary gets the whole zone,
//! which RFC 1995 allows in answer to IXFR.

use crate::dnssec::export::ExportError;
use crate::dnssec::signed::SignedView;
use crate::server::ServedZone;
use crate::zone::key;
use hickory_proto::rr::Name;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Versions kept per zone (each shares all but its changes with the next).
const VERSIONS_KEPT: usize = 64;

/// One zone version as transferred: its data and, when signed, the
/// signatures and NSEC3 records sent with it.
#[derive(Debug, Clone)]
pub(super) struct Version {
    pub serial: u32,
    pub zone: ServedZone,
    pub view: Option<Arc<SignedView>>,
    /// The clients this process sent this version to: IXFR starts from a
    /// version only for them. Signatures differ at every signing, so a
    /// secondary holding the same serial from before a restart, or from
    /// another replica, holds other RRSIGs than these.
    receivers: Arc<Mutex<Vec<IpAddr>>>,
}

impl Version {
    /// `client` now holds this version.
    pub fn sent_to(&self, client: IpAddr) {
        let mut r = match self.receivers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !r.contains(&client) {
            r.push(client);
        }
    }

    fn held_by(&self, client: IpAddr) -> bool {
        match self.receivers.lock() {
            Ok(g) => g.contains(&client),
            Err(p) => p.into_inner().contains(&client),
        }
    }
}

/// Versions per zone (by the origin's canonical key).
#[derive(Debug, Default)]
pub(super) struct History {
    zones: Mutex<HashMap<Vec<u8>, VecDeque<Version>>>,
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, VecDeque<Version>>> {
        match self.zones.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The version for `served`, made now (from the newest kept version
    /// when there is one) unless it is the newest kept already.
    pub fn publish(&self, served: &ServedZone, now: u32) -> Result<Version, ExportError> {
        let zone = served.zone();
        let k = key::of(zone.origin());
        let last = self.lock().get(&k).and_then(|v| v.back().cloned());
        if let Some(last) = &last {
            if Arc::ptr_eq(last.zone.zone(), zone) {
                return Ok(last.clone());
            }
        }
        // Signing happens outside the lock: other zones' transfers go on.
        let view = match served.signer() {
            None => None,
            Some(signer) => Some(Arc::new(
                match last.as_ref().and_then(|l| l.view.as_ref().map(|v| (l, v))) {
                    Some((l, v)) => v.follow(l.zone.zone(), zone, signer, now)?,
                    None => SignedView::build(zone, signer, now)?,
                },
            )),
        };
        let version = Version {
            serial: zone.serial(),
            zone: served.clone(),
            view,
            receivers: Arc::default(),
        };
        let mut zones = self.lock();
        let versions = zones.entry(k).or_default();
        // Two transfers of one new version at once: keep the first.
        if let Some(same) = versions.iter().find(|v| Arc::ptr_eq(v.zone.zone(), zone)) {
            return Ok(same.clone());
        }
        versions.retain(|v| v.serial != version.serial);
        versions.push_back(version.clone());
        while versions.len() > VERSIONS_KEPT {
            versions.pop_front();
        }
        Ok(version)
    }

    /// Keep the versions of the zones `keep` says yes to.
    pub fn retain(&self, keep: impl Fn(&Name) -> bool) {
        self.lock()
            .retain(|_, v| v.back().is_some_and(|v| keep(v.zone.zone().origin())));
    }

    /// Zones whose newest transferred version carries a signature that
    /// expires before `horizon` (unix seconds): secondaries need a new
    /// version (a serial bump) to be re-signed.
    pub fn expiring(&self, horizon: u32) -> Vec<(Name, u32)> {
        self.lock()
            .values()
            .filter_map(|v| v.back())
            .filter(|v| {
                v.view
                    .as_ref()
                    .and_then(|view| view.earliest_expiration())
                    .is_some_and(|exp| exp <= horizon)
            })
            .map(|v| (v.zone.zone().origin().clone(), v.serial))
            .collect()
    }

    /// The kept version of `origin` at `serial` that this process sent to
    /// `client` (an unsigned zone's content is the serial's wherever it
    /// came from, so any client will do).
    pub fn find(&self, origin: &Name, serial: u32, client: IpAddr) -> Option<Version> {
        self.lock().get(&key::of(origin)).and_then(|v| {
            v.iter()
                .rev()
                .find(|x| x.serial == serial && (x.view.is_none() || x.held_by(client)))
                .cloned()
        })
    }
}
