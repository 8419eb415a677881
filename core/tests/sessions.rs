//! The proofs that issue #4 asks for, on the real session code: delivery in any order with
//! drops, duplicates and replays; forward secrecy; post-compromise security; multi-device
//! accounts; group removal.

use proptest::prelude::*;
use sotto_core::account::{Account, Recipient};
use sotto_core::identity::{DeviceList, Identity};
use sotto_core::inbox::{Inbound, Standing};
use sotto_core::prekeys::{initiate, respond, sign_prekey, PreKeyBundle, PreKeySecret};
use sotto_core::ratchet::Session;
use sotto_core::sealing::{Kind, MessageBody};
use sotto_core::trust::IdentityCheck;
use sotto_core::CoreError;

fn pair() -> (Session, Session) {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let spk = PreKeySecret::generate(1).unwrap();
    let opk = PreKeySecret::generate(2).unwrap();
    let bundle = PreKeyBundle {
        device_id: "b".into(),
        identity: bob.public(),
        signed_prekey: sign_prekey(&bob, &spk),
        one_time_prekey: Some(opk.public()),
    };
    let (agreement, header) = initiate(&alice, &bundle).unwrap();
    let a = Session::initiate(agreement, header, spk.public().public, bob.public()).unwrap();
    let b = Session::respond(
        respond(&bob, &header, &spk, Some(&opk)).unwrap(),
        &spk.secret,
        &header,
    );
    (a, b)
}

