//! The PowerDNS object types records see: `DNSName`, `ComboAddress`,
//! `Netmask`, `NetmaskGroup` and the `dnsheader` shim.

use super::addr::{parse_combo, Netmask, NetmaskGroup};
use super::convert::{rt, string_list, value_string};
use super::synth;
use hickory_proto::rr::Name;
use mlua::{AnyUserData, MetaMethod, UserData, UserDataMethods, Value};
use std::net::{IpAddr, SocketAddr};

/// `DNSName` as exposed to records (`qname`, `zone`, `newDN`).
#[derive(Clone)]
pub(super) struct LDnsName(pub(super) Name);

impl LDnsName {
    /// The name as text, always with the trailing dot.
    pub(super) fn text(&self) -> String {
        let mut n = self.0.clone();
        n.set_fqdn(true);
        n.to_ascii()
    }
}

fn name_arg(v: &Value) -> mlua::Result<Name> {
    match v {
        Value::UserData(ud) => Ok(ud.borrow::<LDnsName>()?.0.clone()),
        other => {
            let s = value_string(other)?;
            Name::from_ascii(&s).map_err(|e| rt(format!("bad name {s:?}: {e}")))
        }
    }
}

impl UserData for LDnsName {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("toString", |_, this, ()| Ok(this.text()));
        methods.add_method("toStringNoDot", |_, this, ()| {
            let t = this.text();
            Ok(if t == "." {
                t
            } else {
                t.trim_end_matches('.').to_string()
            })
        });
        methods.add_method("countLabels", |_, this, ()| Ok(this.0.num_labels()));
        methods.add_method("wirelength", |_, this, ()| Ok(this.0.len()));
        methods.add_method("getRawLabels", |_, this, ()| Ok(synth::raw_labels(&this.0)));
        methods.add_method("isPartOf", |_, this, other: Value| {
            Ok(name_arg(&other)?.zone_of(&this.0))
        });
        methods.add_method("equal", |_, this, other: Value| {
            Ok(name_arg(&other)? == this.0)
        });
        methods.add_method_mut("chopOff", |_, this, ()| {
            if this.0.is_root() {
                return Ok(false);
            }
            this.0 = this.0.base_name();
            Ok(true)
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.text()));
        methods.add_meta_method(MetaMethod::Eq, |_, this, other: Value| {
            Ok(name_arg(&other)? == this.0)
        });
        methods.add_meta_method(MetaMethod::Concat, |_, this, other: Value| {
            Ok(format!(
                "{}{}",
                this.text(),
                value_string(&other).unwrap_or_default()
            ))
        });
    }
}

/// `ComboAddress` (`who`, `bestwho`, `newCA`).
#[derive(Clone, Copy)]
pub(super) struct LCombo(pub(super) IpAddr, pub(super) u16);

impl UserData for LCombo {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("toString", |_, this, ()| Ok(this.0.to_string()));
        methods.add_method("toStringWithPort", |_, this, ()| {
            Ok(SocketAddr::new(this.0, this.1).to_string())
        });
        methods.add_method("getPort", |_, this, ()| Ok(this.1));
        methods.add_method("isIPv4", |_, this, ()| Ok(this.0.is_ipv4()));
        methods.add_method("isIPv6", |_, this, ()| Ok(this.0.is_ipv6()));
        methods.add_method("isMappedIPv4", |_, this, ()| {
            Ok(matches!(this.0, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()))
        });
        methods.add_method("mapToIPv4", |_, this, ()| {
            Ok(match this.0 {
                IpAddr::V6(v6) => LCombo(v6.to_ipv4_mapped().map_or(this.0, IpAddr::V4), this.1),
                v4 => LCombo(v4, this.1),
            })
        });
        methods.add_method_mut("truncate", |_, this, bits: u8| {
            this.0 = super::addr::truncate(&this.0, bits);
            Ok(())
        });
        methods.add_method("getRaw", |lua, this, ()| {
            let bytes = match this.0 {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            lua.create_string(bytes)
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
        methods.add_meta_method(MetaMethod::Eq, |_, this, other: AnyUserData| {
            Ok(other
                .borrow::<LCombo>()
                .is_ok_and(|o| o.0 == this.0 && o.1 == this.1))
        });
    }
}

/// `Netmask` (`ecswho`, `newNetmask`).
#[derive(Clone, Copy)]
pub(super) struct LNetmask(pub(super) Netmask);

fn addr_arg(v: &Value) -> mlua::Result<IpAddr> {
    if let Value::UserData(ud) = v {
        if let Ok(c) = ud.borrow::<LCombo>() {
            return Ok(c.0);
        }
    }
    let s = value_string(v)?;
    parse_combo(&s).ok_or_else(|| rt(format!("Unable to convert presentation address '{s}'")))
}

impl UserData for LNetmask {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("toString", |_, this, ()| Ok(this.0.to_string()));
        methods.add_method("getNetwork", |_, this, ()| Ok(LCombo(this.0.network, 0)));
        methods.add_method("getBits", |_, this, ()| Ok(this.0.bits));
        methods.add_method("isIPv4", |_, this, ()| Ok(this.0.network.is_ipv4()));
        methods.add_method("isIPv6", |_, this, ()| Ok(this.0.network.is_ipv6()));
        methods.add_method("empty", |_, _, ()| Ok(false));
        methods.add_method("match", |_, this, v: Value| {
            Ok(this.0.matches(&addr_arg(&v)?))
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_string()));
    }
}

/// `NetmaskGroup` (`newNMG`).
#[derive(Clone)]
pub(super) struct LNmg(pub(super) NetmaskGroup);

impl UserData for LNmg {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("addMask", |_, this, m: String| {
            this.0
                .add(&m)
                .ok_or_else(|| rt(format!("Not a netmask: '{m}'")))
        });
        methods.add_method_mut("addMasks", |_, this, v: Value| {
            for m in string_list(&v)? {
                this.0
                    .add(&m)
                    .ok_or_else(|| rt(format!("Not a netmask: '{m}'")))?;
            }
            Ok(())
        });
        methods.add_method("match", |_, this, v: Value| {
            Ok(this.0.matches(&addr_arg(&v)?))
        });
        methods.add_method("size", |_, this, ()| Ok(this.0.len()));
        methods.add_method("empty", |_, this, ()| Ok(this.0.is_empty()));
        methods.add_method("toString", |_, this, ()| Ok(this.0.to_text()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.0.to_text()));
    }
}

/// A read-only shim of PowerDNS's `dnsheader` (`dh`).
#[derive(Clone, Copy)]
pub(super) struct LHeader(pub(super) (u16, bool, bool));

impl UserData for LHeader {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("getID", |_, this, ()| Ok(this.0 .0));
        methods.add_method("getRD", |_, this, ()| Ok(this.0 .1));
        methods.add_method("getCD", |_, this, ()| Ok(this.0 .2));
        methods.add_method("getTC", |_, _, ()| Ok(false));
        methods.add_method("getOPCODE", |_, _, ()| Ok(0));
    }
}
