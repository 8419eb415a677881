//! The relay as an attacker: it forges, relabels, replays, reorders and drops anything it
//! carries, and hands out keys of its own. Every attack here must be refused, and a refused
//! envelope must leave the receiving account exactly as it was (its serialized form is
//! compared before and after).

use proptest::prelude::*;
use sotto_core::account::{Account, Recipient};
use sotto_core::identity::DeviceList;
use sotto_core::inbox::{Inbound, Opened, Standing};
use sotto_core::prekeys::PreKeyBundle;
use sotto_core::sealing::{self, Kind, MessageBody, PartKind};
use sotto_core::CoreError;

struct Device {
    account: Account,
    id: String,
}

impl Device {
    fn new(user: &str, id: &str) -> Self {
        Device {
            account: Account::generate(user, 0).unwrap(),
            id: id.into(),
        }
    }

    fn user(&self) -> String {
        self.account.user_id.clone()
    }

    /// The bundle the server would hand out for this device, with or without a one-time key.
    fn bundle(&mut self, one_time: bool) -> PreKeyBundle {
        let opk = one_time.then(|| self.account.generate_one_time_prekeys(1).unwrap()[0]);
        PreKeyBundle {
            device_id: self.id.clone(),
            identity: self.account.identity_public(),
            signed_prekey: self.account.signed_prekey(),
            one_time_prekey: opk,
        }
    }

    /// The account as the device stores it.
    fn snapshot(&self) -> Vec<u8> {
        self.account.to_record().to_vec()
    }
}

fn body(user: &str, device: &str, thread: &str, text: &str, kind: Kind) -> MessageBody {
    MessageBody {
        v: 1,
        message_id: format!("{thread}/{text}"),
        thread_id: thread.into(),
        distribution: "@x".into(),
        sender_user: user.into(),
        sender_device: device.into(),
        sent_at: 1,
        text: text.into(),
        kind,
        ..Default::default()
    }
}

/// Seals `text` from `from` to `to` (pairwise, or under a sender key when `group`). The
/// session is made from a bundle with a one-time key unless `one_time` is false.
fn seal(
    from: &mut Device,
    to: &mut Device,
    thread: &str,
    text: &str,
    group: bool,
    one_time: bool,
) -> Vec<u8> {
    if !from.account.has_session(&to.id) {
        let bundle = to.bundle(one_time);
        from.account
            .start_session(&bundle, &to.account.identity_public())
            .unwrap();
    }
    let b = body(&from.user(), &from.id, thread, text, Kind::Message);
    let recipients = [Recipient {
        user_id: to.user(),
        device_id: to.id.clone(),
    }];
    let mut out = from
        .account
        .seal(&b, &from.id.clone(), &recipients, group)
        .unwrap();
    from.account
        .mark_distributed(thread, std::slice::from_ref(&to.id));
    out.remove(0).1
}

/// Seals body `b` from `from` to `to`'s one device as it is: no session is made and no
/// sender key marked as handed out.
fn seal_as_is(from: &mut Device, b: &MessageBody, to: &Device, group: bool) -> Vec<u8> {
    let recipients = [Recipient {
        user_id: to.user(),
        device_id: to.id.clone(),
    }];
    let own = from.id.clone();
    from.account
        .seal(b, &own, &recipients, group)
        .unwrap()
        .remove(0)
        .1
}

fn members(_: &str, _: &str) -> Standing {
    Standing::Member
}

/// `to` opens `payload` labelled as from (`user`, `device`), believing `claimed` is the
/// identity that signs that user's devices.
fn open_as(
    to: &mut Device,
    payload: &[u8],
    user: &str,
    device: &str,
    claimed: &Device,
    threads: &dyn sotto_core::inbox::Threads,
) -> Result<Opened, CoreError> {
    let own = to.id.clone();
    to.account.open(
        &Inbound {
            payload,
            sender_user: user,
            sender_device: device,
            live: false,
        },
        &own,
        &claimed.account.identity_public(),
        threads,
    )
}

