//! Sotto's cryptography in the browser, each function running `n` operations on 1 KiB and
//! returning the milliseconds they took (`performance.now()` around the loop only, setup
//! excluded). bench/pages/crypto.html calls them beside WebCrypto in the same page.

use sotto_bench_crypto::*;
use std::hint::black_box;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

fn timed(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let start = now();
    for i in 0..n {
        f(i);
    }
    now() - start
}

#[wasm_bindgen]
pub fn session_setup(n: u32) -> f64 {
    let alice = sotto_core::identity::Identity::generate().unwrap();
    let bob = responder();
    timed(n, |_| {
        black_box(sotto_bench_crypto::session_setup(&alice, &bob));
    })
}

#[wasm_bindgen]
pub fn ratchet_alternating(n: u32) -> f64 {
    let pt = plaintext();
    let (mut a, mut b) = session_pair();
    timed(n, |i| {
        if i % 2 == 0 {
            ratchet_message(&mut a, &mut b, &pt)
        } else {
            ratchet_message(&mut b, &mut a, &pt)
        }
    })
}

#[wasm_bindgen]
pub fn ratchet_one_way(n: u32) -> f64 {
    let pt = plaintext();
    let (mut a, mut b) = session_pair();
    timed(n, |_| ratchet_message(&mut a, &mut b, &pt))
}

#[wasm_bindgen]
pub fn hpke_seal_open(n: u32) -> f64 {
    let pt = plaintext();
    let device = sotto_core::keys::DeviceKeys::generate().unwrap();
    timed(n, |_| hpke_round_trip(&device, &pt))
}

#[wasm_bindgen]
pub fn group_100(n: u32) -> f64 {
    let (mut sender, recipients) = group_sender(100);
    let text = "x".repeat(SIZE);
    timed(n, |_| {
        black_box(group_message(&mut sender, &recipients, &text));
    })
}

/// AES-256-GCM encrypt + decrypt of 1 KiB with RustCrypto, as the client uses it.
#[wasm_bindgen]
pub fn aes_gcm(n: u32) -> f64 {
    let pt = plaintext();
    let cipher = aes_gcm_cipher();
    timed(n, |i| {
        black_box(aes_gcm_round_trip(&cipher, i, &pt));
    })
}

#[wasm_bindgen]
pub fn olm_session_setup(n: u32) -> f64 {
    timed(n, |_| {
        black_box(olm::setup());
    })
}

#[wasm_bindgen]
pub fn olm_alternating(n: u32) -> f64 {
    let pt = plaintext();
    let (mut a, mut b) = olm::pair();
    timed(n, |i| {
        if i % 2 == 0 {
            olm::message(&mut a, &mut b, &pt)
        } else {
            olm::message(&mut b, &mut a, &pt)
        }
    })
}

#[wasm_bindgen]
pub fn olm_one_way(n: u32) -> f64 {
    let pt = plaintext();
    let (mut a, mut b) = olm::pair();
    timed(n, |_| olm::message(&mut a, &mut b, &pt))
}

#[wasm_bindgen]
pub fn megolm(n: u32) -> f64 {
    let pt = plaintext();
    let (mut out, mut inbound) = olm::megolm();
    timed(n, |_| olm::megolm_message(&mut out, &mut inbound, &pt))
}
