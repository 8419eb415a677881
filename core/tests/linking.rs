//! A relay that sits between a new browser and a running one during linking, playing every
//! substitution it can: each is caught, either by the commitment (a swapped key) or by the
//! two people seeing different codes (the relay's own keys on both sides).

use sotto_core::linking::{NewBrowser, RunningBrowser};
use sotto_core::CoreError;

const IDENTITY: [u8; 32] = [3; 32];
const RUNS: usize = 500;

#[test]
fn an_honest_relay_gives_one_code_and_a_bundle_that_opens() {
    for i in 0..50 {
        let id = format!("l_{i}");
        let new = NewBrowser::start(&IDENTITY).unwrap();
        let running = RunningBrowser::accept(&id, &new.commitment()).unwrap();
        let revealed = new.reveal(&id, &running.public()).unwrap();
        let checked = running.check(&IDENTITY, &revealed.new_public).unwrap();
        assert_eq!(revealed.code, checked.code);
        let sealed = checked.seal_bundle(b"bundle").unwrap();
        assert_eq!(&revealed.open_bundle(&sealed).unwrap()[..], b"bundle");
    }
}

#[test]
fn a_relay_with_its_own_keys_on_both_sides_shows_different_codes_every_time() {
    for i in 0..RUNS {
        let id = format!("l_{i}");
        let new = NewBrowser::start(&IDENTITY).unwrap();
        // The relay commits to a key of its own towards the running browser…
        let relay_as_new = NewBrowser::start(&IDENTITY).unwrap();
        let running = RunningBrowser::accept(&id, &relay_as_new.commitment()).unwrap();
        // …and answers the new browser with another key of its own, before it knows the
        // new browser's key (which is only revealed after this answer).
        let relay_as_running = RunningBrowser::accept(&id, &new.commitment()).unwrap();
        let revealed = new.reveal(&id, &relay_as_running.public()).unwrap();
        let towards_running = relay_as_new.reveal(&id, &running.public()).unwrap();
        let shown_by_running = running
            .check(&IDENTITY, &towards_running.new_public)
            .unwrap();
        let relay_side = relay_as_running
            .check(&IDENTITY, &revealed.new_public)
            .unwrap();
        // The relay can complete both halves, but the two people see unrelated codes.
        assert_eq!(relay_side.code, revealed.code);
        assert_ne!(
            shown_by_running.code, revealed.code,
            "run {i}: relay undetected"
        );
    }
}

#[test]
fn a_relay_that_swaps_the_revealed_key_is_caught_by_the_commitment() {
    for i in 0..RUNS {
        let id = format!("l_{i}");
        let new = NewBrowser::start(&IDENTITY).unwrap();
        let running = RunningBrowser::accept(&id, &new.commitment()).unwrap();
        let _honest = new.reveal(&id, &running.public()).unwrap();
        // The relay keeps the commitment but reveals a key of its own.
        let relay = NewBrowser::start(&IDENTITY).unwrap();
        let forged = relay.reveal(&id, &running.public()).unwrap();
        assert_eq!(
            running.check(&IDENTITY, &forged.new_public).err(),
            Some(CoreError::LinkTampered)
        );
    }
}

#[test]
fn a_relay_that_swaps_only_the_running_key_shows_different_codes() {
    for i in 0..RUNS {
        let id = format!("l_{i}");
        let new = NewBrowser::start(&IDENTITY).unwrap();
        let running = RunningBrowser::accept(&id, &new.commitment()).unwrap();
        let relay = RunningBrowser::accept(&id, &new.commitment()).unwrap();
        let revealed = new.reveal(&id, &relay.public()).unwrap();
        // The honest reveal reaches the running browser; its code uses its own key.
        let checked = running.check(&IDENTITY, &revealed.new_public).unwrap();
        assert_ne!(checked.code, revealed.code, "run {i}: relay undetected");
        // And the running browser's bundle does not open on the new browser.
        let sealed = checked.seal_bundle(b"bundle").unwrap();
        assert_eq!(
            revealed.open_bundle(&sealed).err(),
            Some(CoreError::Decrypt)
        );
    }
}

#[test]
fn a_relay_that_publishes_another_identity_to_the_new_browser_is_caught() {
    let new = NewBrowser::start(&[9; 32]).unwrap();
    let running = RunningBrowser::accept("l_1", &new.commitment()).unwrap();
    let revealed = new.reveal("l_1", &running.public()).unwrap();
    assert_eq!(
        running.check(&IDENTITY, &revealed.new_public).err(),
        Some(CoreError::LinkTampered)
    );
}

#[test]
fn a_code_is_not_carried_to_another_request() {
    let new = NewBrowser::start(&IDENTITY).unwrap();
    let running = RunningBrowser::accept("l_1", &new.commitment()).unwrap();
    let revealed = new.reveal("l_other", &running.public()).unwrap();
    let checked = running.check(&IDENTITY, &revealed.new_public).unwrap();
    assert_ne!(checked.code, revealed.code);
}