#[derive(Debug, Clone)]
enum Op {
    /// 0: Alice sends, 1: Bob sends (if he can).
    Send(bool),
    /// Deliver (again, perhaps) the message picked by the seed, in the given direction.
    Deliver(bool, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Send),
        4 => (any::<bool>(), any::<usize>()).prop_map(|(d, i)| Op::Deliver(d, i)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the network does, a message decrypts at most once, always to what was sent;
    /// and once everything still outstanding arrives, every message has been read exactly once.
    #[test]
    fn any_order_drops_duplicates_and_replays(ops in prop::collection::vec(op(), 1..120)) {
        let (mut a, mut b) = pair();
        // sent[dir] = (plaintext, ciphertext); dir false = A→B, true = B→A.
        let mut sent: [Vec<(Vec<u8>, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        let mut read: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        let deliver = |to: &mut Session, dir: usize, i: usize, sent: &[Vec<(Vec<u8>, Vec<u8>)>; 2], read: &mut [Vec<u32>; 2]| {
            let (pt, ct) = &sent[dir][i];
            match to.decrypt(ct, b"route") {
                Ok(out) => {
                    assert_eq!(&out, pt, "decrypted to something else");
                    read[dir][i] += 1;
                    assert_eq!(read[dir][i], 1, "decrypted twice");
                }
                Err(e) => assert!(read[dir][i] == 1 || e == CoreError::TooManySkipped,
                    "an unread message was refused: {e:?}"),
            }
        };
        let mut counter = 0u32;
        for op in ops {
            match op {
                Op::Send(from_b) => {
                    let (s, dir) = if from_b { (&mut b, 1) } else { (&mut a, 0) };
                    if !s.can_send() { continue; }
                    counter += 1;
                    let pt = format!("message {counter}").into_bytes();
                    let ct = s.encrypt(&pt, b"route").unwrap();
                    sent[dir].push((pt, ct));
                    read[dir].push(0);
                }
                Op::Deliver(to_a, seed) => {
                    let dir = usize::from(to_a);
                    if sent[dir].is_empty() { continue; }
                    let i = seed % sent[dir].len();
                    let to = if to_a { &mut a } else { &mut b };
                    deliver(to, dir, i, &sent, &mut read);
                }
            }
        }
        // Everything outstanding now arrives, in order, twice over.
        for _ in 0..2 {
            for i in 0..sent[0].len() { deliver(&mut b, 0, i, &sent, &mut read); }
            for i in 0..sent[1].len() { deliver(&mut a, 1, i, &sent, &mut read); }
        }
        for counts in &read {
            assert!(counts.iter().all(|n| *n == 1), "a message was lost: {counts:?}");
        }
    }
}

#[test]
fn forward_secrecy_earlier_ciphertexts_do_not_decrypt_with_the_current_state() {
    let (mut a, mut b) = pair();
    let mut history = Vec::new();
    for i in 0..3 {
        let m = a.encrypt(format!("a{i}").as_bytes(), b"").unwrap();
        b.decrypt(&m, b"").unwrap();
        history.push(m);
        let r = b.encrypt(b"reply", b"").unwrap();
        a.decrypt(&r, b"").unwrap();
    }
    // An attacker who seizes Bob's state now learns nothing of what he already read.
    for m in &history {
        let mut stolen = b.clone();
        assert!(stolen.decrypt(m, b"").is_err());
    }
}

#[test]
fn post_compromise_security_a_copied_state_is_healed_by_a_dh_ratchet_step() {
    let (mut a, mut b) = pair();
    let first = a.encrypt(b"hello", b"").unwrap();
    b.decrypt(&first, b"").unwrap();
    // The attacker copies Bob's whole state...
    let mut attacker = b.clone();
    // ...and can read what Alice sends on the current chain.
    let leaked = a.encrypt(b"still on the old chain", b"").unwrap();
    assert_eq!(
        attacker.decrypt(&leaked, b"").unwrap(),
        b"still on the old chain"
    );
    b.decrypt(&leaked, b"").unwrap();
    // Bob answers with the ratchet key he already had (the attacker knows it too), so
    // Alice's next chain is still within the attacker's reach...
    let reply = b.encrypt(b"reply", b"").unwrap();
    a.decrypt(&reply, b"").unwrap();
    let next = a.encrypt(b"next", b"").unwrap();
    assert_eq!(b.decrypt(&next, b"").unwrap(), b"next");
    let _ = attacker.decrypt(&next, b"");
    // ...but receiving it made Bob draw a fresh ratchet key the attacker never saw. Once
    // Alice uses it (the DH ratchet step completes), the copy no longer decrypts.
    let reply = b.encrypt(b"reply 2", b"").unwrap();
    a.decrypt(&reply, b"").unwrap();
    for text in ["healed", "still healed"] {
        let healed = a.encrypt(text.as_bytes(), b"").unwrap();
        assert_eq!(b.decrypt(&healed, b"").unwrap(), text.as_bytes());
        assert!(attacker.decrypt(&healed, b"").is_err());
    }
}

// --- accounts: many devices, groups ---

struct Device {
    account: Account,
    id: String,
}

fn device(user: &str, id: &str, identity: Option<Identity>) -> Device {
    let account = match identity {
        Some(i) => Account::with_identity(user, i, 0).unwrap(),
        None => Account::generate(user, 0).unwrap(),
    };
    Device {
        account,
        id: id.into(),
    }
}

/// What the server would hand out for `to`: a bundle with a fresh one-time prekey.
fn connect(from: &mut Device, to: &mut Device) {
    let opk = to.account.generate_one_time_prekeys(1).unwrap()[0];
    let bundle = PreKeyBundle {
        device_id: to.id.clone(),
        identity: to.account.identity_public(),
        signed_prekey: to.account.signed_prekey(),
        one_time_prekey: Some(opk),
    };
    let identity = to.account.identity_public();
    from.account.start_session(&bundle, &identity).unwrap();
}

fn body(from: &Device, thread: &str, text: &str) -> MessageBody {
    MessageBody {
        v: 1,
        message_id: text.into(),
        thread_id: thread.into(),
        distribution: "@x".into(),
        sender_user: from.account.user_id.clone(),
        sender_device: from.id.clone(),
        sent_at: 1,
        text: text.into(),
        kind: Kind::Message,
        ..Default::default()
    }
}

fn send(
    from: &mut Device,
    to: &mut [&mut Device],
    thread: &str,
    text: &str,
    group: bool,
) -> Vec<(String, Vec<u8>)> {
    for d in to.iter_mut() {
        if !from.account.has_session(&d.id) {
            connect(from, d);
        }
    }
    let recipients: Vec<Recipient> = to
        .iter()
        .map(|d| Recipient {
            user_id: d.account.user_id.clone(),
            device_id: d.id.clone(),
        })
        .collect();
    let b = body(from, thread, text);
    let out = from
        .account
        .seal(&b, &from.id.clone(), &recipients, group)
        .unwrap();
    // The server accepted it: the recipients now have the sender key.
    let devices: Vec<String> = recipients.iter().map(|r| r.device_id.clone()).collect();
    from.account.mark_distributed(thread, &devices);
    out
}

fn read(
    to: &mut Device,
    from: &Device,
    payloads: &[(String, Vec<u8>)],
) -> Result<String, CoreError> {
    let (_, p) = payloads
        .iter()
        .find(|(d, _)| *d == to.id)
        .expect("addressed");
    let opened = open(to, from, p)?;
    Ok(opened.body.expect("a body").text)
}

/// Opens `payload` as `to`, from `from` as the envelope's label and its verified identity.
fn open(
    to: &mut Device,
    from: &Device,
    payload: &[u8],
) -> Result<sotto_core::inbox::Opened, CoreError> {
    let inbound = Inbound {
        payload,
        sender_user: &from.account.user_id,
        sender_device: &from.id,
        live: false,
    };
    let own = to.id.clone();
    to.account.open(
        &inbound,
        &own,
        &from.account.identity_public(),
        &|_: &str, _: &str| Standing::Member,
    )
}

/// `of`'s keys as the server hands them out: identity and a list signed at `version`.
fn accept(
    by: &mut Device,
    of: &Device,
    devices: &[&str],
    version: i64,
) -> Result<sotto_core::trust::AcceptedKeys, CoreError> {
    let devices: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
    let signed = of.account.sign_device_list(&DeviceList {
        user_id: of.account.user_id.clone(),
        version,
        devices: devices.clone(),
    });
    by.account.accept_keys(
        &of.account.user_id,
        &of.account.identity_public(),
        &signed,
        &devices,
    )
}

#[test]
fn every_device_of_both_users_reads_a_pairwise_conversation() {
    let mut a1 = device("alice", "a1", None);
    let mut a2 = device(
        "alice",
        "a2",
        Some(Identity::from_secret_bytes(
            &a1.account.identity().secret_bytes(),
        )),
    );
    let mut b1 = device("bob", "b1", None);
    let mut b2 = device(
        "bob",
        "b2",
        Some(Identity::from_secret_bytes(
            &b1.account.identity().secret_bytes(),
        )),
    );
    let out = send(
        &mut a1,
        &mut [&mut b1, &mut b2, &mut a2],
        "t",
        "hi bob",
        false,
    );
    assert_eq!(out.len(), 3);
    assert_eq!(read(&mut b1, &a1, &out).unwrap(), "hi bob");
    assert_eq!(read(&mut b2, &a1, &out).unwrap(), "hi bob");
    assert_eq!(read(&mut a2, &a1, &out).unwrap(), "hi bob");
    // A reply on the sessions that now exist both ways, and a second message that still
    // carries the X3DH header (b1 has not answered a1 yet from b2's point of view).
    let back = send(
        &mut b1,
        &mut [&mut a1, &mut a2, &mut b2],
        "t",
        "hi alice",
        false,
    );
    assert_eq!(read(&mut a1, &b1, &back).unwrap(), "hi alice");
    assert_eq!(read(&mut a2, &b1, &back).unwrap(), "hi alice");
    let again = send(&mut a1, &mut [&mut b1, &mut b2], "t", "again", false);
    assert_eq!(read(&mut b1, &a1, &again).unwrap(), "again");
    assert_eq!(read(&mut b2, &a1, &again).unwrap(), "again");
    // The server re-labelling the sender is caught.
    let more = send(&mut a1, &mut [&mut b1], "t", "relabel", false);
    let (_, p) = &more[0];
    let relabelled = Inbound {
        payload: p,
        sender_user: "mallory",
        sender_device: "a1",
        live: false,
    };
    let mallory = a1.account.identity_public();
    let members = |_: &str, _: &str| Standing::Member;
    assert!(b1
        .account
        .open(&relabelled, "b1", &mallory, &members)
        .is_err());
    assert_eq!(read(&mut b1, &a1, &more).unwrap(), "relabel");
    // A replayed envelope is refused.
    assert_eq!(read(&mut b1, &a1, &more), Err(CoreError::Replay));
}

#[test]
fn one_time_prekeys_are_used_once_and_state_survives_a_reload() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    let first = send(&mut a, &mut [&mut b], "t", "one", false);
    // Bob reloads: his state round-trips through its store format.
    b.account = Account::from_record(&b.account.to_record()).unwrap();
    assert_eq!(read(&mut b, &a, &first).unwrap(), "one");
    // A different session attempt with the same (now used) one-time prekey id fails.
    let mut a_again = device(
        "alice",
        "a1",
        Some(Identity::from_secret_bytes(
            &a.account.identity().secret_bytes(),
        )),
    );
    let reused = PreKeyBundle {
        device_id: "b1".into(),
        identity: b.account.identity_public(),
        signed_prekey: b.account.signed_prekey(),
        one_time_prekey: Some(sotto_core::prekeys::PreKeyPublic {
            id: 2,
            public: [9; 32],
        }),
    };
    a_again
        .account
        .start_session(&reused, &b.account.identity_public())
        .unwrap();
    let b_body = body(&a_again, "t", "replayed prekey");
    let out = a_again
        .account
        .seal(
            &b_body,
            "a1",
            &[Recipient {
                user_id: "bob".into(),
                device_id: "b1".into(),
            }],
            false,
        )
        .unwrap();
    assert!(open(&mut b, &a_again, &out[0].1).is_err());
}

#[test]
fn a_changed_identity_is_flagged_until_acknowledged_and_retires_old_sessions() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    assert_eq!(
        accept(&mut b, &a, &["a1"], 1).unwrap().check,
        IdentityCheck::New
    );
    let first = send(&mut a, &mut [&mut b], "t", "one", false);
    assert!(open(&mut b, &a, &first[0].1).unwrap().new_session);
    // Alice's later messages on the same session start nothing new.
    let second = send(&mut a, &mut [&mut b], "t", "two", false);
    assert!(!open(&mut b, &a, &second[0].1).unwrap().new_session);
    assert_eq!(
        accept(&mut b, &a, &["a1"], 1).unwrap().check,
        IdentityCheck::Same
    );
    let shown = b
        .account
        .safety_number("alice", &a.account.identity_public());
    b.account.mark_verified("alice", &shown).unwrap();
    assert!(b.account.may_send_to("alice").is_ok());
    // Alice loses her keys and starts again with a new identity.
    let mut a_new = device("alice", "a9", None);
    let seen = accept(&mut b, &a_new, &["a9"], 1).unwrap();
    assert_eq!(seen.check, IdentityCheck::Changed);
    // The warning stays (across a reload) until Bob acknowledges it; the old session is gone.
    b.account = Account::from_record(&b.account.to_record()).unwrap();
    assert_eq!(b.account.identity_warnings().collect::<Vec<_>>(), ["alice"]);
    assert!(!b.account.has_session("a1"));
    // Bob had verified Alice: he cannot send to her new key until he verifies it.
    assert_eq!(
        b.account.may_send_to("alice").unwrap_err().code(),
        "unverified_sender"
    );
    b.account.acknowledge_identity_change("alice");
    assert_eq!(b.account.identity_warnings().count(), 0);
    assert!(b.account.may_send_to("alice").is_err());
    // Verifying with the number shown before the change does not verify the new key.
    assert_eq!(
        b.account.mark_verified("alice", &shown).unwrap_err().code(),
        "unverified_sender"
    );
    assert!(b.account.may_send_to("alice").is_err());
    let shown_now = b
        .account
        .safety_number("alice", &a_new.account.identity_public());
    b.account.mark_verified("alice", &shown_now).unwrap();
    assert!(b.account.may_send_to("alice").is_ok());
    let again = send(&mut a_new, &mut [&mut b], "t", "new me", false);
    assert_eq!(read(&mut b, &a_new, &again).unwrap(), "new me");
    // The safety number both sides see changed with it, and agrees on both sides.
    let bob_id = b.account.identity_public();
    let n = b
        .account
        .safety_number("alice", &a_new.account.identity_public());
    assert_eq!(n, a_new.account.safety_number("bob", &bob_id));
    assert_ne!(
        n,
        b.account
            .safety_number("alice", &a.account.identity_public())
    );
}

#[test]
fn a_removed_member_cannot_read_after_sender_keys_rotate() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    let mut c = device("carol", "c1", None);
    let first = send(&mut a, &mut [&mut b, &mut c], "g", "hello all", true);
    // One group ciphertext: the group parts are the same bytes for everyone.
    assert_eq!(read(&mut b, &a, &first).unwrap(), "hello all");
    assert_eq!(read(&mut c, &a, &first).unwrap(), "hello all");
    let second = send(&mut a, &mut [&mut b, &mut c], "g", "second", true);
    assert_eq!(
        second[0].1, second[1].1,
        "sent once, the same bytes to each member"
    );
    assert_eq!(read(&mut c, &a, &second).unwrap(), "second");
    assert_eq!(read(&mut b, &a, &second).unwrap(), "second");
    // Carol is removed: Alice rotates her sender key and sends to Bob only.
    a.account.rotate_sender_key("g");
    let after = send(&mut a, &mut [&mut b], "g", "carol is gone", true);
    assert_eq!(read(&mut b, &a, &after).unwrap(), "carol is gone");
    // Carol, given the group part of the new message, cannot read it with her keys.
    let group_only = {
        let p = &after[0].1;
        // The envelope is [pairwise (new key for Bob)] + [group]; hand Carol just the group part.
        let parts = sotto_core::sealing::decode_payload(p).unwrap();
        let group = parts
            .iter()
            .find(|(k, _)| *k == sotto_core::sealing::PartKind::Group)
            .unwrap()
            .1;
        sotto_core::sealing::encode_payload(&[(sotto_core::sealing::PartKind::Group, group)])
    };
    let err = open(&mut c, &a, &group_only).unwrap_err();
    assert!(matches!(err, CoreError::NoSession(_)), "{err:?}");
    // A member who never got a distribution cannot read a group message either.
    let mut d = device("dave", "d1", None);
    assert!(open(&mut d, &a, &group_only).is_err());
}

