//! The client's own tests, run by wasm-bindgen-test in headless Chromium:
//! `cargo test --target wasm32-unknown-unknown --tests -p sotto`.
#![cfg(target_arch = "wasm32")]

use sotto::error::ClientError;
use sotto::keystore;
use sotto::model::{display_name, Message, Status, Thread};
use sotto::ui::{Ui, UiActions, UiConfig};
use sotto::ClientCore;
use sotto_core::account::{Account, Recipient};
use sotto_core::inbox::{Inbound, Standing};
use sotto_core::prekeys::PreKeyBundle;
use sotto_core::protocol::User;
use sotto_core::sealing::MessageBody;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn host() -> web_sys::Element {
    let doc = web_sys::window().unwrap().document().unwrap();
    let el = doc.create_element("div").unwrap();
    doc.body().unwrap().append_child(&el).unwrap();
    el
}

fn user(id: &str, name: &str) -> User {
    User {
        id: id.into(),
        tag: id.into(),
        name: Some(name.into()),
        email: None,
        ephemeral: false,
    }
}

fn noop() -> UiActions {
    UiActions {
        send: Rc::new(|_, _, _| {}),
        change: Rc::new(|_, _, _| {}),
        open: Rc::new(|_| {}),
        typing: Rc::new(|_| {}),
        search: Rc::new(|_| {}),
        new_thread: Rc::new(|_| {}),
        download: Rc::new(|_, _| {}),
        verify: Rc::new(|| {}),
        backup: Rc::new(|| {}),
        rename: Rc::new(|| {}),
        new_topic: Rc::new(|| {}),
        redraw: Rc::new(|| {}),
        dismiss: Rc::new(|_, _| {}),
    }
}

#[wasm_bindgen_test]
fn user_text_is_rendered_as_text_never_as_html() {
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let hostile = "<img src=x onerror=\"window.pwned=1\"><b>bold</b>";
    let mut thread = Thread::new(
        "t1".into(),
        "@alice + @bob".into(),
        vec![user("alice", "Alice"), user("bob", "<i>Bob</i>")],
    );
    thread.unread = 1;
    thread.messages = vec![Message {
        id: "m1".into(),
        thread_id: "t1".into(),
        sender_id: "bob".into(),
        sender_name: "<i>Bob</i>".into(),
        sent_at: 0,
        text: hostile.into(),
        outgoing: false,
        status: Status::Received,
        expires_at: None,
        html: Some("<b>never shown</b>".into()),
        attrs: Default::default(),
        attachments: Vec::new(),
        ..Default::default()
    }];
    ui.render_threads(std::slice::from_ref(&thread), None, "alice", None)
        .unwrap();
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    let root = el.shadow_root().expect("mounted in a shadow root");
    assert!(
        root.query_selector("img").unwrap().is_none(),
        "no element may come from user text"
    );
    assert!(root.query_selector("b").unwrap().is_none());
    let text = root.query_selector(".msg .text").unwrap().unwrap();
    assert_eq!(text.text_content().unwrap(), hostile);
    let sender = root.query_selector(".msg .sender").unwrap().unwrap();
    assert_eq!(sender.text_content().unwrap(), "<i>Bob</i>");
    assert_eq!(
        root.query_selector(".unread")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap(),
        "1"
    );
    // The page's own DOM is untouched: everything lives in the shadow root.
    assert_eq!(el.child_element_count(), 0);
}

#[wasm_bindgen_test]
fn show_nav_and_show_header_hide_their_parts() {
    let el = host();
    let config = UiConfig {
        show_nav: false,
        show_header: false,
        ..UiConfig::default()
    };
    let _ui = Ui::mount(&el, &config, noop()).unwrap();
    let root = el.shadow_root().unwrap();
    assert!(root.query_selector("nav").unwrap().is_none());
    assert!(root
        .query_selector("header")
        .unwrap()
        .unwrap()
        .has_attribute("hidden"));
}

