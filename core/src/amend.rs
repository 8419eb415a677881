//! What may change a message after it was sent: its sender's edit or deletion, and each
//! member's reaction. Every member's device applies the same rules to the bodies it
//! receives (kinds `edit`, `delete` and `react`, naming the message in `target`), so
//! nobody changes what is not theirs and a late body never undoes a newer one. That the
//! sender is a current member of the thread is checked before, when the envelope is opened
//! ([`crate::inbox`]).

use crate::sealing::{Kind, MessageBody};
use crate::CoreError;
use serde::{Deserialize, Serialize};

/// The longest reaction accepted, in bytes of UTF-8 (an emoji with modifiers and joiners).
pub const MAX_REACTION_BYTES: usize = 32;

/// One member's reaction to a message: at most one per person, the newest kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub user_id: String,
    pub emoji: String,
    /// The reacting body's `sent_at`, so an older one arriving late changes nothing.
    pub at: i64,
}

/// What a message is now, as far as these rules care.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Who sent the message (from its authenticated envelope).
    pub sender_user: &'a str,
    /// `sent_at` of the edit that set its text, if any.
    pub edited_at: Option<i64>,
    pub deleted: bool,
}

/// The change a body makes to its target, once allowed by [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// The new text (and HTML) replace the old.
    Edit,
    /// The text, HTML, attributes, attachments (with their keys) and reactions go.
    Delete,
    /// The sender's reaction becomes this emoji (`""`: they took it back).
    React(&'a str),
}

fn refused(detail: &str) -> CoreError {
    CoreError::Malformed {
        what: "message change",
        detail: detail.into(),
    }
}

/// Whether a reaction is one: short, and no spaces of any kind, control characters,
/// invisible or direction-changing marks (which could make a chip pass for another, or
/// its count for a bigger one). The zero-width joiner and variation selectors of emoji
/// sequences are kept. `""` takes a reaction back.
pub fn valid_reaction(emoji: &str) -> bool {
    emoji.len() <= MAX_REACTION_BYTES
        && !emoji.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(c, '\u{200B}'..='\u{200C}' | '\u{200E}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
        })
}

/// Decides what `body` does to `target`: an edit or a deletion only from the message's own
/// sender, a reaction from anyone (a member, as checked when opened). Nothing changes a
/// deleted message, and an edit older than the one shown is dropped.
pub fn check<'a>(body: &'a MessageBody, target: Target<'_>) -> Result<Change<'a>, CoreError> {
    if target.deleted {
        return Err(refused("deleted"));
    }
    match body.kind {
        Kind::Edit | Kind::Delete if body.sender_user != target.sender_user => {
            Err(refused("not its sender"))
        }
        Kind::Edit if target.edited_at.is_some_and(|at| at >= body.sent_at) => {
            Err(refused("older than its edit"))
        }
        Kind::Edit if body.text.trim().is_empty() => Err(refused("empty edit")),
        Kind::Edit => Ok(Change::Edit),
        Kind::Delete => Ok(Change::Delete),
        Kind::React if valid_reaction(&body.text) => Ok(Change::React(&body.text)),
        Kind::React => Err(refused("not a reaction")),
        _ => Err(refused("not a change")),
    }
}

/// Sets `user`'s reaction to `emoji` as of `at` (`""` removes it); returns whether anything
/// changed. One reaction per person: a new one replaces theirs, an older one is dropped.
pub fn react(reactions: &mut Vec<Reaction>, user: &str, emoji: &str, at: i64) -> bool {
    let mine = reactions.iter().position(|r| r.user_id == user);
    match mine {
        Some(i) if reactions[i].at >= at => return false,
        Some(i) => {
            reactions.remove(i);
        }
        None if emoji.is_empty() => return false,
        None => {}
    }
    if !emoji.is_empty() {
        reactions.push(Reaction {
            user_id: user.into(),
            emoji: emoji.into(),
            at,
        });
    }
    true
}