#[test]
fn a_rotated_signed_prekey_still_opens_messages_in_flight_and_new_devices_are_noticed() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    // Alice claimed Bob's bundle with his first signed prekey...
    let first = send(&mut a, &mut [&mut b], "t", "in flight", false);
    // ...then Bob's week is up and he rotates it before the message arrives.
    assert!(b.account.rotate_signed_prekey_if_due(1).unwrap().is_none());
    let week = sotto_core::account::SIGNED_PREKEY_MAX_AGE_MS;
    let fresh = b
        .account
        .rotate_signed_prekey_if_due(week)
        .unwrap()
        .unwrap();
    assert_ne!(fresh.key.id, 1);
    assert_eq!(read(&mut b, &a, &first).unwrap(), "in flight");
    // Devices: the first sighting is the baseline; a later one is reported, for this
    // user's own account too.
    assert!(accept(&mut a, &b, &["b1"], 1).unwrap().added.is_empty());
    assert!(accept(&mut a, &b, &["b1"], 1).unwrap().added.is_empty());
    assert_eq!(accept(&mut a, &b, &["b1", "b2"], 2).unwrap().added, ["b2"]);
    let own = device(
        "alice",
        "a1",
        Some(Identity::from_secret_bytes(
            &a.account.identity().secret_bytes(),
        )),
    );
    assert!(accept(&mut a, &own, &["a1"], 1).unwrap().added.is_empty());
    assert_eq!(
        accept(&mut a, &own, &["a1", "a9"], 2).unwrap().added,
        ["a9"]
    );
}

