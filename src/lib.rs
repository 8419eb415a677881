//! `sotto`: the browser client of Sotto, compiled to WebAssembly.
//!
//! A page creates `new sotto.Client(element, auth, options)` (a thin JavaScript class in
//! `js/client.js` that loads this module and forwards to [`ClientCore`]). The client signs in,
//! keeps this browser's device key in IndexedDB, seals every message for every recipient
//! device with `sotto-core`, and draws its UI inside a shadow root of the host element.
//!
//! Layout: [`client`] (the exported API and its flows), [`ui`] (the DOM), [`socket`] (the
//! delivery WebSocket with reconnects), [`http`] (the JSON API), [`keystore`] and [`history`] (IndexedDB, via [`idb`]),
//! [`model`] (threads and messages), [`options`] (auth and options from JavaScript),
//! [`error`] (errors with a stable `code`).

pub mod client;
pub mod completion;
pub mod dialog;
pub mod error;
pub mod history;
pub mod http;
pub mod idb;
pub mod keystore;
pub mod model;
pub mod options;
pub mod search;
pub mod socket;
pub mod tab_lock;
pub mod ui;
pub mod util;

pub use client::ClientCore;

/// Talc instead of the standard library's dlmalloc: a few kilobytes less wasm. The client
/// is single-threaded (no `atomics`), which this allocator's cell relies on.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