/// The members that `text` mentions (`@tag`, not inside a longer tag or an email address),
/// as user IDs, each once. `members` are (user ID, tag) pairs.
pub fn mentions<'a>(
    text: &str,
    members: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let tag_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut tags: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at + 1..];
        let len = tail.find(|c: char| !tag_char(c)).unwrap_or(tail.len());
        // A tag ends a sentence as often as not: "thanks @bob." names @bob.
        let tag = tail[..len].trim_end_matches('.');
        if !before.is_some_and(tag_char) && !tag.is_empty() {
            tags.push(tag);
        }
        rest = &tail[len..];
    }
    let mut ids: Vec<String> = Vec::new();
    for (id, tag) in members {
        if tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) && !ids.iter().any(|i| i == id) {
            ids.push(id.into());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(kind: Kind, sender: &str, sent_at: i64, text: &str) -> MessageBody {
        MessageBody {
            kind,
            sender_user: sender.into(),
            sent_at,
            text: text.into(),
            target: Some("m1".into()),
            ..Default::default()
        }
    }

    const BOBS: Target<'static> = Target {
        sender_user: "bob",
        edited_at: None,
        deleted: false,
    };

    #[test]
    fn only_the_sender_edits_or_deletes_and_anyone_reacts() {
        let edit = body(Kind::Edit, "bob", 10, "fixed");
        assert_eq!(check(&edit, BOBS), Ok(Change::Edit));
        assert_eq!(
            check(&body(Kind::Delete, "bob", 10, ""), BOBS),
            Ok(Change::Delete)
        );
        // Mallory, a member, tries to put words in Bob's mouth or take his back.
        for kind in [Kind::Edit, Kind::Delete] {
            let e = check(&body(kind, "mallory", 10, "I quit"), BOBS).unwrap_err();
            assert!(e.to_string().contains("not its sender"), "{e}");
        }
        assert_eq!(
            check(&body(Kind::React, "mallory", 10, "👍"), BOBS),
            Ok(Change::React("👍"))
        );
        assert_eq!(
            check(&body(Kind::React, "mallory", 10, ""), BOBS),
            Ok(Change::React(""))
        );
    }

    #[test]
    fn late_edits_and_anything_after_a_deletion_change_nothing() {
        let edited = Target {
            edited_at: Some(20),
            ..BOBS
        };
        assert!(check(&body(Kind::Edit, "bob", 15, "older"), edited).is_err());
        assert!(check(&body(Kind::Edit, "bob", 20, "same time"), edited).is_err());
        assert!(check(&body(Kind::Edit, "bob", 21, "newer"), edited).is_ok());
        let deleted = Target {
            deleted: true,
            ..BOBS
        };
        for kind in [Kind::Edit, Kind::Delete, Kind::React] {
            assert!(check(&body(kind, "bob", 30, "👍"), deleted).is_err());
        }
    }

    #[test]
    fn bad_edits_and_reactions_are_refused() {
        assert!(check(&body(Kind::Edit, "bob", 10, "  "), BOBS).is_err());
        for bad in [
            "a\nb",
            "two words",
            &"😀".repeat(9),
            "\u{7}",
            "👍\u{A0}12",
            "👍\u{202E}21",
            "\u{200B}",
        ] {
            assert!(
                check(&body(Kind::React, "bob", 10, bad), BOBS).is_err(),
                "{bad:?}"
            );
        }
        assert!(valid_reaction("👨‍👩‍👧‍👦"));
        for kind in [Kind::Message, Kind::Update, Kind::Leave, Kind::Readmark] {
            assert!(check(&body(kind, "bob", 10, "x"), BOBS).is_err());
        }
    }

    #[test]
    fn one_reaction_per_person_and_the_newest_wins() {
        let mut r = Vec::new();
        assert!(react(&mut r, "ann", "👍", 10));
        assert!(react(&mut r, "bob", "❤️", 11));
        // Ann changes her mind: hers is replaced, not added to.
        assert!(react(&mut r, "ann", "😂", 12));
        assert_eq!(r.len(), 2);
        assert_eq!(r.iter().find(|x| x.user_id == "ann").unwrap().emoji, "😂");
        // An older reaction of hers that arrives late changes nothing.
        assert!(!react(&mut r, "ann", "👍", 11));
        assert!(react(&mut r, "ann", "", 13));
        assert_eq!(r.len(), 1);
        assert!(!react(&mut r, "carol", "", 14));
    }

    #[test]
    fn mentions_name_members_by_tag_only_as_whole_words() {
        let members = [("u1", "bob"), ("u2", "carol.chen"), ("u3", "dan")];
        assert_eq!(mentions("hi @bob and @Carol.Chen.", members), ["u1", "u2"]);
        assert_eq!(mentions("@bob @bob", members), ["u1"]);
        // An email address, a longer tag and a stranger are not mentions.
        assert!(mentions("mail dan@bob.com or @bobby or @eve", members).is_empty());
        assert!(mentions("@ alone, trailing @", members).is_empty());
    }
}