#[test]
fn two_devices_that_start_sessions_with_each_other_at_once_still_read_everything() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    // Both send a first message before either has received anything.
    let from_a = send(&mut a, &mut [&mut b], "t", "a first", false);
    let from_b = send(&mut b, &mut [&mut a], "t", "b first", false);
    assert_eq!(read(&mut b, &a, &from_a).unwrap(), "a first");
    assert_eq!(read(&mut a, &b, &from_b).unwrap(), "b first");
    // Whatever session each now sends on, the other reads it, back and forth.
    for i in 0..4 {
        let text = format!("a {i}");
        let m = send(&mut a, &mut [&mut b], "t", &text, false);
        assert_eq!(read(&mut b, &a, &m).unwrap(), text);
        let text = format!("b {i}");
        let m = send(&mut b, &mut [&mut a], "t", &text, false);
        assert_eq!(read(&mut a, &b, &m).unwrap(), text);
    }
    // Crossed in flight, too.
    let m1 = send(&mut a, &mut [&mut b], "t", "crossed a", false);
    let m2 = send(&mut b, &mut [&mut a], "t", "crossed b", false);
    assert_eq!(read(&mut a, &b, &m2).unwrap(), "crossed b");
    assert_eq!(read(&mut b, &a, &m1).unwrap(), "crossed a");
}

