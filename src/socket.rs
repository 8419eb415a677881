//! The delivery WebSocket, kept open: it authenticates as it opens (the session token and
//! device offered as WebSocket protocols, checked before the server upgrades), hands every
//! server frame to the client, and after the server goes away reconnects with exponential
//! backoff and jitter (0.5 s doubling to 30 s, each delay scaled by a random 50–100 %), so
//! many clients of a restarted server do not all return at once.

use crate::util::{backoff_ms, clear_timeout, set_timeout};
use sotto_core::protocol::{ClientFrame, ServerFrame};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, WebSocket};

const BASE_DELAY_MS: f64 = 500.0;
const MAX_DELAY_MS: f64 = 30_000.0;

type FrameHandler = Rc<dyn Fn(ServerFrame)>;
type StatusHandler = Rc<dyn Fn(bool)>;

struct State {
    url: String,
    /// `sotto`, `bearer.<token>`, `device.<id>`: see the server's `delivery/socket.rs`.
    protocols: js_sys::Array,
    ws: Option<WebSocket>,
    attempt: u32,
    timer: Option<i32>,
    stopped: bool,
    on_frame: FrameHandler,
    on_status: StatusHandler,
    // Kept alive while the socket that calls them is open.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// A self-healing delivery connection; [`Delivery::stop`] ends it for good.
pub struct Delivery(Rc<RefCell<State>>);

impl Delivery {
    /// `url` is the server's base URL (`http…`); the socket goes to `ws…/v1/ws`.
    pub fn start(
        url: &str,
        token: &str,
        device_id: &str,
        on_frame: FrameHandler,
        on_status: StatusHandler,
    ) -> Delivery {
        let ws_url = format!("{}/v1/ws", url.replacen("http", "ws", 1));
        let state = Rc::new(RefCell::new(State {
            url: ws_url,
            protocols: [
                "sotto".to_owned(),
                format!("bearer.{token}"),
                format!("device.{device_id}"),
            ]
            .iter()
            .map(|p| JsValue::from_str(p))
            .collect(),
            ws: None,
            attempt: 0,
            timer: None,
            stopped: false,
            on_frame,
            on_status,
            handlers: Vec::new(),
        }));
        open(&state);
        Delivery(state)
    }

    pub fn send(&self, frame: &ClientFrame) {
        let state = self.0.borrow();
        if let (Some(ws), Ok(text)) = (&state.ws, serde_json::to_string(frame)) {
            if ws.ready_state() == WebSocket::OPEN {
                let _ = ws.send_with_str(&text);
            }
        }
    }

    pub fn is_open(&self) -> bool {
        self.0
            .borrow()
            .ws
            .as_ref()
            .is_some_and(|ws| ws.ready_state() == WebSocket::OPEN)
    }

    /// Closes the connection and stops reconnecting.
    pub fn stop(&self) {
        let mut state = self.0.borrow_mut();
        state.stopped = true;
        clear_timeout(state.timer.take());
        if let Some(ws) = state.ws.take() {
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
        // Never called from inside one of these handlers (the client defers its stops), so
        // they can be freed here.
        state.handlers.clear();
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.stop();
    }
}

fn open(state: &Rc<RefCell<State>>) {
    let (url, protocols) = {
        let s = state.borrow();
        (s.url.clone(), s.protocols.clone())
    };
    let ws = match WebSocket::new_with_str_sequence(&url, &protocols) {
        Ok(ws) => ws,
        Err(_) => return schedule_reconnect(state),
    };
    let weak = Rc::downgrade(state);
    let on_message = Closure::<dyn FnMut(JsValue)>::new({
        let weak = weak.clone();
        move |e: JsValue| {
            let Some(s) = weak.upgrade() else { return };
            let Some(text) = e.unchecked_into::<MessageEvent>().data().as_string() else {
                return;
            };
            let Ok(frame) = ServerFrame::from_json(&text) else {
                return;
            };
            let (on_frame, on_status) = {
                let mut st = s.borrow_mut();
                if matches!(frame, ServerFrame::Ready { .. }) {
                    st.attempt = 0;
                }
                (st.on_frame.clone(), st.on_status.clone())
            };
            if matches!(frame, ServerFrame::Ready { .. }) {
                on_status(true);
            }
            on_frame(frame);
        }
    });
    let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_| {
        if let Some(s) = weak.upgrade() {
            let on_status = s.borrow().on_status.clone();
            s.borrow_mut().ws = None;
            on_status(false);
            schedule_reconnect(&s);
        }
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let mut s = state.borrow_mut();
    s.handlers = vec![on_message, on_close];
    s.ws = Some(ws);
}

fn schedule_reconnect(state: &Rc<RefCell<State>>) {
    let mut s = state.borrow_mut();
    if s.stopped || s.timer.is_some() {
        return;
    }
    let delay = backoff_ms(
        s.attempt,
        BASE_DELAY_MS,
        MAX_DELAY_MS,
        js_sys::Math::random(),
    );
    s.attempt += 1;
    let weak: Weak<RefCell<State>> = Rc::downgrade(state);
    s.timer = set_timeout(delay, move || {
        if let Some(s) = weak.upgrade() {
            s.borrow_mut().timer = None;
            if !s.borrow().stopped {
                open(&s);
            }
        }
    });
}
