//! A thread expression (`@alice + @support - @bob`), as a page or a member's update gives it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(expr) = sotto_core::expr::parse(&text) {
        let _ = expr.tags();
    }
});
