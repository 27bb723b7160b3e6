//! The invalidation channel's protocol: its name, and what a message on it says (a code created, or a code
//! changed). The shortener publishes, every redirect replica listens.

/// Prefix of a message announcing a created code (`+code`); a bare `code` means changed or removed. `+` is not
/// a code character, so the two cannot be confused.
pub const CREATED_MARK: char = '+';

/// What an invalidation message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement<'a> {
    /// A new link: drop a negative entry, nothing else can be stale.
    Created(&'a str),
    /// Deleted, expired or purged: every copy is stale, and replicas may not have replayed it yet.
    Changed(&'a str),
}

/// Reads an invalidation message.
pub fn announcement(message: &str) -> Announcement<'_> {
    match message.strip_prefix(CREATED_MARK) {
        Some(code) => Announcement::Created(code),
        None => Announcement::Changed(message),
    }
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
}