/// Opens honestly: labels and identity are the sender's own.
fn open(to: &mut Device, from: &Device, payload: &[u8]) -> Result<Opened, CoreError> {
    let (u, d) = (from.user(), from.id.clone());
    open_as(to, payload, &u, &d, from, &members)
}

/// Asserts the attack is refused and changes nothing.
fn refused(
    to: &mut Device,
    attempt: impl FnOnce(&mut Device) -> Result<Opened, CoreError>,
) -> CoreError {
    let before = to.snapshot();
    let err = attempt(to).expect_err("the attack was accepted");
    assert_eq!(
        before,
        to.snapshot(),
        "a refused envelope changed the account ({err:?})"
    );
    err
}

#[test]
fn a_relay_cannot_take_over_a_session_with_its_own_x3dh() {
    let mut alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let hello = seal(&mut alice, &mut bob, "t", "hello", false, true);
    assert_eq!(
        open(&mut bob, &alice, &hello).unwrap().body.unwrap().text,
        "hello"
    );

    // The relay makes an identity of its own, starts a session with Bob from his published
    // bundle, and labels it as Alice's device a1 — with a body that authenticates, and with
    // one whose body is garbage.
    let mut mallory = Device::new("alice", "a1");
    let forged = seal(&mut mallory, &mut bob, "t", "it is me, alice", false, true);
    let err = refused(&mut bob, |b| {
        open_as(b, &forged, "alice", "a1", &alice, &members)
    });
    assert_eq!(err.code(), "unverified_sender");
    let mut garbage = forged.clone();
    let last = garbage.len() - 1;
    garbage[last] ^= 1;
    refused(&mut bob, |b| {
        open_as(b, &garbage, "alice", "a1", &alice, &members)
    });
    // Its next message on "its" session finds none.
    let next = seal(&mut mallory, &mut bob, "t", "still me", false, true);
    refused(&mut bob, |b| {
        open_as(b, &next, "alice", "a1", &alice, &members)
    });

    // Alice's session with Bob is untouched: they go on, and Bob's reply is Alice's alone.
    let more = seal(&mut alice, &mut bob, "t", "more", false, true);
    assert_eq!(
        open(&mut bob, &alice, &more).unwrap().body.unwrap().text,
        "more"
    );
    let reply = seal(&mut bob, &mut alice, "t", "reply", false, true);
    assert_eq!(
        open(&mut alice, &bob, &reply).unwrap().body.unwrap().text,
        "reply"
    );
    assert!(open_as(&mut mallory, &reply, "bob", "b1", &bob, &members).is_err());
}

#[test]
fn a_relay_cannot_plant_a_sender_key_or_forge_group_messages() {
    let mut alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let mut mallory = Device::new("alice", "a1");
    // A group message under the relay's own sender key, handed over on its own session.
    let planted = seal(
        &mut mallory,
        &mut bob,
        "g",
        "forged group message",
        true,
        true,
    );
    refused(&mut bob, |b| {
        open_as(b, &planted, "alice", "a1", &alice, &members)
    });
    // Alice's real group message still opens, and the relay's group part does not.
    let real = seal(&mut alice, &mut bob, "g", "real", true, true);
    assert_eq!(
        open(&mut bob, &alice, &real).unwrap().body.unwrap().text,
        "real"
    );
    let later = seal(&mut mallory, &mut bob, "g", "again", true, true);
    let group_part = {
        let parts = sealing::decode_payload(&later).unwrap();
        let g = parts.iter().find(|(k, _)| *k == PartKind::Group).unwrap().1;
        sealing::encode_payload(&[(PartKind::Group, g)])
    };
    refused(&mut bob, |b| {
        open_as(b, &group_part, "alice", "a1", &alice, &members)
    });
}

