//! Every committed corpus input and every regression input (crashes the
//! fuzzers found, kept so they stay fixed) through its target, under plain
//! `cargo test`: the targets compile and their invariants hold in normal CI
//! even where the fuzzer itself is not run.

use std::path::PathBuf;

fn dir(kind: &str, target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target)
}

#[test]
fn corpus_replays_through_every_target() {
    for (name, target) in pdm_fuzz::TARGETS {
        let n = pdm_fuzz::replay(&dir("corpus", name), *target);
        assert!(n > 0, "no seed corpus for {name}");
    }
}

#[test]
fn regressions_stay_fixed() {
    for (name, target) in pdm_fuzz::TARGETS {
        pdm_fuzz::replay(&dir("regressions", name), *target);
    }
}
