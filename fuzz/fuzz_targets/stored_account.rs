//! The account record a browser keeps in IndexedDB. It is sealed under a key that no script
//! can read, but any script of the origin can ask the browser to seal bytes of its choice
//! with it, so what `Account::from_record` reads may be crafted. It must refuse, not panic,
//! and what it accepts must store again as the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sotto_core::account::Account;

fuzz_target!(|data: &[u8]| {
    if let Ok(account) = Account::from_record(data) {
        let again = account.to_record();
        let reread = Account::from_record(&again).expect("a stored account reads back");
        assert_eq!(*reread.to_record(), *again);
    }
});
