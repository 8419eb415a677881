//! Small helpers shared by the client's modules.

use crate::error::{ClientError, ClientResult};

/// A random 128-bit identifier in hex, for messages and threads.
pub fn random_id() -> ClientResult<String> {
    let mut bytes = [0u8; 16];
    sotto_core::error::random_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Unix milliseconds by this browser's clock.
pub fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

/// Whether the page is on screen (not a background tab or a minimised window): only then
/// has the person seen what the open thread shows.
pub fn page_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_none_or(|d| !d.hidden())
}

pub fn window() -> ClientResult<web_sys::Window> {
    web_sys::window().ok_or_else(|| ClientError::new("no_window", "Sotto runs in a browser window"))
}

/// Runs `f` once after `ms` milliseconds; returns the timer's handle for [`clear_timeout`].
pub fn set_timeout(ms: f64, f: impl FnOnce() + 'static) -> Option<i32> {
    // A one-shot function that JavaScript frees after its call.
    schedule(ms, wasm_bindgen::closure::Closure::once_into_js(f))
}

/// The part of [`set_timeout`] that is the same for every callback, compiled once.
#[inline(never)]
fn schedule(ms: f64, callback: wasm_bindgen::JsValue) -> Option<i32> {
    use wasm_bindgen::JsCast;
    web_sys::window()?
        .set_timeout_with_callback_and_timeout_and_arguments_0(
            callback.unchecked_ref(),
            ms.clamp(0.0, 2_147_483_647.0) as i32,
        )
        .ok()
}

pub fn clear_timeout(handle: Option<i32>) {
    if let (Some(h), Some(w)) = (handle, web_sys::window()) {
        w.clear_timeout_with_handle(h);
    }
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: f64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(ms, move || {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        });
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Exponential backoff with jitter: `base` doubling per attempt up to `max`, each delay
/// scaled by 50–100 % (`random` is uniform in [0, 1)), so that many clients retrying after
/// the same failure spread out instead of arriving together.
pub fn backoff_ms(attempt: u32, base: f64, max: f64, random: f64) -> f64 {
    let full = (base * 2f64.powi(attempt.min(20) as i32)).min(max);
    full * (0.5 + 0.5 * random)
}

/// Sorts `items` by a number, keeping items with equal numbers in their order. Every caller
/// shares one sort (of `(number, index)` pairs): each `sort_by_key` compiles a sort of its
/// own, kilobytes of wasm apiece.
pub fn sort_by_number<T>(items: &mut Vec<T>, key: impl Fn(&T) -> i64) {
    let mut order: Vec<(i64, usize)> = items.iter().map(key).zip(0..).collect();
    order.sort_unstable();
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(order.into_iter().filter_map(|(_, i)| slots[i].take()));
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(backoff_ms(0, 500.0, 30_000.0, 0.0), 250.0);
        assert_eq!(backoff_ms(0, 500.0, 30_000.0, 1.0), 500.0);
        assert_eq!(backoff_ms(3, 500.0, 30_000.0, 1.0), 4000.0);
        assert_eq!(backoff_ms(30, 500.0, 30_000.0, 1.0), 30_000.0);
        assert!(backoff_ms(30, 500.0, 30_000.0, 0.0) >= 15_000.0);
    }
}