#[test]
fn after_a_retry_request_the_resend_opens_on_a_fresh_session() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    let first = send(&mut a, &mut [&mut b], "t", "first", false);
    assert_eq!(read(&mut b, &a, &first).unwrap(), "first");
    // Bob loses his state (say, a restore from an older copy): Alice's next message on the
    // old session does not open.
    let mut b_lost = device("bob", "b1", None);
    let second = send(&mut a, &mut [&mut b_lost], "t", "second", false);
    assert!(read(&mut b_lost, &a, &second).is_err());
    // Bob asks again; Alice starts over with a fresh bundle and the resend opens.
    a.account.restart_session("b1");
    assert!(!a.account.has_session("b1"));
    let again = send(&mut a, &mut [&mut b_lost], "t", "second", false);
    assert_eq!(read(&mut b_lost, &a, &again).unwrap(), "second");
    // And the conversation carries on both ways.
    let answer = send(&mut b_lost, &mut [&mut a], "t", "answer", false);
    assert_eq!(read(&mut a, &b_lost, &answer).unwrap(), "answer");
}

#[test]
fn a_device_that_lacks_a_sender_key_gets_it_with_the_resend() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    let mut c = device("carol", "c1", None);
    let first = send(&mut a, &mut [&mut b, &mut c], "g", "hello all", true);
    assert_eq!(read(&mut b, &a, &first).unwrap(), "hello all");
    // Carol never processed the first envelope (dropped): the next group message is a
    // group part alone, which she cannot read.
    let second = send(&mut a, &mut [&mut b, &mut c], "g", "second", true);
    // (A group part alone needs a session with its sender, which she never set up.)
    let err = read(&mut c, &a, &second).unwrap_err();
    assert!(matches!(err, CoreError::Unverified(_)), "{err:?}");
    // Her retry request makes Alice hand the key to her again with the resend.
    a.account.restart_session("c1");
    let resend = send(&mut a, &mut [&mut c], "g", "second", true);
    assert_eq!(read(&mut c, &a, &resend).unwrap(), "second");
    // Bob was not disturbed: the next message reaches both.
    let third = send(&mut a, &mut [&mut b, &mut c], "g", "third", true);
    assert_eq!(read(&mut b, &a, &third).unwrap(), "third");
    assert_eq!(read(&mut c, &a, &third).unwrap(), "third");
}

