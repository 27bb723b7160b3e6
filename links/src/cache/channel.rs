//! The invalidation channel's protocol: its name, and what a message on it says (a code created, a code
//! changed, or a block of the code counter this shortener issues from). The shortener publishes, every redirect
//! replica listens.

use std::ops::Range;

/// Prefix of a message announcing a created code (`+code`); a bare `code` means changed or removed. `+` is not
/// a code character, so the two cannot be confused.
pub const CREATED_MARK: char = '+';

/// Prefix of a message announcing a block of the code counter that a shortener issues compact codes from
/// (`*start-end`, end exclusive): a replica miss of a code from it may be lag. `*` is not a code character.
pub const BLOCK_MARK: char = '*';

/// The message saying that the owners whose links take click events changed (a click webhook created, deleted
/// or paused, a live stream opened): every redirect reads them again. `!` is not a code character.
pub const WATCHERS_CHANGED: &str = "!";

/// What an invalidation message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement<'a> {
    /// A new link: drop a negative entry, nothing else can be stale.
    Created(&'a str),
    /// Deleted, expired or purged: every copy is stale, and replicas may not have replayed it yet.
    Changed(&'a str),
    /// Codes of these numbers are being issued (or were, within the last moments).
    Block(Range<u64>),
    /// The owners whose links take click events changed ([`WATCHERS_CHANGED`]).
    Watchers,
    /// A block announcement that does not read as one (a newer publisher's, or damage): ignored.
    Unreadable,
}

/// Reads an invalidation message.
pub fn announcement(message: &str) -> Announcement<'_> {
    if message == WATCHERS_CHANGED {
        return Announcement::Watchers;
    }
    if let Some(code) = message.strip_prefix(CREATED_MARK) {
        return Announcement::Created(code);
    }
    match message.strip_prefix(BLOCK_MARK) {
        Some(block) => read_block(block).map_or(Announcement::Unreadable, Announcement::Block),
        None => Announcement::Changed(message),
    }
}

/// The message announcing `block`.
pub fn block_announcement(block: &Range<u64>) -> String {
    format!("{BLOCK_MARK}{}-{}", block.start, block.end)
}

fn read_block(text: &str) -> Option<Range<u64>> {
    let (start, end) = text.split_once('-')?;
    let block = start.parse().ok()?..end.parse().ok()?;
    (!block.is_empty()).then_some(block)
}

/// The invalidation channel for a key prefix (see [`RedisCache::invalidation_channel`]).
pub fn invalidation_channel(prefix: &str) -> String {
    format!("{prefix}invalidate")
}

#[cfg(test)]
mod tests {
    #[test]
    fn announcements_tell_created_from_changed_codes() {
        assert_eq!(
            super::announcement("+abc"),
            super::Announcement::Created("abc")
        );
        assert_eq!(
            super::announcement("abc"),
            super::Announcement::Changed("abc")
        );
        assert!(!crate::code::is_code_byte(super::CREATED_MARK as u8));
    }

    #[test]
    fn blocks_read_back_and_junk_blocks_are_unreadable() {
        let block = 1_000..3_000;
        let message = super::block_announcement(&block);
        assert_eq!(
            super::announcement(&message),
            super::Announcement::Block(block)
        );
        for junk in ["*", "*12", "*5-5", "*9-3", "*a-b", "*1-2-3"] {
            assert_eq!(
                super::announcement(junk),
                super::Announcement::Unreadable,
                "{junk}"
            );
        }
        assert!(!crate::code::is_code_byte(super::BLOCK_MARK as u8));
    }
}