#[wasm_bindgen_test]
async fn accounts_are_stored_encrypted_under_a_non_extractable_key() {
    let key = format!("test|org|{}", js_sys::Math::random());
    assert!(keystore::load(&key).await.unwrap().is_none());
    // A user ID long enough that random ciphertext cannot contain it by chance.
    let user = "u_a-user-id-no-ciphertext-holds";
    let account = Account::generate(user, 0).unwrap();
    let identity = account.identity_public();
    let bytes = keystore::serialize(&account).unwrap();
    keystore::save_serialized(&key, Some("d_1"), &bytes)
        .await
        .unwrap();
    let back = keystore::load(&key).await.unwrap().expect("stored");
    assert_eq!(back.account.identity_public(), identity);
    assert_eq!(back.device_id.as_deref(), Some("d_1"));
    // What IndexedDB holds is ciphertext, and the key that opens it cannot be read out.
    let raw = sotto::idb::get(sotto::idb::DEVICES, &key).await.unwrap();
    let data: js_sys::Uint8Array = js_sys::Reflect::get(&raw, &"data".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    let stored = String::from_utf8_lossy(&data.to_vec()).to_string();
    assert!(!stored.contains("identity") && !stored.contains(user));
    let wrap = sotto::idb::get(sotto::idb::KEYS, "wrap").await.unwrap();
    let wrap: web_sys::CryptoKey = wrap.dyn_into().expect("a CryptoKey");
    assert!(!wrap.extractable());
}

#[wasm_bindgen_test]
async fn history_is_stored_encrypted_and_reads_back() {
    let key = format!("test|org|{}", js_sys::Math::random());
    let mut thread = Thread::new(
        "t1".into(),
        "@alice + @bob".into(),
        vec![user("bob", "Bob")],
    );
    thread.messages.push(Message {
        id: "m1".into(),
        thread_id: "t1".into(),
        sender_id: "bob".into(),
        sender_name: "Bob".into(),
        sent_at: 1,
        text: "the secret word is swordfish".into(),
        outgoing: false,
        status: Status::Received,
        expires_at: None,
        html: None,
        attrs: Default::default(),
        attachments: Vec::new(),
        ..Default::default()
    });
    sotto::history::save(&key, &mut thread).await.unwrap();
    let back = sotto::history::load(&key).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].messages[0].text, "the secret word is swordfish");
    let raw = sotto::idb::get(sotto::idb::THREADS, &format!("{key}|t1"))
        .await
        .unwrap();
    let data: js_sys::Uint8Array = js_sys::Reflect::get(&raw, &"data".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    let stored = String::from_utf8_lossy(&data.to_vec()).to_string();
    assert!(!stored.contains("swordfish") && !stored.contains("Bob"));
    let page = sotto::idb::get(sotto::idb::THREADS, &format!("{key}|t1|000000"))
        .await
        .unwrap();
    let data: js_sys::Uint8Array = js_sys::Reflect::get(&page, &"data".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    let stored = String::from_utf8_lossy(&data.to_vec()).to_string();
    assert!(!stored.contains("swordfish"), "pages are encrypted too");
}

fn message(thread: &str, n: usize) -> Message {
    Message {
        id: format!("m{n}"),
        thread_id: thread.into(),
        sender_id: "bob".into(),
        sender_name: "Bob".into(),
        sent_at: n as i64,
        text: format!("message {n}"),
        outgoing: false,
        status: Status::Received,
        expires_at: None,
        html: None,
        attrs: Default::default(),
        attachments: Vec::new(),
        ..Default::default()
    }
}

/// The stored records of a user's history: (key, iv) in key order.
async fn records(key: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for n in 0..20 {
        for k in [format!("{key}|t1"), format!("{key}|t1|{n:06}")] {
            let v = sotto::idb::get(sotto::idb::THREADS, &k).await.unwrap();
            if v.is_undefined() || out.iter().any(|(o, _)| *o == k) {
                continue;
            }
            let iv: js_sys::Uint8Array = js_sys::Reflect::get(&v, &"iv".into())
                .unwrap()
                .dyn_into()
                .unwrap();
            out.push((k, iv.to_vec()));
        }
    }
    out
}

/// A new user's history with thread `t1` of `n` messages from Bob, saved.
async fn saved_thread(n: usize) -> (String, Thread) {
    let key = format!("test|org|{}", js_sys::Math::random());
    let mut thread = Thread::new(
        "t1".into(),
        "@alice + @bob".into(),
        vec![user("bob", "Bob")],
    );
    thread.messages = (0..n).map(|n| message("t1", n)).collect();
    sotto::history::save(&key, &mut thread).await.unwrap();
    (key, thread)
}

#[wasm_bindgen_test]
async fn a_new_message_rewrites_one_page_not_the_thread() {
    let (key, mut thread) = saved_thread(100).await;
    let before = records(&key).await;
    assert_eq!(before.len(), 1 + 4, "the thread and four pages of 32");

    thread.messages.push(message("t1", 100));
    sotto::history::save(&key, &mut thread).await.unwrap();
    let after = records(&key).await;
    let rewritten: Vec<&str> = after
        .iter()
        .filter(|r| !before.contains(r))
        .map(|(k, _)| k.rsplit('|').next().unwrap())
        .collect();
    assert_eq!(
        rewritten,
        ["t1", "000003"],
        "the thread record and the last page only"
    );

    // A status change far back rewrites that page.
    thread.messages[5].status = Status::Failed;
    sotto::history::save(&key, &mut thread).await.unwrap();
    let back = sotto::history::load(&key).await.unwrap();
    let ids: Vec<String> = back[0].messages.iter().map(|m| m.id.clone()).collect();
    let expected: Vec<String> = (0..=100).map(|n| format!("m{n}")).collect();
    assert_eq!(ids, expected, "every message once, in order");
    assert_eq!(back[0].messages[5].status, Status::Failed);

    // Deleting messages leaves no stale page behind.
    thread.messages.drain(10..80);
    sotto::history::save(&key, &mut thread).await.unwrap();
    assert_eq!(records(&key).await.len(), 1 + 1, "31 messages: one page");
    let back = sotto::history::load(&key).await.unwrap();
    assert_eq!(back[0].messages.len(), 31);
    assert_eq!(back[0].messages[10].id, "m80");

    sotto::history::remove(&key, "t1").await.unwrap();
    assert!(records(&key).await.is_empty());
    assert!(sotto::history::load(&key).await.unwrap().is_empty());
}

#[wasm_bindgen_test]
async fn a_save_from_a_tab_that_never_read_the_history_leaves_no_old_pages() {
    let (key, mut thread) = saved_thread(100).await;
    // As after linking, which saves a shortened copy before anything was read here.
    sotto::history::forget("");
    thread.messages.drain(..90);
    sotto::history::save(&key, &mut thread).await.unwrap();
    let back = sotto::history::load(&key).await.unwrap();
    let ids: Vec<&str> = back[0].messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, (90..100).map(|n| format!("m{n}")).collect::<Vec<_>>());
    assert_eq!(records(&key).await.len(), 1 + 1);

    // A thread whose ID could name another thread's page is not read back.
    let mut intruder = Thread::new("t1|000001".into(), "@alice + @eve".into(), vec![]);
    let json = serde_json::to_string(&{
        intruder.messages.push(message("t1|000001", 1));
        intruder
    })
    .unwrap();
    sotto::idb::put(
        sotto::idb::THREADS,
        &format!("{key}|t1|000001"),
        &json.into(),
    )
    .await
    .unwrap();
    let back = sotto::history::load(&key).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id, "t1");
    assert_eq!(back[0].messages.len(), 10);
}

#[wasm_bindgen_test]
async fn a_thread_stored_whole_by_an_older_version_reads_and_moves_to_pages() {
    let key = format!("test|org|{}", js_sys::Math::random());
    let mut thread = Thread::new(
        "t1".into(),
        "@alice + @bob".into(),
        vec![user("bob", "Bob")],
    );
    thread.messages = (0..40).map(|n| message("t1", n)).collect();
    // What earlier versions wrote: the whole thread, messages included, in one record.
    let json = serde_json::to_string(&thread).unwrap();
    sotto::idb::put(sotto::idb::THREADS, &format!("{key}|t1"), &json.into())
        .await
        .unwrap();
    let mut back = sotto::history::load(&key).await.unwrap();
    assert_eq!(back[0].messages.len(), 40);
    back[0].messages.push(message("t1", 40));
    sotto::history::save(&key, &mut back[0]).await.unwrap();
    assert_eq!(records(&key).await.len(), 1 + 2, "moved to two pages");
    let again = sotto::history::load(&key).await.unwrap();
    assert_eq!(again[0].messages.len(), 41);
}

