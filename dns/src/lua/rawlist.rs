//! Reading the tables LUA functions take (lists of addresses, `{weight,
//! value}` pairs) straight off the Lua stack.
//!
//! Going through mlua's `Table::pairs` / `Table::get` turns every key and
//! value into a registry-style reference (moved to the reference thread,
//! then freed) and every string into an owned `String`; for the short lists
//! records pass, that was most of the cost of a call. These readers walk
//! the table with `lua_next` / `lua_rawgeti` and borrow string bytes while
//! the table sits on the stack.
//!
//! They only take the common shapes (integer keys; string or number
//! values; nested tables without metatables). Anything else makes them
//! answer `None`, and the caller runs its general mlua-based conversion,
//! which gives the same result or error as before.

use super::synth;
use mlua::{ffi, Lua, Value};
use std::borrow::Cow;
use std::ffi::c_int;

/// A string or number read off the stack (what `value_string` accepts
/// without looking at userdata). Borrowed strings live as long as the
/// table they were read from stays on the stack, unmodified.
#[derive(Clone, Copy, Debug)]
pub(super) enum Item<'a> {
    /// A Lua string (bytes, not necessarily UTF-8).
    Str(&'a [u8]),
    /// An integer.
    Int(i64),
    /// A float.
    Num(f64),
}

impl Item<'_> {
    /// As `value_string` renders it.
    pub(super) fn text(&self) -> Cow<'_, str> {
        match self {
            Item::Str(b) => String::from_utf8_lossy(b),
            Item::Int(i) => Cow::Owned(i.to_string()),
            Item::Num(f) => Cow::Owned(synth::lua51_number(*f)),
        }
    }

    /// `atoi(value_string(..))`.
    pub(super) fn atoi(&self) -> i64 {
        match self {
            // atoi of the decimal text is the number itself, except that
            // its magnitude saturates at i64::MAX.
            Item::Int(i) if *i != i64::MIN => *i,
            other => super::addr::atoi(&other.text()),
        }
    }
}

/// The string or number at `idx`.
///
/// # Safety
/// `idx` must be a valid index of `state`; the bytes borrowed must not be
/// used after the value becomes unreachable.
unsafe fn item_at<'a>(state: *mut ffi::lua_State, idx: c_int) -> Option<Item<'a>> {
    match ffi::lua_type(state, idx) {
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(state, idx, &mut len);
            if p.is_null() {
                return None;
            }
            Some(Item::Str(std::slice::from_raw_parts(p.cast::<u8>(), len)))
        }
        ffi::LUA_TNUMBER => {
            if ffi::lua_isinteger(state, idx) != 0 {
                Some(Item::Int(ffi::lua_tointegerx(
                    state,
                    idx,
                    std::ptr::null_mut(),
                )))
            } else {
                Some(Item::Num(ffi::lua_tonumberx(
                    state,
                    idx,
                    std::ptr::null_mut(),
                )))
            }
        }
        _ => None,
    }
}

/// Whether the key at -2 is an integer (`Value::Integer`).
unsafe fn int_key(state: *mut ffi::lua_State) -> bool {
    ffi::lua_type(state, -2) == ffi::LUA_TNUMBER && ffi::lua_isinteger(state, -2) != 0
}

/// Whether the table at `idx` has a metatable.
unsafe fn has_metatable(state: *mut ffi::lua_State, idx: c_int) -> bool {
    if ffi::lua_getmetatable(state, idx) != 0 {
        ffi::lua_settop(state, -2);
        true
    } else {
        false
    }
}

/// Push `v` (a table) and run `f` with the stack and the table's absolute
/// index; the stack is restored afterwards. `None` if `v` is not a table or
/// the stack cannot grow.
fn with_table<R>(
    lua: &Lua,
    v: &Value,
    f: impl FnOnce(*mut ffi::lua_State, c_int) -> Option<R>,
) -> Option<R> {
    if !matches!(v, Value::Table(_)) {
        return None;
    }
    lua.exec_raw_lua(|raw| {
        // SAFETY: the lock is held (we are inside `exec_raw_lua`), the stack
        // is grown before use and put back to where it was; the functions
        // used (`lua_next` on a key taken from the same table, `lua_rawgeti`,
        // `lua_type`, `lua_to*` on strings and numbers, `lua_getmetatable`,
        // `lua_settop` with no to-be-closed variables) do not raise errors.
        unsafe {
            let state = raw.state();
            if ffi::lua_checkstack(state, 8) == 0 {
                return None;
            }
            let top = ffi::lua_gettop(state);
            raw.push_value(v).ok()?;
            let r = f(state, top + 1);
            ffi::lua_settop(state, top);
            r
        }
    })
}

