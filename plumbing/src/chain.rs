//! An error printed with every cause behind it, for the one log line that reports it: each level's own message
//! is short, so the detail (the server's message, the refused connection) is in the causes.

use std::{error::Error, fmt};

/// Displays `error: cause: cause's cause…`. A cause whose text the level above already ends with is skipped:
/// some wrappers (deadpool's pool errors) repeat their source in their own message.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: inner")]
    struct Middle(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[test]
    fn every_cause_is_printed_once() {
        let error = Outer(Middle(Inner));

        assert_eq!(Chain(&error).to_string(), "outer: middle: inner");
    }
}