#[test]
fn relabelled_envelopes_are_refused() {
    let mut alice = Device::new("alice", "a1");
    let mut carol = Device::new("carol", "c1");
    let mut bob = Device::new("bob", "b1");
    let hello = seal(&mut alice, &mut bob, "t", "hello", false, true);
    open(&mut bob, &alice, &hello).unwrap();
    // Carol's first message to Bob, relabelled as Alice's (to Bob she has a session).
    let from_carol = seal(&mut carol, &mut bob, "t", "from carol", false, true);
    refused(&mut bob, |b| {
        open_as(b, &from_carol, "alice", "a1", &alice, &members)
    });
    // Alice's own message, relabelled as from another of Alice's devices or another user.
    let next = seal(&mut alice, &mut bob, "t", "next", false, true);
    refused(&mut bob, |b| {
        open_as(b, &next, "alice", "a2", &alice, &members)
    });
    refused(&mut bob, |b| {
        open_as(b, &next, "carol", "a1", &carol, &members)
    });
    // Delivered honestly, it still opens.
    assert_eq!(
        open(&mut bob, &alice, &next).unwrap().body.unwrap().text,
        "next"
    );
    // And the relay replaying it changes nothing.
    let err = refused(&mut bob, |b| open(b, &alice, &next));
    assert_eq!(err, CoreError::Replay);
}

#[test]
fn a_first_message_without_a_one_time_prekey_cannot_be_replayed_later() {
    let mut alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let first = seal(&mut alice, &mut bob, "t", "first", false, false);
    open(&mut bob, &alice, &first).unwrap();
    // Alice starts over (new sessions) often enough that the first one leaves the sessions
    // Bob keeps; a replay of that first message must still be refused.
    for i in 0..5 {
        let mut fresh = Device::new("alice", "a1");
        fresh.account = Account::from_record(&alice.snapshot()).unwrap();
        let bundle = bob.bundle(false);
        alice
            .account
            .start_session(&bundle, &bob.account.identity_public())
            .unwrap();
        let m = seal(
            &mut alice,
            &mut bob,
            "t",
            &format!("restart {i}"),
            false,
            false,
        );
        open(&mut bob, &alice, &m).unwrap();
    }
    let err = refused(&mut bob, |b| open(b, &alice, &first));
    assert_eq!(err, CoreError::Replay);
}

#[test]
fn non_members_can_neither_post_nor_hand_out_keys() {
    let mut alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let hello = seal(&mut alice, &mut bob, "t", "hello", false, true);
    open(&mut bob, &alice, &hello).unwrap();
    // Bob's thread "g" does not have Alice (any more).
    let not_in_g = |thread: &str, user: &str| {
        if thread == "g" && user == "alice" {
            Standing::NotMember
        } else {
            Standing::Member
        }
    };
    let post = seal(&mut alice, &mut bob, "g", "let me back in", false, true);
    let err = refused(&mut bob, |b| {
        open_as(b, &post, "alice", "a1", &alice, &not_in_g)
    });
    assert_eq!(err, CoreError::NotMember);
    let group = seal(&mut alice, &mut bob, "g", "group post", true, true);
    let err = refused(&mut bob, |b| {
        open_as(b, &group, "alice", "a1", &alice, &not_in_g)
    });
    assert_eq!(err, CoreError::NotMember);
    // A crafted update is refused just the same.
    let mut update = body("alice", "a1", "g", "re-add", Kind::Update);
    update.distribution = "@alice + @bob".into();
    update.meta_at = i64::MAX;
    let out = seal_as_is(&mut alice, &update, &bob, false);
    refused(&mut bob, |b| {
        open_as(b, &out, "alice", "a1", &alice, &not_in_g)
    });
    // Nor can she, removed, take back her old messages there, react to anyone's, or show
    // as typing.
    for kind in [Kind::Delete, Kind::Edit, Kind::React, Kind::Typing] {
        let change = MessageBody {
            target: Some("m1".into()),
            ..body("alice", "a1", "g", "👍", kind)
        };
        let out = seal_as_is(&mut alice, &change, &bob, false);
        let err = refused(&mut bob, |b| {
            open_as(b, &out, "alice", "a1", &alice, &not_in_g)
        });
        assert_eq!(err, CoreError::NotMember, "{kind:?}");
    }
    // Read marks and posts to threads she is in still work.
    let fine = seal(&mut alice, &mut bob, "t", "fine", false, true);
    assert!(open_as(&mut bob, &fine, "alice", "a1", &alice, &not_in_g).is_ok());
}