#[wasm_bindgen_test]
fn a_new_message_is_appended_without_redrawing_the_others() {
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let mut thread = Thread::new(
        "t1".into(),
        "@alice + @bob".into(),
        vec![user("bob", "Bob")],
    );
    thread.messages = (0..3).map(|n| message("t1", n)).collect();
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    let root = el.shadow_root().unwrap();
    let item = |id: &str| {
        root.query_selector(&format!("[data-message=\"{id}\"]"))
            .unwrap()
            .unwrap()
    };
    let (first, second) = (item("m0"), item("m1"));
    thread.messages.push(message("t1", 3));
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    assert_eq!(root.query_selector_all(".msg").unwrap().length(), 4);
    assert!(
        first.is_connected() && second.is_connected(),
        "kept, not redrawn"
    );
    assert_eq!(
        item("m3")
            .query_selector(".text")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap(),
        "message 3"
    );
    // A change to one message redraws it (and those after it), not those before.
    thread.messages[1].text = "edited".into();
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    assert!(first.is_connected());
    assert!(!second.is_connected());
    assert_eq!(
        item("m1")
            .query_selector(".text")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap(),
        "edited"
    );
    assert_eq!(root.query_selector_all(".msg").unwrap().length(), 4);
    assert_eq!(
        root.query_selector_all(".day").unwrap().length(),
        1,
        "one day, one separator"
    );
    // Another thread starts afresh.
    let other = Thread::new(
        "t2".into(),
        "@alice + @carol".into(),
        vec![user("carol", "Carol")],
    );
    ui.render_thread(Some(&other), "alice", &[], &[], &[])
        .unwrap();
    assert_eq!(root.query_selector_all(".msg").unwrap().length(), 0);
}

fn bundle_of(account: &mut Account, device_id: &str) -> PreKeyBundle {
    PreKeyBundle {
        device_id: device_id.into(),
        identity: account.identity_public(),
        signed_prekey: account.signed_prekey(),
        one_time_prekey: Some(account.generate_one_time_prekeys(1).unwrap()[0]),
    }
}

#[wasm_bindgen_test]
fn sessions_and_sender_keys_work_in_the_browser() {
    let mut alice = Account::generate("ua", 0).unwrap();
    let mut bob = Account::generate("ub", 0).unwrap();
    let mut carol = Account::generate("uc", 0).unwrap();
    for (account, id) in [(&mut bob, "db"), (&mut carol, "dc")] {
        let bundle = bundle_of(account, id);
        let identity = bundle.identity;
        alice.start_session(&bundle, &identity).unwrap();
    }
    let to = |user: &str, device: &str| Recipient {
        user_id: user.into(),
        device_id: device.into(),
    };
    let mut body = MessageBody {
        v: 2,
        message_id: "m".into(),
        thread_id: "t".into(),
        distribution: "@a + @b".into(),
        sender_user: "ua".into(),
        sender_device: "da".into(),
        sent_at: 1,
        text: "hi from wasm".into(),
        ..Default::default()
    };
    let alice_id = alice.identity_public();
    let members = |_: &str, _: &str| Standing::Member;
    fn from_alice(payload: &[u8]) -> Inbound<'_> {
        Inbound {
            payload,
            sender_user: "ua",
            sender_device: "da",
            live: false,
        }
    }
    let out = alice.seal(&body, "da", &[to("ub", "db")], false).unwrap();
    let opened = bob
        .open(&from_alice(&out[0].1), "db", &alice_id, &members)
        .unwrap();
    assert_eq!(opened.body.unwrap(), body);
    body.text = "to the group".into();
    let out = alice
        .seal(&body, "da", &[to("ub", "db"), to("uc", "dc")], true)
        .unwrap();
    assert_eq!(
        bob.open(&from_alice(&out[0].1), "db", &alice_id, &members)
            .unwrap()
            .body
            .unwrap()
            .text,
        "to the group"
    );
    assert_eq!(
        carol
            .open(&from_alice(&out[1].1), "dc", &alice_id, &members)
            .unwrap()
            .body
            .unwrap()
            .text,
        "to the group"
    );
    assert!(
        carol
            .open(&from_alice(&out[1].1), "dc", &alice_id, &members)
            .is_err(),
        "a replay is refused"
    );
}

#[wasm_bindgen_test]
fn a_key_backup_round_trips_in_the_browser() {
    let account = Account::generate("u1", 0).unwrap();
    let text =
        sotto_core::backup::export(account.identity(), "u1", "correct horse battery").unwrap();
    let back = sotto_core::backup::import(&text, "correct horse battery").unwrap();
    assert_eq!(back.identity.public(), account.identity_public());
    assert_eq!(
        sotto_core::backup::import(&text, "wrong passphrase!")
            .err()
            .unwrap()
            .code(),
        "wrong_passphrase"
    );
}

/// The reference implementation's Argon2id test (phc-winner-argon2, t = 2, m = 2^16 KiB,
/// p = 1), through the backup's derivation as the browser runs it.
#[wasm_bindgen_test]
fn argon2id_matches_the_reference_vector_in_the_browser() {
    let kdf = sotto_core::backup::Kdf::Argon2id {
        memory_kib: 1 << 16,
        passes: 2,
        lanes: 1,
    };
    let key = kdf.derive("password", b"somesalt").unwrap();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"
    );
}