/// The values of the integer-keyed table at `t`, in `next` order, if all
/// are strings or numbers.
unsafe fn list_at<'a>(state: *mut ffi::lua_State, t: c_int, out: &mut Vec<Item<'a>>) -> bool {
    ffi::lua_pushnil(state);
    while ffi::lua_next(state, t) != 0 {
        if !int_key(state) {
            return false;
        }
        match item_at(state, -1) {
            Some(item) => out.push(item),
            None => return false,
        }
        ffi::lua_settop(state, -2);
    }
    true
}

/// `string_list(v)` handed to `f` as borrowed items; `None` when `v` is
/// not a table of that shape.
pub(super) fn with_list<R>(lua: &Lua, v: &Value, f: impl FnOnce(&[Item<'_>]) -> R) -> Option<R> {
    with_table(lua, v, |state, t| {
        let mut items = Vec::new();
        // SAFETY: `t` is the table pushed by `with_table`; it stays on the
        // stack, unmodified, while `f` reads the borrowed strings.
        unsafe { list_at(state, t, &mut items) }.then(|| f(&items))
    })
}

/// `ip_sets(v)` as borrowed items: one list, or (when `v[1]` is a table)
/// one list per value. `None` when `v` is not of that shape or has a
/// metatable (`v[1]` would consult it).
pub(super) fn with_sets<R>(
    lua: &Lua,
    v: &Value,
    f: impl FnOnce(&[Vec<Item<'_>>]) -> R,
) -> Option<R> {
    with_table(lua, v, |state, t| {
        // SAFETY: as in `with_list`; nested tables stay reachable from `t`.
        unsafe {
            if has_metatable(state, t) {
                return None;
            }
            let first = ffi::lua_rawgeti(state, t, 1);
            ffi::lua_settop(state, -2);
            let mut sets = Vec::new();
            if first != ffi::LUA_TTABLE {
                let mut items = Vec::new();
                if !list_at(state, t, &mut items) {
                    return None;
                }
                sets.push(items);
                return Some(f(&sets));
            }
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, t) != 0 {
                if ffi::lua_type(state, -1) != ffi::LUA_TTABLE {
                    return None;
                }
                let inner = ffi::lua_gettop(state);
                let mut items = Vec::new();
                if !list_at(state, inner, &mut items) {
                    return None;
                }
                sets.push(items);
                ffi::lua_settop(state, -2);
            }
            Some(f(&sets))
        }
    })
}

/// `weighted_list(v)` before ordering: `(key, weight, value)` per entry,
/// in `next` order. `None` when an entry is not an integer-keyed table
/// without metatable holding a string or number at 1 and 2.
pub(super) fn with_weighted<R>(
    lua: &Lua,
    v: &Value,
    f: impl FnOnce(&[(i64, Item<'_>, Item<'_>)]) -> R,
) -> Option<R> {
    with_table(lua, v, |state, t| {
        let mut items = Vec::new();
        // SAFETY: as in `with_list`; the inner tables stay reachable from `t`.
        unsafe {
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, t) != 0 {
                if !int_key(state) || ffi::lua_type(state, -1) != ffi::LUA_TTABLE {
                    return None;
                }
                let key = ffi::lua_tointegerx(state, -2, std::ptr::null_mut());
                let inner = ffi::lua_gettop(state);
                if has_metatable(state, inner) {
                    return None;
                }
                ffi::lua_rawgeti(state, inner, 1);
                ffi::lua_rawgeti(state, inner, 2);
                let (Some(w), Some(s)) = (item_at(state, -2), item_at(state, -1)) else {
                    return None;
                };
                items.push((key, w, s));
                ffi::lua_settop(state, inner - 1);
            }
        }
        Some(f(&items))
    })
}
