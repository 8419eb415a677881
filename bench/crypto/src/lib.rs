//! The operations that Sotto's benchmarks time, shared by the native (criterion) and the
//! browser (wasm) benchmarks so both measure the same work: a pairwise session's setup, a
//! ratchet round trip, HPKE, a group message to 100 members — and the same for vodozemac's
//! Olm and Megolm, the reference Sotto means to beat.

use sotto_core::account::{Account, Recipient};
use sotto_core::identity::Identity;
use sotto_core::keys::DeviceKeys;
use sotto_core::prekeys::{initiate, respond, sign_prekey, PreKeyBundle, PreKeySecret};
use sotto_core::ratchet::Session;
use sotto_core::sealing::MessageBody;

/// The message size of every benchmark: 1 KiB.
pub const SIZE: usize = 1024;

pub fn plaintext() -> Vec<u8> {
    vec![b'x'; SIZE]
}

/// A responder's keys, to set sessions up against.
pub struct Responder {
    pub identity: Identity,
    pub spk: PreKeySecret,
    pub opk: PreKeySecret,
}

pub fn responder() -> Responder {
    Responder {
        identity: Identity::generate().unwrap(),
        spk: PreKeySecret::generate(1).unwrap(),
        opk: PreKeySecret::generate(2).unwrap(),
    }
}

/// X3DH on both sides and the first message: what it costs two devices to start talking.
pub fn session_setup(alice: &Identity, bob: &Responder) -> (Session, Session) {
    let bundle = PreKeyBundle {
        device_id: "b".into(),
        identity: bob.identity.public(),
        signed_prekey: sign_prekey(&bob.identity, &bob.spk),
        one_time_prekey: Some(bob.opk.public()),
    };
    let (agreement, header) = initiate(alice, &bundle).unwrap();
    let mut a =
        Session::initiate(agreement, header, bob.spk.public().public, bundle.identity).unwrap();
    let agreement = respond(&bob.identity, &header, &bob.spk, Some(&bob.opk)).unwrap();
    let mut b = Session::respond(agreement, &bob.spk.secret, &header);
    let first = a.encrypt(b"hello", b"").unwrap();
    b.decrypt(&first, b"").unwrap();
    (a, b)
}

/// A pair of sessions that have exchanged a message each way.
pub fn session_pair() -> (Session, Session) {
    let alice = Identity::generate().unwrap();
    let (mut a, mut b) = session_setup(&alice, &responder());
    let back = b.encrypt(b"hi", b"").unwrap();
    a.decrypt(&back, b"").unwrap();
    (a, b)
}

/// One message from `from` to `to`, encrypted and decrypted.
pub fn ratchet_message(from: &mut Session, to: &mut Session, pt: &[u8]) {
    let m = from.encrypt(pt, b"route").unwrap();
    to.decrypt(&m, b"route").unwrap();
}

/// An account that has sessions with `n` member devices and has handed them its sender key
/// for thread "g", so a group message is one encryption and `n` envelopes.
pub fn group_sender(n: usize) -> (Account, Vec<Recipient>) {
    let mut sender = Account::generate("sender", 0).unwrap();
    let mut recipients = Vec::with_capacity(n);
    for i in 0..n {
        let mut member = Account::generate(&format!("m{i}"), 0).unwrap();
        let bundle = PreKeyBundle {
            device_id: format!("d{i}"),
            identity: member.identity_public(),
            signed_prekey: member.signed_prekey(),
            one_time_prekey: Some(member.generate_one_time_prekeys(1).unwrap()[0]),
        };
        let identity = bundle.identity;
        sender.start_session(&bundle, &identity).unwrap();
        recipients.push(Recipient {
            user_id: format!("m{i}"),
            device_id: format!("d{i}"),
        });
    }
    sender
        .seal(&group_body("warm-up"), "ds", &recipients, true)
        .unwrap();
    let devices: Vec<String> = recipients.iter().map(|r| r.device_id.clone()).collect();
    sender.mark_distributed("g", &devices);
    (sender, recipients)
}

pub fn group_body(text: &str) -> MessageBody {
    MessageBody {
        v: 2,
        message_id: "m".into(),
        thread_id: "g".into(),
        distribution: "@everyone".into(),
        sender_user: "sender".into(),
        sender_device: "ds".into(),
        sent_at: 1,
        text: text.into(),
        ..Default::default()
    }
}

/// One group message, sealed for every member device; returns the envelope count.
pub fn group_message(sender: &mut Account, recipients: &[Recipient], text: &str) -> usize {
    sender
        .seal(&group_body(text), "ds", recipients, true)
        .unwrap()
        .len()
}

/// HPKE base mode: seal to a device's key, and open.
pub fn hpke_round_trip(recipient: &DeviceKeys, pt: &[u8]) {
    let pk = sotto_core::keys::parse_public_key(&recipient.public_key()).unwrap();
    let (enc, ct) = sotto_core::hpke::seal(&pk, b"bench", b"", pt).unwrap();
    sotto_core::hpke::open(recipient.secret(), &enc, b"bench", b"", &ct).unwrap();
}

/// AES-256-GCM encrypt + decrypt with RustCrypto (what the client uses), nonce from `i`.
pub fn aes_gcm_round_trip(cipher: &aes_gcm::Aes256Gcm, i: u32, pt: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::Aead;
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&i.to_be_bytes());
    let ct = cipher.encrypt(&nonce.into(), pt).unwrap();
    cipher.decrypt(&nonce.into(), ct.as_slice()).unwrap()
}

pub fn aes_gcm_cipher() -> aes_gcm::Aes256Gcm {
    use aes_gcm::aead::KeyInit;
    aes_gcm::Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap()
}

/// vodozemac, the reference: Olm sessions and Megolm group sessions.
pub mod olm {
    use vodozemac::megolm::{GroupSession, InboundGroupSession, SessionConfig as MegolmConfig};
    use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};

    /// An outbound session, its first (prekey) message, and the inbound session from it.
    pub fn setup() -> (Session, Session) {
        let alice = Account::new();
        let mut bob = Account::new();
        bob.generate_one_time_keys(1);
        let otk = *bob.one_time_keys().values().next().unwrap();
        bob.mark_keys_as_published();
        // Version 1 (what Matrix clients speak; version 2 is experimental in vodozemac).
        let config = SessionConfig::version_1();
        let mut a = alice
            .create_outbound_session(config, bob.curve25519_key(), otk)
            .unwrap();
        let OlmMessage::PreKey(m) = a.encrypt("hello").unwrap() else {
            panic!("the first Olm message is a prekey message")
        };
        let created = bob
            .create_inbound_session(config, alice.curve25519_key(), &m)
            .unwrap();
        (a, created.session)
    }

    pub fn pair() -> (Session, Session) {
        let (mut a, mut b) = setup();
        let back = b.encrypt("hi").unwrap();
        a.decrypt(&back).unwrap();
        (a, b)
    }

    pub fn message(from: &mut Session, to: &mut Session, pt: &[u8]) {
        let m = from.encrypt(pt).unwrap();
        to.decrypt(&m).unwrap();
    }

    pub fn megolm() -> (GroupSession, InboundGroupSession) {
        let outbound = GroupSession::new(MegolmConfig::version_1());
        let inbound = InboundGroupSession::new(&outbound.session_key(), MegolmConfig::version_1());
        (outbound, inbound)
    }

    pub fn megolm_message(out: &mut GroupSession, inbound: &mut InboundGroupSession, pt: &[u8]) {
        let m = out.encrypt(pt);
        inbound.decrypt(&m).unwrap();
    }
}
