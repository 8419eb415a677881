//! What this device believes about other users' keys, and why.
//!
//! The relay hands out every user's identity and signed device list; [`Account::accept_keys`]
//! decides what to believe. The list must be signed by the identity, for that user; it must
//! be no older than the newest this device has seen (a relay could otherwise replay a list
//! from before a device was removed); and the identity is compared with the one pinned on
//! first sight (trust on first use, as Signal does). A changed identity:
//! - retires every session and sender key of the old one (never used again);
//! - leaves a warning that stays, across reloads, until the person acknowledges it;
//! - if the person had verified the old identity (safety numbers), blocks sending to that
//!   user until they verify the new one ([`Account::may_send_to`]).
//!
//! Devices that appear or disappear are reported, for this user's own account too, and a
//! device that disappears takes this device's sender keys with it (they rotate).

use crate::account::Account;
use crate::identity::{IdentityPublic, SignedDeviceList};
use crate::CoreError;

/// How a user's identity compares with the one pinned for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityCheck {
    /// Seen for the first time (now pinned).
    New,
    Same,
    /// Differs from the one pinned: the new one is pinned and a warning is kept.
    Changed,
}

/// What [`Account::accept_keys`] concluded about one user's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedKeys {
    pub identity: IdentityPublic,
    pub check: IdentityCheck,
    /// The devices to encrypt to: those the signed list names that the server still has.
    pub devices: Vec<String>,
    /// Devices new since this user was last seen (none the first time).
    pub added: Vec<String>,
    /// Devices gone since then; their sessions and this device's sender keys are retired.
    pub removed: Vec<String>,
}

impl Account {
    /// Verifies `user_id`'s keys as the relay gave them (`registered`: the devices the server
    /// still holds) and updates what is pinned. An error changes nothing. For this user's
    /// own account a different identity is [`IdentityCheck::Changed`] and nothing is pinned
    /// (the caller stops: this browser's identity was replaced elsewhere).
    pub fn accept_keys(
        &mut self,
        user_id: &str,
        identity: &IdentityPublic,
        signed: &SignedDeviceList,
        registered: &[String],
    ) -> Result<AcceptedKeys, CoreError> {
        let list = identity.verify_device_list(signed, user_id)?;
        let own = user_id == self.user_id;
        let check = match self.known_identity(user_id) {
            None => IdentityCheck::New,
            Some(pinned) if pinned == *identity => IdentityCheck::Same,
            Some(_) => IdentityCheck::Changed,
        };
        if own && check == IdentityCheck::Changed {
            return Ok(AcceptedKeys {
                identity: *identity,
                check,
                devices: Vec::new(),
                added: Vec::new(),
                removed: Vec::new(),
            });
        }
        if check != IdentityCheck::Changed
            && self
                .device_list_versions
                .get(user_id)
                .is_some_and(|v| list.version < *v)
        {
            return Err(CoreError::StaleDeviceList);
        }
        if check == IdentityCheck::Changed {
            self.retire_identity(user_id);
        }
        if !own {
            self.known_identities.insert(user_id.to_owned(), *identity);
        }
        self.device_list_versions
            .insert(user_id.to_owned(), list.version);
        let devices: Vec<String> = list
            .devices
            .into_iter()
            .filter(|d| registered.contains(d))
            .collect();
        let (added, removed) = match self.known_devices.get(user_id) {
            Some(old) => (
                devices
                    .iter()
                    .filter(|d| !old.contains(d))
                    .cloned()
                    .collect(),
                old.iter()
                    .filter(|d| !devices.contains(d))
                    .cloned()
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        for d in &removed {
            self.forget_device(d);
        }
        self.known_devices
            .insert(user_id.to_owned(), devices.clone());
        Ok(AcceptedKeys {
            identity: *identity,
            check,
            devices,
            added,
            removed,
        })
    }

    /// A contact's identity changed: nothing made with the old one is used again, and the
    /// person is told until they acknowledge it.
    fn retire_identity(&mut self, user_id: &str) {
        if let Some(old) = self.known_identities.get(user_id).copied() {
            self.sessions.retain(|_, s| s.remote_identity != old);
            for sessions in self.previous_sessions.values_mut() {
                sessions.retain(|s| s.remote_identity != old);
            }
        }
        for d in self.known_devices.remove(user_id).unwrap_or_default() {
            self.forget_device(&d);
        }
        self.device_list_versions.remove(user_id);
        if let Err(at) = self
            .identity_warnings
            .binary_search_by(|u| u.as_str().cmp(user_id))
        {
            self.identity_warnings.insert(at, user_id.to_owned());
        }
    }

    /// The identity pinned for a user, if any.
    pub fn known_identity(&self, user_id: &str) -> Option<IdentityPublic> {
        if user_id == self.user_id {
            return Some(self.identity_public());
        }
        self.known_identities.get(user_id).copied()
    }

    /// Users whose identity changed and who the person has not acknowledged yet.
    pub fn identity_warnings(&self) -> impl Iterator<Item = &str> {
        self.identity_warnings.iter().map(String::as_str)
    }

    /// The person saw the warning about `user_id`'s new identity. A contact they had
    /// verified stays unsendable until verified again ([`Account::mark_verified`]).
    pub fn acknowledge_identity_change(&mut self, user_id: &str) {
        self.identity_warnings.retain(|u| u != user_id);
    }

    /// The person compared the safety number `shown` with `user_id` and they matched: the
    /// identity pinned now is verified, and any warning about it is settled. Refused when
    /// the pinned identity no longer gives `shown` — it changed while the person compared,
    /// so what they checked is not what would be verified.
    pub fn mark_verified(&mut self, user_id: &str, shown: &str) -> Result<(), CoreError> {
        let identity = self
            .known_identity(user_id)
            .ok_or(CoreError::NoSession("no identity known for this user"))?;
        if self.safety_number(user_id, &identity) != shown {
            return Err(CoreError::Unverified(
                "the safety number changed while you compared it; compare the new one",
            ));
        }
        self.verified_identities
            .insert(user_id.to_owned(), identity);
        self.identity_warnings.retain(|u| u != user_id);
        Ok(())
    }

    /// Whether the pinned identity of `user_id` is one the person verified.
    pub fn is_verified(&self, user_id: &str) -> bool {
        self.verified_identities
            .get(user_id)
            .is_some_and(|v| Some(*v) == self.known_identity(user_id))
    }

    /// Refuses to encrypt to a contact the person verified whose identity has since changed.
    pub fn may_send_to(&self, user_id: &str) -> Result<(), CoreError> {
        if self.verified_identities.contains_key(user_id) && !self.is_verified(user_id) {
            return Err(CoreError::Unverified(
                "this contact's key changed since you verified it; verify it again to send",
            ));
        }
        Ok(())
    }
}
