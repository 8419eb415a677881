//! `LabeledExtract` and `LabeledExpand` (RFC 9180 §4): HKDF-SHA256 with every input prefixed
//! by `"HPKE-v1" || suite_id || label`, so keys derived for one purpose never serve another.

use crate::CoreError;
use hkdf::{Hkdf, HkdfExtract};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Output length of SHA-256 (`Nh`).
pub const NH: usize = 32;

const VERSION_LABEL: &[u8] = b"HPKE-v1";

/// `LabeledExtract(salt, label, ikm)`, returning the pseudorandom key.
pub fn extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; NH]> {
    let mut ext = HkdfExtract::<Sha256>::new(Some(salt));
    ext.input_ikm(VERSION_LABEL);
    ext.input_ikm(suite_id);
    ext.input_ikm(label);
    ext.input_ikm(ikm);
    let (prk, _) = ext.finalize();
    let mut out = Zeroizing::new([0u8; NH]);
    out.copy_from_slice(&prk);
    out
}

/// `LabeledExpand(prk, label, info, L)` into `out` (L = `out.len()`).
pub fn expand(
    suite_id: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), CoreError> {
    let len = u16::try_from(out.len()).map_err(|_| CoreError::InvalidKey("expand length"))?;
    let hk = Hkdf::<Sha256>::from_prk(prk).map_err(|_| CoreError::InvalidKey("prk length"))?;
    hk.expand_multi_info(
        &[&len.to_be_bytes(), VERSION_LABEL, suite_id, label, info],
        out,
    )
    .map_err(|_| CoreError::InvalidKey("expand length"))
}
