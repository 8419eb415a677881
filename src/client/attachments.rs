//! Attachments on the client: each file is encrypted under its own key
//! (`sotto_core::attachment`) and uploaded as an opaque blob before the message that
//! carries the keys is sealed; opening one fetches the blob and decrypts it here.

use super::Inner;
use crate::error::{js_failure, ClientError, ClientResult};
use js_sys::{Array, Reflect, Uint8Array};
use sotto_core::attachment::{self, AttachmentRef};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Files one message may carry, and the size of each.
pub const MAX_FILES: usize = 10;
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024 - 64;

/// A file to send.
pub struct OutgoingFile {
    pub name: String,
    pub mime: String,
    pub bytes: Vec<u8>,
}

/// `[{name, type, bytes: Uint8Array}]` from JavaScript (the JS shell reads Files into this).
pub fn files_from_js(value: &JsValue) -> ClientResult<Vec<OutgoingFile>> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let bad = || {
        ClientError::new(
            "bad_attachment",
            "attachments must be Files or {name, type, bytes}",
        )
    };
    let list: Array = value.clone().dyn_into().map_err(|_| bad())?;
    if list.length() as usize > MAX_FILES {
        return Err(ClientError::new(
            "too_many_attachments",
            format!("at most {MAX_FILES} attachments per message"),
        ));
    }
    list.iter()
        .map(|item| {
            let get = |k: &str| Reflect::get(&item, &k.into()).unwrap_or(JsValue::UNDEFINED);
            let bytes: Uint8Array = get("bytes").dyn_into().map_err(|_| bad())?;
            if bytes.length() as usize > MAX_FILE_BYTES {
                return Err(ClientError::new(
                    "attachment_too_large",
                    "an attachment is limited to 10 MB",
                ));
            }
            Ok(OutgoingFile {
                name: get("name")
                    .as_string()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "file".into()),
                mime: get("type")
                    .as_string()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "application/octet-stream".into()),
                bytes: bytes.to_vec(),
            })
        })
        .collect()
}

/// Reads the files a person picked in the UI.
pub async fn read_picked(files: Vec<web_sys::File>) -> ClientResult<Vec<OutgoingFile>> {
    let mut out = Vec::new();
    for f in files {
        let buffer = JsFuture::from(f.array_buffer())
            .await
            .map_err(|e| js_failure("bad_attachment", e))?;
        let bytes = Uint8Array::new(&buffer);
        if bytes.length() as usize > MAX_FILE_BYTES {
            return Err(ClientError::new(
                "attachment_too_large",
                "an attachment is limited to 10 MB",
            ));
        }
        out.push(OutgoingFile {
            name: f.name(),
            mime: f.type_(),
            bytes: bytes.to_vec(),
        });
    }
    Ok(out)
}

impl Inner {
    /// Encrypts and uploads `files`; returns what the message says about them.
    pub(super) async fn upload_files(
        self: &Rc<Self>,
        files: Vec<OutgoingFile>,
    ) -> ClientResult<Vec<AttachmentRef>> {
        let (token, _) = self.session()?;
        let mut refs = Vec::with_capacity(files.len());
        for f in files {
            let (key, blob) = attachment::encrypt(&f.bytes)?;
            let up = self.post_blob(&token, &blob).await?;
            refs.push(AttachmentRef {
                id: up.id,
                name: f.name,
                mime: f.mime,
                size: f.bytes.len() as u64,
                key: key.to_vec(),
            });
        }
        Ok(refs)
    }

    /// Fetches and decrypts attachment `index` of message `message_id`.
    pub(super) async fn attachment_get(
        self: &Rc<Self>,
        message_id: &str,
        index: usize,
    ) -> ClientResult<(AttachmentRef, Vec<u8>)> {
        let (token, _) = self.session()?;
        let found = self
            .state
            .borrow()
            .threads
            .iter()
            .flat_map(|t| t.messages.iter())
            .find(|m| m.id == message_id)
            .and_then(|m| m.attachments.get(index).cloned());
        let a = found.ok_or_else(|| {
            ClientError::new("unknown_attachment", "no such attachment on this device")
        })?;
        let blob = self.get_blob(&token, &a.id).await?;
        let bytes = attachment::decrypt(&a.key, &blob)?;
        Ok((a, bytes))
    }

    /// Saves an attachment the person clicked, as a download.
    pub(super) async fn download(
        self: &Rc<Self>,
        message_id: &str,
        index: usize,
    ) -> ClientResult<()> {
        // In a view, the page API fetches it through the tab that holds the account.
        let args = [message_id.into(), (index as f64).into()];
        if let Some(file) = self.forwarded("attachmentGet", &args).await {
            let file: web_sys::File = file?.unchecked_into();
            return save_blob(&file.name(), &file);
        }
        let (a, bytes) = self.attachment_get(message_id, index).await?;
        save_file(&a.name, &a.mime, &bytes)
    }
}

/// Hands `bytes` to the browser as a download named `name`.
pub(super) fn save_file(name: &str, mime: &str, bytes: &[u8]) -> ClientResult<()> {
    let parts = Array::of1(&Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|e| js_failure("ui", e))?;
    save_blob(name, &blob)
}

/// Hands `blob` to the browser as a download named `name`.
fn save_blob(name: &str, blob: &web_sys::Blob) -> ClientResult<()> {
    let url = web_sys::Url::create_object_url_with_blob(blob).map_err(|e| js_failure("ui", e))?;
    let doc = crate::util::window()?
        .document()
        .ok_or_else(|| ClientError::new("ui", "no document"))?;
    let link: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(|e| js_failure("ui", e))?
        .unchecked_into();
    link.set_href(&url);
    link.set_download(name);
    link.click();
    crate::util::set_timeout(10_000.0, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

/// `{name, type, size, bytes}` for JavaScript.
pub fn to_js_file(a: &AttachmentRef, bytes: &[u8]) -> JsValue {
    let obj = js_sys::Object::new();
    let _ = Reflect::set(&obj, &"name".into(), &a.name.as_str().into());
    let _ = Reflect::set(&obj, &"type".into(), &a.mime.as_str().into());
    let _ = Reflect::set(&obj, &"size".into(), &(a.size as f64).into());
    let _ = Reflect::set(&obj, &"bytes".into(), &Uint8Array::from(bytes));
    obj.into()
}