#[wasm_bindgen_test]
fn bad_arguments_throw_errors_with_a_code() {
    let emit = js_sys::Function::new_no_args("");
    let options = js_sys::JSON::parse(r#"{"url":"http://127.0.0.1:9"}"#).unwrap();
    let err = ClientCore::new(
        host(),
        JsValue::from_str("jwt"),
        options.clone(),
        emit.clone(),
    )
    .err()
    .unwrap();
    let code = js_sys::Reflect::get(&err, &"code".into()).unwrap();
    assert_eq!(code.as_string().as_deref(), Some("bad_auth"));
    assert!(err.is_instance_of::<js_sys::Error>());
    let auth = js_sys::JSON::parse(r#"{"jwt":"x"}"#).unwrap();
    let err = ClientCore::new(host(), auth, JsValue::from(js_sys::Object::new()), emit)
        .err()
        .unwrap();
    let code = js_sys::Reflect::get(&err, &"code".into()).unwrap();
    assert_eq!(code.as_string().as_deref(), Some("bad_option"));
    assert_eq!(
        ClientError::new("x", "y")
            .to_js()
            .dyn_into::<js_sys::Error>()
            .unwrap()
            .message(),
        "y"
    );
}

#[wasm_bindgen_test]
async fn an_unreachable_server_rejects_start_with_network() {
    let emit = js_sys::Function::new_no_args("");
    let options = js_sys::JSON::parse(r#"{"url":"http://127.0.0.1:9"}"#).unwrap();
    let auth = js_sys::JSON::parse(r#"{"jwt":"x.y.z"}"#).unwrap();
    let client = ClientCore::new(host(), auth, options, emit).unwrap();
    let err = wasm_bindgen_futures::JsFuture::from(client.start())
        .await
        .unwrap_err();
    let code = js_sys::Reflect::get(&err, &"code".into()).unwrap();
    assert_eq!(code.as_string().as_deref(), Some("network"));
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The wasm build uses RustCrypto's compact software backends (`.cargo/config.toml`): they
/// must give the published answers, here in the browser where they run.
#[wasm_bindgen_test]
fn the_compact_sha2_backend_gives_the_fips_180_answers() {
    use sha2::{Digest, Sha256, Sha512};
    assert_eq!(
        Sha256::digest(b"abc").to_vec(),
        unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        Sha256::digest(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").to_vec(),
        unhex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    );
    assert_eq!(
        Sha512::digest(b"abc").to_vec(),
        unhex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
    );
}

#[wasm_bindgen_test]
fn the_compact_aes_backend_gives_the_rfc_9180_answers() {
    use sotto_core::hpke::kem::derive_key_pair;
    use sotto_core::hpke::{RecipientContext, SenderContext};
    let all: serde_json::Value = serde_json::from_str(include_str!(
        "../core/tests/vectors/rfc9180-base-x25519-sha256.json"
    ))
    .unwrap();
    let v = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["aead_id"] == 2)
        .unwrap();
    let field = |k: &str| unhex(v[k].as_str().unwrap());
    let sk_r = derive_key_pair(&field("ikmR")).unwrap();
    let sk_e = derive_key_pair(&field("ikmE")).unwrap();
    let pk_r = x25519_dalek::PublicKey::from(&sk_r);
    let (enc, mut sender) =
        SenderContext::<aes_gcm::Aes256Gcm>::setup_base_with(&pk_r, sk_e, &field("info")).unwrap();
    assert_eq!(enc.to_vec(), field("enc"));
    let mut recipient =
        RecipientContext::<aes_gcm::Aes256Gcm>::setup_base(&enc, &sk_r, &field("info")).unwrap();
    for e in v["encryptions"].as_array().unwrap() {
        let (aad, pt, ct) = (
            unhex(e["aad"].as_str().unwrap()),
            unhex(e["pt"].as_str().unwrap()),
            unhex(e["ct"].as_str().unwrap()),
        );
        assert_eq!(sender.seal(&aad, &pt).unwrap(), ct);
        assert_eq!(recipient.open(&aad, &ct).unwrap(), pt);
    }
}

#[wasm_bindgen_test]
fn attachment_sizes_read_as_people_write_them() {
    use sotto::ui::format_size;
    assert_eq!(format_size(812), "812 B");
    assert_eq!(format_size(14_999), "14 KB");
    assert_eq!(format_size(1_000_000), "1.0 MB");
    assert_eq!(format_size(3_249_999), "3.2 MB");
    assert_eq!(format_size(3_250_000), "3.3 MB");
    assert_eq!(format_size(20 * 1024 * 1024), "21.0 MB");
}

#[wasm_bindgen_test]
fn a_thread_that_follows_a_group_is_named_by_it_and_keeps_the_departed_out() {
    use sotto_core::protocol::Resolved;
    let (carol, gary, sue) = (
        user("carol", "Carol"),
        user("gary", "Gary"),
        user("sue", "Sue"),
    );
    let mut t = Thread::resolved(
        "t".into(),
        "(@Front_Desk) + @carol",
        Resolved {
            users: vec![carol.clone(), gary.clone(), sue.clone()],
            canonical: "@carol + @gary + @sue".into(),
            groups: vec!["front_desk".into()],
        },
    );
    assert_eq!(t.distribution, "@front_desk + @carol");
    // Carol wrote to the desk; Gary is in it through the group and sees whom it is with.
    assert_eq!(t.title("carol"), "Front desk");
    assert_eq!(t.title("gary"), "Carol · Front desk");
    // Gary leaves: the thread follows the group still, without him.
    t.remove_member("gary");
    assert_eq!(t.distribution, "@front_desk + @carol - @gary");
    assert_eq!(t.groups, ["front_desk"]);
    assert_eq!(t.members.len(), 2);
    // A thread of named users stays a list of them.
    let mut plain = Thread::resolved(
        "p".into(),
        "(@gary) + @carol",
        Resolved {
            users: vec![carol, gary],
            canonical: "@carol + @gary".into(),
            groups: vec![],
        },
    );
    assert_eq!(plain.title("carol"), "Gary");
    plain.remove_member("gary");
    assert_eq!(plain.distribution, "@carol");
    assert!(plain.groups.is_empty());
}

/// A member's change as it arrives: `kind` on Bob's message `m1`, from `sender`.
fn change(kind: sotto_core::sealing::Kind, sender: &str, at: i64, text: &str) -> MessageBody {
    MessageBody {
        kind,
        sender_user: sender.into(),
        sent_at: at,
        text: text.into(),
        target: Some("m1".into()),
        ..Default::default()
    }
}

#[wasm_bindgen_test]
fn changes_apply_only_as_their_rules_allow_and_show_as_text() {
    use sotto_core::sealing::Kind;
    let members = vec![user("alice", "Alice"), user("bob", "Bob")];
    let mut m = Message {
        text: "hello @alice".into(),
        ..message("t1", 1)
    };
    m.attachments.push(sotto_core::attachment::AttachmentRef {
        id: "b1".into(),
        name: "plan.pdf".into(),
        mime: "application/pdf".into(),
        size: 3,
        key: vec![7; 32],
    });
    // Alice, a member, cannot put words in Bob's mouth or take his message back.
    assert!(m
        .amend(&change(Kind::Edit, "alice", 5, "I quit"), &members, "alice")
        .is_err());
    assert!(m
        .amend(&change(Kind::Delete, "alice", 5, ""), &members, "alice")
        .is_err());
    assert_eq!(m.text, "hello @alice");
    // Bob's edit finds the new mention; his older edit arriving late changes nothing.
    assert_eq!(
        m.amend(
            &change(Kind::Edit, "bob", 9, "hi @alice <b>!</b>"),
            &members,
            "alice"
        ),
        Ok(true)
    );
    assert!(m
        .amend(&change(Kind::Edit, "bob", 8, "stale"), &members, "alice")
        .is_err());
    assert_eq!(
        (m.text.as_str(), m.edited_at, m.mentioned),
        ("hi @alice <b>!</b>", Some(9), true)
    );
    assert_eq!(
        m.amend(&change(Kind::React, "alice", 10, "👍"), &members, "alice"),
        Ok(true)
    );

    let mut thread = Thread::new("t1".into(), "@alice + @bob".into(), members.clone());
    let reply = Message {
        id: "m2".into(),
        reply_to: Some("m1".into()),
        outgoing: true,
        sender_id: "alice".into(),
        ..message("t1", 2)
    };
    thread.messages = vec![m.clone(), reply];
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    let root = el.shadow_root().unwrap();
    let q = |sel: &str| {
        root.query_selector(sel)
            .unwrap()
            .map(|e| e.text_content().unwrap())
    };
    assert!(
        root.query_selector(".msg b").unwrap().is_none(),
        "edited text is text"
    );
    assert_eq!(q(".msg .edited").as_deref(), Some("edited"));
    assert_eq!(q(".reaction").as_deref(), Some("👍 1"));
    assert_eq!(q(".quote").as_deref(), Some("Bob: hi @alice <b>!</b>"));

    // Deleted for everyone: text, attachments (their keys) and reactions go; the reply's
    // quote follows.
    assert_eq!(
        thread.messages[0].amend(&change(Kind::Delete, "bob", 11, ""), &members, "alice"),
        Ok(true)
    );
    let gone = &thread.messages[0];
    assert!(
        gone.deleted
            && gone.text.is_empty()
            && gone.attachments.is_empty()
            && gone.reactions.is_empty()
    );
    assert!(thread.messages[0]
        .clone()
        .amend(&change(Kind::React, "alice", 12, "👍"), &members, "alice")
        .is_err());
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    assert_eq!(q(".msg.gone .text").as_deref(), Some("Message deleted"));
    assert_eq!(q(".quote").as_deref(), Some("Bob: Message deleted"));
    assert!(q(".reaction").is_none() && q(".attachment").is_none());
}

#[wasm_bindgen_test]
fn the_page_styles_the_main_regions_through_their_parts() {
    let el = host();
    el.set_class_name("parts-test");
    let doc = web_sys::window().unwrap().document().unwrap();
    let style = doc.create_element("style").unwrap();
    style.set_text_content(Some(
        ".parts-test::part(composer) { background-color: rgb(1, 2, 3); }",
    ));
    doc.body().unwrap().append_child(&style).unwrap();
    let _ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let root = el.shadow_root().unwrap();
    for part in ["header", "nav", "thread", "messages", "composer"] {
        let found = root.query_selector(&format!("[part~={part}]")).unwrap();
        assert!(found.is_some(), "no part {part}");
    }
    let composer = root.query_selector("[part~=composer]").unwrap().unwrap();
    let computed = web_sys::window()
        .unwrap()
        .get_computed_style(&composer)
        .unwrap()
        .unwrap();
    assert_eq!(
        computed.get_property_value("background-color").unwrap(),
        "rgb(1, 2, 3)"
    );
}

#[wasm_bindgen_test]
fn the_composer_says_when_a_draft_starts_and_ends_and_the_typing_line_is_text() {
    let el = host();
    let said: Rc<std::cell::RefCell<Vec<bool>>> = Rc::default();
    let heard = said.clone();
    let actions = UiActions {
        typing: Rc::new(move |t| heard.borrow_mut().push(t)),
        ..noop()
    };
    let ui = Ui::mount(&el, &UiConfig::default(), actions).unwrap();
    let root = el.shadow_root().unwrap();
    let composer: web_sys::HtmlTextAreaElement = root
        .query_selector("textarea")
        .unwrap()
        .unwrap()
        .unchecked_into();
    let input = |text: &str| {
        composer.set_value(text);
        let e = web_sys::Event::new("input").unwrap();
        composer.dispatch_event(&e).unwrap();
    };
    input("H");
    input("Hi");
    input("  ");
    assert_eq!(*said.borrow(), [true, true, false], "blank is no draft");
    // A name is shown as text, and the line takes no room when no one types.
    let line = root.query_selector(".typing").unwrap().unwrap();
    ui.set_typing("<img src=x> is typing…");
    assert_eq!(
        line.text_content().as_deref(),
        Some("<img src=x> is typing…")
    );
    assert_eq!(line.child_element_count(), 0);
    ui.set_typing("");
    let shown = web_sys::window()
        .unwrap()
        .get_computed_style(&line)
        .unwrap()
        .unwrap()
        .get_property_value("display")
        .unwrap();
    assert_eq!(shown, "none");
}

#[wasm_bindgen_test]
fn sorting_by_number_keeps_equal_numbers_in_their_order() {
    let mut items = vec![(3, "c"), (1, "a"), (3, "d"), (-5, "z"), (1, "b")];
    sotto::util::sort_by_number(&mut items, |(n, _)| i64::from(*n));
    assert_eq!(items, [(-5, "z"), (1, "a"), (1, "b"), (3, "c"), (3, "d")]);
    // Newest first, as the thread list sorts.
    sotto::util::sort_by_number(&mut items, |(n, _)| i64::from(*n).wrapping_neg());
    assert_eq!(items, [(3, "c"), (3, "d"), (1, "a"), (1, "b"), (-5, "z")]);
}

/// Search over 10,000 messages in two threads: every word, in any case (Unicode included),
/// newest first, one thread only, a limit. The time is printed (BENCHMARKS.md), not asserted.
#[wasm_bindgen_test]
fn search_finds_every_word_in_any_case_newest_first_in_10000_messages() {
    let members = vec![user("alice", "Alice"), user("bob", "Bob")];
    let mut threads: Vec<Thread> = ["t1", "t2"]
        .iter()
        .map(|id| Thread::new((*id).into(), "@alice + @bob".into(), members.clone()))
        .collect();
    for i in 0..10_000i64 {
        let text = match i {
            1234 => "Die GRÖSSE des Pakets ist Über 2 kg".to_owned(),
            7000 => "the parcel is over there".to_owned(),
            9000 => "Parcel collected".to_owned(),
            _ => format!("message number {i} about nothing in particular"),
        };
        let t = &mut threads[(i % 2) as usize];
        t.messages.push(Message {
            id: format!("m{i}"),
            thread_id: t.id.clone(),
            sender_id: "bob".into(),
            sender_name: "Bob".into(),
            sent_at: i,
            text,
            status: Status::Received,
            ..Default::default()
        });
    }
    let started = js_sys::Date::now();
    let found = sotto::search::find(&threads, "PARCEL", None, 50);
    let took = js_sys::Date::now() - started;
    web_sys::console::log_1(&format!("search over 10,000 messages: {took:.1} ms").into());
    let ids = |found: Vec<(&Thread, &Message)>| -> Vec<String> {
        found.into_iter().map(|(_, m)| m.id.clone()).collect()
    };
    assert_eq!(ids(found), ["m9000", "m7000"], "newest first");
    assert_eq!(
        ids(sotto::search::find(&threads, "over  parcel", None, 50)),
        ["m7000"]
    );
    assert_eq!(
        ids(sotto::search::find(&threads, "über grösse", None, 50)),
        ["m1234"]
    );
    assert_eq!(
        ids(sotto::search::find(&threads, "parcel", Some("t1"), 1)),
        ["m9000"]
    );
    // Both are in t1 (even numbers): none in t2.
    assert!(sotto::search::find(&threads, "parcel", Some("t2"), 50).is_empty());
    assert_eq!(
        sotto::search::find(&threads, "message number", None, 500).len(),
        500
    );
    assert!(sotto::search::find(&threads, "   ", None, 50).is_empty());
}

/// Changes held for a message not here yet apply when it comes only if they were made in
/// its thread by a member (a change held for a thread still unknown was checked against
/// no members); a long edit is not held; what applies is forgotten, the rest kept.
#[wasm_bindgen_test]
fn held_changes_apply_only_from_the_messages_thread_and_its_members() {
    use sotto::model::{apply_held, hold};
    use sotto_core::sealing::Kind;
    let members = vec![user("alice", "Alice"), user("bob", "Bob")];
    let change = |thread: &str, from: &str, kind: Kind, target: &str, text: &str| MessageBody {
        v: 2,
        message_id: format!("c-{thread}-{from}-{text}"),
        thread_id: thread.into(),
        sender_user: from.into(),
        sender_device: "d".into(),
        sent_at: 10,
        text: text.into(),
        kind,
        target: Some(target.into()),
        ..Default::default()
    };
    let mut held = Vec::new();
    hold(
        &mut held,
        &change("elsewhere", "bob", Kind::React, "m1", "😂"),
    );
    hold(&mut held, &change("t1", "mallory", Kind::React, "m1", "👎"));
    hold(&mut held, &change("t1", "bob", Kind::React, "m1", "👍"));
    hold(
        &mut held,
        &change("t1", "alice", Kind::Edit, "m1", &"x".repeat(8 * 1024)),
    );
    hold(&mut held, &change("t1", "alice", Kind::React, "m2", "❤️"));
    assert_eq!(held.len(), 4, "the long edit is not held");
    let mut message = Message {
        id: "m1".into(),
        thread_id: "t1".into(),
        sender_id: "alice".into(),
        sender_name: "Alice".into(),
        sent_at: 5,
        text: "hello".into(),
        status: Status::Received,
        ..Default::default()
    };
    apply_held(&mut held, &mut message, &members, "alice");
    let reactions: Vec<(&str, &str)> = message
        .reactions
        .iter()
        .map(|r| (r.user_id.as_str(), r.emoji.as_str()))
        .collect();
    assert_eq!(reactions, [("bob", "👍")]);
    assert_eq!(message.text, "hello");
    assert_eq!(held.len(), 1, "only the change for another message is left");
    // A flood of changes for messages that never come keeps the newest 64.
    for i in 0..100 {
        hold(
            &mut held,
            &change("t1", "bob", Kind::React, &format!("x{i}"), "👍"),
        );
    }
    assert_eq!(held.len(), sotto::model::MAX_HELD_CHANGES);
    assert!(held.last().unwrap().contains("x99") && !held.iter().any(|h| h.contains("\"x35\"")));
}

/// The thread list shows when each thread last spoke: the time today, the day ("Dec 4")
/// before that — yesterday evening included, though less than a day ago.
#[wasm_bindgen_test]
fn the_thread_list_times_today_and_dates_older_threads() {
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let now = js_sys::Date::now() as i64;
    let midnight = js_sys::Date::new(&JsValue::from_f64(now as f64));
    midnight.set_hours(0);
    midnight.set_minutes(0);
    midnight.set_seconds(0);
    midnight.set_milliseconds(0);
    let midnight = midnight.get_time() as i64;
    let three_days_ago = now - 3 * 86_400_000;
    let today = midnight + (now - midnight) / 2;
    let last_night = midnight - 1;
    let thread = |id: &str, sent_at: i64| {
        let mut t = Thread::new(id.into(), "@bob".into(), vec![user("bob", "Bob")]);
        t.messages = vec![Message {
            sent_at,
            ..message(id, 1)
        }];
        t
    };
    let threads = [
        thread("recent", today),
        thread("yesterday", last_night),
        thread("old", three_days_ago),
    ];
    ui.render_threads(&threads, None, "alice", None).unwrap();
    let root = el.shadow_root().unwrap();
    let shown = |id: &str| {
        root.query_selector(&format!("[data-thread={id}] time"))
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap()
    };
    // As the reader's locale writes them.
    let formatted = |ms: i64, options: [(&str, &str); 2]| -> String {
        let o = js_sys::Object::new();
        for (k, v) in options {
            js_sys::Reflect::set(&o, &k.into(), &v.into()).unwrap();
        }
        js_sys::Date::new(&JsValue::from_f64(ms as f64))
            .to_locale_string("default", &o)
            .into()
    };
    let day = |ms| formatted(ms, [("month", "short"), ("day", "numeric")]);
    assert_eq!(shown("old"), day(three_days_ago));
    assert_eq!(shown("yesterday"), day(last_night));
    let time = formatted(today, [("hour", "2-digit"), ("minute", "2-digit")]);
    assert_eq!(shown("recent"), time);
}

/// What a page and a visitor put on screen stays text and says who is who: the site's
/// `brand` is set as text, and a visitor who names itself like another visitor's tag
/// still shows its own tag first.
#[wasm_bindgen_test]
fn a_brand_is_text_and_a_visitor_cannot_pose_as_another() {
    let el = host();
    let config = UiConfig {
        brand: Some("<b>Acme</b> Support".into()),
        ..UiConfig::default()
    };
    let _ui = Ui::mount(&el, &config, noop()).unwrap();
    let root = el.shadow_root().unwrap();
    let brand = root.query_selector(".brand").unwrap().unwrap();
    assert_eq!(brand.text_content().unwrap(), "<b>Acme</b> Support");
    assert!(root.query_selector(".brand b").unwrap().is_none());

    let poser = User {
        tag: "visitor.9f00aa".into(),
        name: Some("visitor.4ac166 (Vera)".into()),
        ephemeral: true,
        ..user("v2", "")
    };
    assert_eq!(
        display_name(&poser),
        "visitor.9f00aa (visitor.4ac166 (Vera))"
    );
}

/// One's own message says who read it: "Read" between two, and in a group who did —
/// one by name, several as a count, then everyone; a read mark from someone no longer a
/// member does not count.
#[wasm_bindgen_test]
fn a_group_message_says_who_read_it() {
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let members = vec![
        user("alice", "Alice"),
        user("bob", "Bob"),
        user("carol", "Carol"),
        user("dan", "Dan"),
    ];
    let mut thread = Thread::new("t1".into(), "@bob + @carol + @dan".into(), members);
    thread.messages = vec![Message {
        outgoing: true,
        sender_id: "alice".into(),
        status: Status::Delivered,
        sent_at: 100,
        ..message("t1", 1)
    }];
    let root = el.shadow_root().unwrap();
    let state = |thread: &Thread| {
        ui.render_thread(Some(thread), "alice", &[], &[], &[])
            .unwrap();
        root.query_selector(".msg .state")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap()
    };
    assert_eq!(state(&thread), "Delivered");
    let drawn = root.query_selector(".msg").unwrap().unwrap();
    thread.read_marks.insert("eve".into(), 100); // not a member
    thread.read_marks.insert("alice".into(), 100); // oneself
    thread.read_marks.insert("bob".into(), 99); // before the message
    assert_eq!(state(&thread), "Delivered");
    thread.read_marks.insert("bob".into(), 100);
    assert_eq!(state(&thread), "Read by Bob");
    thread.read_marks.insert("carol".into(), 150);
    assert_eq!(state(&thread), "Read by 2 of 3");
    thread.read_marks.insert("dan".into(), 150);
    assert_eq!(state(&thread), "Read by everyone");
    let now = root.query_selector(".msg").unwrap().unwrap();
    assert!(
        drawn.is_same_node(Some(&now)),
        "its words changed in place, nothing drawn again"
    );
    // Between two, a read message is just "Read".
    thread.members.truncate(2);
    assert_eq!(state(&thread), "Read");
}

/// A thread of 2,000 messages opens with its newest page drawn; scrolling to the top draws
/// the page before it and keeps the reader on the message they were reading; a quote of a
/// message far back draws back to it and shows it.
#[wasm_bindgen_test]
fn a_long_thread_is_drawn_a_page_at_a_time() {
    let el = host();
    el.set_attribute("style", "display: block; height: 400px")
        .unwrap();
    // The client draws again when asked: here, with the test's thread.
    type Slot = Rc<std::cell::RefCell<Option<(Rc<Ui>, Thread)>>>;
    let slot: Slot = Default::default();
    let redraw = {
        let slot = slot.clone();
        Rc::new(move || {
            if let Some((ui, t)) = slot.borrow().as_ref() {
                ui.render_thread(Some(t), "alice", &[], &[], &[]).unwrap();
            }
        })
    };
    let ui = Rc::new(Ui::mount(&el, &UiConfig::default(), UiActions { redraw, ..noop() }).unwrap());
    let mut thread = Thread::new(
        "t1".into(),
        "@bob".into(),
        vec![user("alice", "Alice"), user("bob", "Bob")],
    );
    thread.messages = (1..=2000).map(|n| message("t1", n)).collect();
    // The newest replies to the oldest.
    thread.messages[1999].reply_to = Some("m1".into());
    *slot.borrow_mut() = Some((ui.clone(), thread.clone()));
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    let root = el.shadow_root().unwrap();
    let list = root.query_selector(".messages").unwrap().unwrap();
    let drawn = || root.query_selector_all(".msg").unwrap().length();
    let first = || {
        root.query_selector(".msg")
            .unwrap()
            .unwrap()
            .get_attribute("data-message")
            .unwrap()
    };
    assert_eq!(drawn(), 100);
    assert_eq!(first(), "m1901");
    assert!(list.scroll_top() > 0, "opened at the newest message");

    // Scrolled to the top: the page before, with m1901 where it was on screen.
    let on_screen = |id: &str| {
        let top = |e: web_sys::Element| e.dyn_into::<web_sys::HtmlElement>().unwrap().offset_top();
        let at = root
            .query_selector(&format!("[data-message={id}]"))
            .unwrap()
            .unwrap();
        top(at) - top(list.clone()) - list.scroll_top()
    };
    list.set_scroll_top(0);
    let was = on_screen("m1901");
    list.dispatch_event(&web_sys::Event::new("scroll").unwrap())
        .unwrap();
    assert_eq!(drawn(), 200);
    assert_eq!(first(), "m1801");
    let now = on_screen("m1901");
    assert!(
        (now - was).abs() < 5,
        "the reader stays on what they read ({was} px, now {now})"
    );

    // The quote of m1 on the newest message: drawn back to m1, and shown.
    let quote: web_sys::HtmlElement = root
        .query_selector(".quote")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    quote.click();
    assert_eq!(first(), "m1");
    let m1 = root.query_selector("[data-message=m1]").unwrap().unwrap();
    assert_eq!(root.active_element(), Some(m1));
    // A new message is one more, not a page again.
    thread.messages.push(message("t1", 2001));
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    assert_eq!(drawn(), 2001);

    // Messages before the window disappear (expired): what is left is drawn, not nothing.
    let other = Thread::new("t2".into(), "@bob".into(), vec![user("bob", "Bob")]);
    ui.render_thread(Some(&other), "alice", &[], &[], &[])
        .unwrap();
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    assert_eq!(first(), "m1902", "reopened at its newest page");
    thread.messages.drain(..1950);
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    assert_eq!((drawn(), first()), (51, "m1951".to_owned()));
}

/// A visitor is told of a changed key without being sent to a Verify it does not have,
/// and finds itself in the member line by its name, as in the header, not by its tag.
#[wasm_bindgen_test]
fn a_visitor_sees_no_verify_note_and_its_own_name() {
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let vera = User {
        ephemeral: true,
        ..user("visitor.4ac166", "Vera")
    };
    let thread = Thread::new(
        "t1".into(),
        "@support".into(),
        vec![vera, user("bob", "Bob")],
    );
    let root = el.shadow_root().unwrap();
    let text = |sel: &str| {
        root.query_selector(sel)
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap()
    };
    ui.render_thread(Some(&thread), "visitor.4ac166", &["bob".into()], &[], &[])
        .unwrap();
    assert_eq!(text(".note"), "The security key of Bob changed.Verify✕");
    ui.set_user("Vera", true);
    ui.render_thread(Some(&thread), "visitor.4ac166", &["bob".into()], &[], &[])
        .unwrap();
    assert_eq!(text(".note"), "The security key of Bob changed.✕");
    assert_eq!(text(".members"), "Bob, Vera");
}

/// A member's name offered after an @ is text: a name written as HTML makes no element.
#[wasm_bindgen_test]
fn a_name_in_the_mention_list_is_text() {
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let evil = "<img src=x onerror=\"window.pwned=1\">";
    let thread = Thread::new(
        "t1".into(),
        "@mallory".into(),
        vec![user("alice", "Alice"), user("mallory", evil)],
    );
    ui.render_thread(Some(&thread), "alice", &[], &[], &[])
        .unwrap();
    let root = el.shadow_root().unwrap();
    let composer: web_sys::HtmlTextAreaElement = root
        .query_selector("textarea")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    composer.set_value("hi @m");
    composer
        .dispatch_event(&web_sys::Event::new("input").unwrap())
        .unwrap();
    let option = root.query_selector(".suggest li").unwrap().unwrap();
    assert_eq!(option.text_content().unwrap(), format!("{evil}@mallory"));
    assert!(root.query_selector(".suggest img").unwrap().is_none());
}

/// A changed key and a new device are quiet notes at the end of the timeline: one per
/// person, each dismissed by its ✕ (which says whose), a key's with Verify. A
/// redraw that changes nothing leaves them as they are, so they are announced once.
#[wasm_bindgen_test]
fn key_and_device_notes_are_dismissed_one_by_one() {
    let el = host();
    let dismissed: Rc<RefCell<Vec<(String, bool)>>> = Rc::default();
    let verified = Rc::new(RefCell::new(0));
    let (d, v) = (dismissed.clone(), verified.clone());
    let actions = UiActions {
        dismiss: Rc::new(move |user, key| d.borrow_mut().push((user, key))),
        verify: Rc::new(move || *v.borrow_mut() += 1),
        ..noop()
    };
    let ui = Ui::mount(&el, &UiConfig::default(), actions).unwrap();
    let thread = Thread::new(
        "t1".into(),
        "@alice + @bob + @carol".into(),
        vec![
            user("alice", "Alice"),
            user("bob", "<b>Bob</b>"),
            user("carol", "Carol"),
        ],
    );
    let draw = |changed: &[String], devices: &[String]| {
        ui.render_thread(Some(&thread), "alice", changed, devices, &[])
            .unwrap()
    };
    let root = el.shadow_root().unwrap();
    let notes = || {
        let all = root.query_selector_all(".note").unwrap();
        (0..all.length())
            .map(|i| all.item(i).unwrap().text_content().unwrap())
            .collect::<Vec<_>>()
    };
    // No one changed: no notes, and nothing in the header either.
    draw(&[], &[]);
    assert!(notes().is_empty());
    // One note a person: a changed key says more than the new device that came with it.
    draw(
        &["bob".into(), "dan".into()],
        &["carol".into(), "bob".into()],
    );
    assert_eq!(
        notes(),
        [
            "The security key of <b>Bob</b> changed.Verify✕",
            "New device for Carol.✕"
        ]
    );
    assert!(
        root.query_selector(".note b").unwrap().is_none(),
        "a name is text"
    );
    assert!(root
        .query_selector(".thread-header .warn")
        .unwrap()
        .unwrap()
        .has_attribute("hidden"));
    let first = root.query_selector(".note").unwrap().unwrap();
    draw(&["bob".into()], &["carol".into()]);
    assert!(
        root.query_selector(".note").unwrap().unwrap() == first,
        "an unchanged note is not drawn again"
    );
    let click = |selector: &str| {
        root.query_selector(selector)
            .unwrap()
            .unwrap()
            .unchecked_into::<web_sys::HtmlElement>()
            .click()
    };
    click(".note button");
    assert_eq!(*verified.borrow(), 1);
    click(".note:last-child button[aria-label='Dismiss this note']");
    click(".note:first-child button[aria-label='Dismiss this note']");
    assert_eq!(
        *dismissed.borrow(),
        [("carol".to_owned(), false), ("bob".to_owned(), true)]
    );
    // The client forgets them; the next drawing has none.
    draw(&[], &[]);
    assert!(notes().is_empty());
}

/// In a group, a received message that starts a sender's group shows their initials in a
/// tone that is theirs in every thread; one's own and a group's later messages do not, and
/// a thread of two shows none.
#[wasm_bindgen_test]
fn a_group_shows_who_wrote_by_initials() {
    let el = host();
    let ui = Ui::mount(&el, &UiConfig::default(), noop()).unwrap();
    let members = vec![
        user("alice", "Alice"),
        user("bob", "Bob  van  Brown"),
        user("carol", "<i>carol</i>"),
        User {
            ephemeral: true,
            ..user("visitor.4ac1", "Vera")
        },
    ];
    let mut group = Thread::new("t1".into(), "@a + @b + @c".into(), members.clone());
    let said = |n: usize, sender: &str| Message {
        sender_id: sender.into(),
        outgoing: sender == "alice",
        sent_at: 1_000 * n as i64,
        ..message("t1", n)
    };
    group.messages = vec![
        said(1, "bob"),
        said(2, "bob"),
        said(3, "carol"),
        said(4, "alice"),
        said(5, "visitor.4ac1"),
    ];
    ui.render_thread(Some(&group), "alice", &[], &[], &[])
        .unwrap();
    let root = el.shadow_root().unwrap();
    let marks = || {
        let all = root.query_selector_all(".msg").unwrap();
        (0..all.length())
            .map(|i| {
                let m: web_sys::Element = all.item(i).unwrap().unchecked_into();
                (
                    m.get_attribute("data-initials"),
                    m.get_attribute("data-tone"),
                )
            })
            .collect::<Vec<_>>()
    };
    let list = root.query_selector(".messages").unwrap().unwrap();
    assert!(list.has_attribute("data-group"));
    let drawn = marks();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(drawn[0].0, some("BB"));
    assert_eq!(drawn[1], (None, None), "a group's later message");
    assert_eq!(drawn[2].0, some("<"), "initials are text, never markup");
    assert_eq!(drawn[3], (None, None), "one's own");
    assert_eq!(
        drawn[4].0,
        some("vV"),
        "a visitor by tag and name, not by a bracket"
    );
    assert!(root.query_selector(".msg i").unwrap().is_none());
    // Drawn in each one's tone: Bob's is the fourth (0x6b3fa0), Carol's the sixth.
    let window = web_sys::window().unwrap();
    let tone = |n: u32| {
        let m = root.query_selector_all(".msg").unwrap().item(n).unwrap();
        window
            .get_computed_style_with_pseudo_elt(&m.unchecked_into(), "::before")
            .unwrap()
            .unwrap()
            .get_property_value("background-color")
            .unwrap()
    };
    assert_eq!(tone(0), "rgb(107, 63, 160)");
    assert_eq!(tone(2), "rgb(0, 112, 122)");
    // Bob's tone is his in another thread too; here, with two members, nothing is drawn.
    let mut pair = Thread::new("t2".into(), "@b".into(), members[..2].to_vec());
    pair.messages = vec![Message {
        thread_id: "t2".into(),
        ..said(6, "bob")
    }];
    ui.render_thread(Some(&pair), "alice", &[], &[], &[])
        .unwrap();
    assert!(!list.has_attribute("data-group"));
    assert_eq!(marks()[0].1, drawn[0].1);
    let before = web_sys::window()
        .unwrap()
        .get_computed_style(&root.query_selector(".msg").unwrap().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        before.get_property_value("margin-inline-start").unwrap(),
        "0px"
    );
}
