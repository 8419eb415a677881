//! The server's configuration file: a damaged one must be a clear error at start.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = toml::from_str::<sotto_server::config::FileConfig>(&text);
});
