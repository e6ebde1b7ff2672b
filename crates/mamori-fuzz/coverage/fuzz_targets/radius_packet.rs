#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mamori_fuzz_coverage::run("radius_packet", data));
