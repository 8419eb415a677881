//! The client's own tests, run by wasm-bindgen-test in headless Chromium:
//! `cargo test --target wasm32-unknown-unknown --tests -p sotto`.
#![cfg(target_arch = "wasm32")]

use sotto::error::ClientError;
use sotto::keystore::{self, StoredDevice};
use sotto::model::{Message, Status, Thread};
use sotto::ui::{Ui, UiActions, UiConfig};
use sotto::ClientCore;
use sotto_core::keys::DeviceKeys;
use sotto_core::protocol::User;
use sotto_core::sealing::{self, MessageBody, Route};
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
        send: Rc::new(|_| {}),
        open: Rc::new(|_| {}),
        new_thread: Rc::new(|_| {}),
        attach: Rc::new(|_| {}),
        download: Rc::new(|_, _| {}),
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
    }];
    ui.render_threads(std::slice::from_ref(&thread), None, "alice")
        .unwrap();
    ui.render_thread(Some(&thread), "alice").unwrap();
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
async fn device_keys_persist_in_indexeddb() {
    let key = format!("test|org|{}", js_sys::Math::random());
    assert!(keystore::load(&key).await.unwrap().is_none());
    let keys = DeviceKeys::generate().unwrap();
    let public = keys.public_key();
    keystore::save(
        &key,
        &StoredDevice {
            device_id: Some("d_1".into()),
            keys,
        },
    )
    .await
    .unwrap();
    let back = keystore::load(&key).await.unwrap().expect("stored");
    assert_eq!(back.keys.public_key(), public);
    assert_eq!(back.device_id.as_deref(), Some("d_1"));
}

#[wasm_bindgen_test]
fn sealing_works_in_the_browser() {
    let bob = DeviceKeys::generate().unwrap();
    let route = Route {
        sender_user: "ua",
        sender_device: "da",
        recipient_device: "db",
    };
    let body = MessageBody {
        v: 1,
        message_id: "m".into(),
        thread_id: "t".into(),
        distribution: "@a + @b".into(),
        sender_user: "ua".into(),
        sender_device: "da".into(),
        sent_at: 1,
        text: "hi from wasm".into(),
        ..Default::default()
    };
    let pk = sotto_core::keys::parse_public_key(&bob.public_key()).unwrap();
    let payload = sealing::seal(&body, &pk, &route).unwrap();
    assert_eq!(sealing::open(&payload, &bob, &route).unwrap(), body);
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