#[test]
fn old_device_lists_cannot_be_replayed() {
    let alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let signed = |version: i64, devices: &[&str]| {
        alice.account.sign_device_list(&DeviceList {
            user_id: "alice".into(),
            version,
            devices: devices.iter().map(|d| d.to_string()).collect(),
        })
    };
    let registered: Vec<String> = vec!["a1".into(), "a2".into()];
    let id = alice.account.identity_public();
    let old = signed(1, &["a1", "a2"]);
    bob.account
        .accept_keys("alice", &id, &old, &registered)
        .unwrap();
    // Alice removes a2 (version 2); the relay then replays version 1.
    let new = signed(2, &["a1"]);
    let seen = bob
        .account
        .accept_keys("alice", &id, &new, &registered)
        .unwrap();
    assert_eq!(seen.removed, ["a2"]);
    let before = bob.snapshot();
    assert_eq!(
        bob.account.accept_keys("alice", &id, &old, &registered),
        Err(CoreError::StaleDeviceList)
    );
    assert_eq!(before, bob.snapshot());
    // A list signed by another identity, or for another user, is refused too.
    let other = Device::new("alice", "a9");
    assert!(bob
        .account
        .accept_keys("alice", &other.account.identity_public(), &new, &registered)
        .is_err());
    assert!(bob
        .account
        .accept_keys("carol", &id, &new, &registered)
        .is_err());
}

#[test]
fn a_removed_device_takes_the_sender_keys_it_was_given_with_it() {
    let mut alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let bob_id = bob.account.identity_public();
    let list = |version: i64, devices: &[&str]| {
        bob.account.sign_device_list(&DeviceList {
            user_id: "bob".into(),
            version,
            devices: devices.iter().map(|d| d.to_string()).collect(),
        })
    };
    let (l1, l2) = (list(1, &["b1", "b2"]), list(2, &["b2"]));
    let all: Vec<String> = vec!["b1".into(), "b2".into()];
    alice
        .account
        .accept_keys("bob", &bob_id, &l1, &all)
        .unwrap();
    let first = seal(&mut alice, &mut bob, "g", "one", true, true);
    open(&mut bob, &alice, &first).unwrap();
    let key_before = sealing::decode_payload(&first).unwrap().len();
    assert_eq!(key_before, 2, "the first group message carries the key");
    // b1 is removed from Bob's list: Alice's next group message uses a new key.
    let seen = alice
        .account
        .accept_keys("bob", &bob_id, &l2, &all)
        .unwrap();
    assert_eq!(seen.removed, ["b1"]);
    assert!(!alice.account.has_session("b1"));
    let mut b2 = Device::new("bob", "b2");
    b2.account = Account::with_identity(
        "bob",
        sotto_core::identity::Identity::from_secret_bytes(&bob.account.identity().secret_bytes()),
        0,
    )
    .unwrap();
    let second = seal(&mut alice, &mut b2, "g", "two", true, true);
    let parts = sealing::decode_payload(&second).unwrap();
    assert_eq!(parts.len(), 2, "a new sender key goes out");
    let old_id =
        sotto_core::sender_key::key_id_of(sealing::decode_payload(&first).unwrap()[1].1).unwrap();
    let new_id = sotto_core::sender_key::key_id_of(parts[1].1).unwrap();
    assert_ne!(old_id, new_id, "the key b1 holds is retired");
}

#[derive(Debug, Clone)]
enum Forgery {
    FlipBit(usize),
    Truncate(usize),
    RelabelUser,
    RelabelDevice,
    Replay,
    ForeignIdentity,
    OtherThreadGroupPart,
}

