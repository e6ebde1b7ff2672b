//! The one function every libFuzzer harness calls: the mamori-fuzz target of that name, looked
//! up once. A panic is not caught here: libFuzzer reports it as a crash and saves the input.

use std::sync::OnceLock;

/// Runs the mamori-fuzz target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();
    let run = TARGET.get_or_init(|| {
        mamori_fuzz::all()
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| t.run)
            .unwrap_or_else(|| panic!("no mamori-fuzz target {name}"))
    });
    run(data);
}
