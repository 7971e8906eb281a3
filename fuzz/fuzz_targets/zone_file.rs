//! Fuzz target `zone_file` (see pdm_fuzz::zone_file). Built with `--cfg fuzzing` it is a
//! libFuzzer binary; otherwise it replays the files named on its command line.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pdm_fuzz::zone_file(data));

#[cfg(not(fuzzing))]
fn main() {
    pdm_fuzz::replay_args(pdm_fuzz::zone_file);
}