fn forgery() -> impl Strategy<Value = Forgery> {
    prop_oneof![
        any::<usize>().prop_map(Forgery::FlipBit),
        any::<usize>().prop_map(Forgery::Truncate),
        Just(Forgery::RelabelUser),
        Just(Forgery::RelabelDevice),
        Just(Forgery::Replay),
        Just(Forgery::ForeignIdentity),
        Just(Forgery::OtherThreadGroupPart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any forgery of a real envelope, at any point of a conversation, is refused and leaves
    /// the receiver's account byte for byte as it was; the honest envelope then still opens.
    #[test]
    fn every_forgery_is_refused_and_changes_nothing(
        script in prop::collection::vec((any::<bool>(), any::<bool>(), forgery()), 1..12)
    ) {
        let mut alice = Device::new("alice", "a1");
        let mut bob = Device::new("bob", "b1");
        let mallory = Device::new("mallory", "m1");
        let mut last: Option<Vec<u8>> = None;
        for (i, (group, from_alice, f)) in script.into_iter().enumerate() {
            let text = format!("m{i}");
            let thread = if group { "g" } else { "t" };
            let (from, to) = if from_alice { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
            let real = seal(from, to, thread, &text, group, i % 2 == 0);
            let (u, d) = (from.user(), from.id.clone());
            let forged: Vec<u8> = match &f {
                Forgery::FlipBit(at) => {
                    let mut p = real.clone();
                    let at = at % (p.len() * 8);
                    p[at / 8] ^= 1 << (at % 8);
                    p
                }
                Forgery::Truncate(at) => real[..at % real.len()].to_vec(),
                Forgery::Replay => last.clone().unwrap_or_else(|| real[..1].to_vec()),
                Forgery::OtherThreadGroupPart => {
                    let other = seal(from, to, "other", "x", true, true);
                    let parts = sealing::decode_payload(&other).unwrap();
                    let g = parts.iter().find(|(k, _)| *k == PartKind::Group).unwrap().1;
                    // Alone it would open (as "other"); spliced behind this envelope's
                    // pairwise part for thread `thread` it must not confuse anything.
                    let mine = sealing::decode_payload(&real).unwrap();
                    let mut spliced: Vec<(PartKind, &[u8])> =
                        mine.iter().filter(|(k, _)| *k != PartKind::Group).cloned().collect();
                    spliced.push((PartKind::Group, g));
                    spliced.push((PartKind::Group, g));
                    sealing::encode_payload(&spliced)
                }
                _ => real.clone(),
            };
            let before = to.snapshot();
            let result = match &f {
                Forgery::RelabelUser => open_as(to, &forged, "mallory", &d, &mallory, &members),
                Forgery::RelabelDevice => open_as(to, &forged, &u, "x9", from, &members),
                Forgery::ForeignIdentity => open_as(to, &forged, &u, &d, &mallory, &members),
                _ => open_as(to, &forged, &u, &d, from, &members),
            };
            prop_assert!(result.is_err(), "a forgery was accepted: {:?}", f);
            prop_assert_eq!(&before, &to.snapshot(), "refused, yet changed: {:?}", f);
            let opened = open(to, from, &real).expect("the honest envelope opens");
            prop_assert_eq!(opened.body.unwrap().text, text);
            last = Some(real);
        }
    }
}

#[test]
fn a_member_cannot_write_a_body_in_someone_elses_name() {
    let mut alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let hello = seal(&mut alice, &mut bob, "t", "hello", false, true);
    open(&mut bob, &alice, &hello).unwrap();
    // Alice's own session, authentic, but the body claims to be Carol's.
    let lie = body("carol", "c1", "t", "carol says hi", Kind::Message);
    let out = seal_as_is(&mut alice, &lie, &bob, false);
    let err = refused(&mut bob, |b| open(b, &alice, &out));
    assert_eq!(err.code(), "malformed");
}

/// Typing notices are sent live: the relay hands them only to devices connected at that
/// moment, so a device that was away never sees them. Whatever it drops, pairwise or under a
/// sender key, the next message still opens, and the notice it did carry opens once.
#[test]
fn typing_notices_the_relay_drops_leave_every_session_whole() {
    for group in [false, true] {
        let mut alice = Device::new("alice", "a1");
        let mut bob = Device::new("bob", "b1");
        let first = seal(&mut alice, &mut bob, "t", "first", group, true);
        assert!(open(&mut bob, &alice, &first).is_ok());
        let mut notices = Vec::new();
        for i in 0..50 {
            let typing = body("alice", "a1", "t", &format!("typing {i}"), Kind::Typing);
            notices.push(seal_as_is(&mut alice, &typing, &bob, group));
        }
        // Bob was away for all but the last notice; then Alice's message comes.
        let shown = open(&mut bob, &alice, notices.last().unwrap()).unwrap();
        assert_eq!(shown.body.unwrap().kind, Kind::Typing);
        let next = seal(&mut alice, &mut bob, "t", "after the typing", group, true);
        let opened = open(&mut bob, &alice, &next).unwrap().body.unwrap();
        assert_eq!(
            (opened.kind, opened.text.as_str()),
            (Kind::Message, "after the typing")
        );
        // The notice shown cannot be shown again.
        assert!(open(&mut bob, &alice, notices.last().unwrap()).is_err());
    }
}

/// The relay passes a stored message off as live (or a member sends one live): it is
/// refused with nothing used up, and opens whole when delivered as it should be; a typing
/// notice opens live.
#[test]
fn only_a_typing_notice_opens_live() {
    for group in [false, true] {
        let mut alice = Device::new("alice", "a1");
        let mut bob = Device::new("bob", "b1");
        let message = seal(&mut alice, &mut bob, "t", "stored only", group, true);
        let alice_identity = alice.account.identity_public();
        let live = |bob: &mut Device, payload: &[u8]| {
            let own = bob.id.clone();
            bob.account.open(
                &Inbound {
                    payload,
                    sender_user: "alice",
                    sender_device: "a1",
                    live: true,
                },
                &own,
                &alice_identity,
                &members,
            )
        };
        let err = refused(&mut bob, |b| live(b, &message));
        assert!(matches!(err, CoreError::Malformed { .. }), "{err:?}");
        let opened = open(&mut bob, &alice, &message).unwrap().body.unwrap();
        assert_eq!(opened.text, "stored only");
        let typing = body("alice", "a1", "t", "1", Kind::Typing);
        let out = seal_as_is(&mut alice, &typing, &bob, group);
        let shown = live(&mut bob, &out).unwrap().body.unwrap();
        assert_eq!(shown.kind, Kind::Typing);
    }
}

/// A sender key rides along with every envelope until a message is accepted (typing
/// notices do not mark it handed out). Two such envelopes opened out of order, or one
/// held back by the relay, must not take the receiver's copy of the chain back: what was
/// read stays read.
#[test]
fn a_sender_key_handed_out_again_never_takes_the_chain_back() {
    let mut alice = Device::new("alice", "a1");
    let mut bob = Device::new("bob", "b1");
    let bundle = bob.bundle(true);
    alice
        .account
        .start_session(&bundle, &bob.account.identity_public())
        .unwrap();
    let seal_for_bob = |alice: &mut Device, bob: &Device, text: &str, kind: Kind| {
        seal_as_is(alice, &body("alice", "a1", "g", text, kind), bob, true)
    };
    // Two typing notices, each carrying the key (not marked as handed out), then messages
    // under the key alone once it is marked.
    let t0 = seal_for_bob(&mut alice, &bob, "t0", Kind::Typing);
    let t1 = seal_for_bob(&mut alice, &bob, "t1", Kind::Typing);
    alice.account.mark_distributed("g", &["b1".to_owned()]);
    let g2 = seal_for_bob(&mut alice, &bob, "g2", Kind::Message);
    let g3 = seal_for_bob(&mut alice, &bob, "g3", Kind::Message);
    for (payload, text) in [(&t1, "t1"), (&g2, "g2"), (&g3, "g3")] {
        assert_eq!(
            open(&mut bob, &alice, payload).unwrap().body.unwrap().text,
            text
        );
    }
    // The relay delivers the first notice late: its pairwise part is a fair late arrival,
    // but its old copy of the key must not rewind the chain...
    let _ = open(&mut bob, &alice, &t0);
    // ...so a message already read cannot be read again.
    refused(&mut bob, |b| open(b, &alice, &g2));
}