#[test]
fn a_one_time_prekey_handed_out_long_ago_still_opens_its_first_message() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    // The server handed out Bob's oldest prekey to Alice; Bob then topped up many times
    // (as other people claimed the rest) before Alice's first message arrived.
    let oldest = b.account.generate_one_time_prekeys(100).unwrap()[0];
    for _ in 0..7 {
        b.account.generate_one_time_prekeys(100).unwrap();
    }
    let bundle = PreKeyBundle {
        device_id: "b1".into(),
        identity: b.account.identity_public(),
        signed_prekey: b.account.signed_prekey(),
        one_time_prekey: Some(oldest),
    };
    let identity = b.account.identity_public();
    a.account.start_session(&bundle, &identity).unwrap();
    let first = send(&mut a, &mut [&mut b], "t", "late first message", false);
    assert_eq!(read(&mut b, &a, &first).unwrap(), "late first message");
}

/// What a device stores is all it needs: after a reload through the stored record, every
/// session, pending first message, sender key and warning is as it was.
#[test]
fn the_stored_record_keeps_every_part_of_the_account() {
    let mut a = device("alice", "a1", None);
    let mut b = device("bob", "b1", None);
    let mut c = device("carol", "c1", None);
    // Alice to Bob with a one-time prekey; Alice to Carol without one (X3DH's optional
    // field absent), both unanswered so each session keeps its X3DH header.
    let to_bob = send(&mut a, &mut [&mut b], "t", "one", false);
    let bundle = PreKeyBundle {
        device_id: c.id.clone(),
        identity: c.account.identity_public(),
        signed_prekey: c.account.signed_prekey(),
        one_time_prekey: None,
    };
    a.account
        .start_session(&bundle, &c.account.identity_public())
        .unwrap();
    let group = send(&mut a, &mut [&mut b, &mut c], "g", "to the group", true);
    accept(&mut b, &a, &["a1"], 3).unwrap();

    for d in [&mut a, &mut b, &mut c] {
        let record = d.account.to_record();
        let reloaded = Account::from_record(&record).unwrap();
        assert_eq!(*reloaded.to_record(), *record, "{} round-trips", d.id);
        d.account = reloaded;
    }
    assert_eq!(read(&mut b, &a, &to_bob).unwrap(), "one");
    assert_eq!(read(&mut b, &a, &group).unwrap(), "to the group");
    assert_eq!(read(&mut c, &a, &group).unwrap(), "to the group");
    // Bob pinned version 3 of Alice's list before the reload: an older one is a replay.
    assert!(accept(&mut b, &a, &["a1"], 2).is_err());
    // And the reloaded Alice carries on the same chains.
    let next = send(&mut a, &mut [&mut b], "t", "two", false);
    assert_eq!(read(&mut b, &a, &next).unwrap(), "two");
}

/// A damaged, truncated, foreign or earlier-format record is refused as malformed, and
/// never panics.
#[test]
fn a_damaged_stored_record_is_refused() {
    let a = device("alice", "a1", None);
    let record = a.account.to_record();
    let json = serde_json::to_vec(&a.account).unwrap();
    let mut trailing = record.to_vec();
    trailing.push(0);
    for bad in [
        &trailing[..],
        &[][..],
        &record[..1],
        &record[..record.len() / 2],
        &record[..record.len() - 1],
        &json[..],
        &[9, 1, 2, 3][..],
    ] {
        let e = Account::from_record(bad).err().expect("refused");
        assert_eq!(e.code(), "malformed");
    }
}

proptest! {
    #[test]
    fn any_bytes_as_a_stored_record_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut framed = vec![2u8];
        framed.extend_from_slice(&bytes);
        let _ = Account::from_record(&framed);
    }
}
