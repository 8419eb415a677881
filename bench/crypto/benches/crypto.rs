//! `cargo bench -p sotto-bench-crypto` (from bench/): Sotto's cryptography natively, beside
//! vodozemac. Each figure is one operation on 1 KiB; scripts/bench.sh reads criterion's
//! estimates into BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};
use sotto_bench_crypto::*;
use std::hint::black_box;

fn sotto(c: &mut Criterion) {
    let pt = plaintext();
    let alice = sotto_core::identity::Identity::generate().unwrap();
    let bob = responder();
    c.bench_function("sotto/session_setup", |b| {
        b.iter(|| black_box(session_setup(&alice, &bob)))
    });
    let (mut a, mut bb) = session_pair();
    // One message per iteration, the direction turning each time: a DH step per message.
    let mut turn = false;
    c.bench_function("sotto/ratchet_alternating", |b| {
        b.iter(|| {
            turn = !turn;
            if turn {
                ratchet_message(&mut a, &mut bb, &pt)
            } else {
                ratchet_message(&mut bb, &mut a, &pt)
            }
        })
    });
    let (mut a, mut bb) = session_pair();
    c.bench_function("sotto/ratchet_one_way", |b| {
        b.iter(|| ratchet_message(&mut a, &mut bb, &pt))
    });
    let device = sotto_core::keys::DeviceKeys::generate().unwrap();
    c.bench_function("sotto/hpke_seal_open", |b| {
        b.iter(|| hpke_round_trip(&device, &pt))
    });
    let cipher = aes_gcm_cipher();
    let mut i = 0u32;
    c.bench_function("sotto/aes_gcm", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(aes_gcm_round_trip(&cipher, i, &pt))
        })
    });
    let (mut sender, recipients) = group_sender(100);
    let text = "x".repeat(SIZE);
    c.bench_function("sotto/group_100", |b| {
        b.iter(|| black_box(group_message(&mut sender, &recipients, &text)))
    });
}

fn vodozemac(c: &mut Criterion) {
    let pt = plaintext();
    c.bench_function("vodozemac/olm_session_setup", |b| {
        b.iter(|| black_box(olm::setup()))
    });
    let (mut a, mut bb) = olm::pair();
    let mut turn = false;
    c.bench_function("vodozemac/olm_alternating", |b| {
        b.iter(|| {
            turn = !turn;
            if turn {
                olm::message(&mut a, &mut bb, &pt)
            } else {
                olm::message(&mut bb, &mut a, &pt)
            }
        })
    });
    let (mut a, mut bb) = olm::pair();
    c.bench_function("vodozemac/olm_one_way", |b| {
        b.iter(|| olm::message(&mut a, &mut bb, &pt))
    });
    let (mut out, mut inbound) = olm::megolm();
    c.bench_function("vodozemac/megolm", |b| {
        b.iter(|| olm::megolm_message(&mut out, &mut inbound, &pt))
    });
}

criterion_group!(benches, sotto, vodozemac);
criterion_main!(benches);
