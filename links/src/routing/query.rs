//! `query` conditions: whether a request's raw query string has a `name=value` pair, compared after
//! percent-decoding (`+` as a space) on the fly, so nothing is allocated and no decoded copy is kept.
//!
//! One pass finds the pairs (`&`); each pair is then decoded only as far as it matches, so a pair of another name
//! costs a byte or two. Splitting every pair at `=` and scanning it for escapes first took three passes and
//! three times the instructions (callgrind).

/// Whether `query` (the raw query string, without `?`) has a pair whose decoded name is `name` and whose decoded
/// value is `value`. A pair without `=` has an empty value; a `%` not followed by two hex digits stands for itself.
pub fn has_pair(query: &str, name: &str, value: &str) -> bool {
    let (query, name, value) = (query.as_bytes(), name.as_bytes(), value.as_bytes());
    let mut rest = query;
    loop {
        let end = rest
            .iter()
            .position(|&byte| byte == b'&')
            .unwrap_or(rest.len());
        let matches = match strip_decoded(&rest[..end], name, true) {
            Some([]) => value.is_empty(),
            Some([b'=', raw_value @ ..]) => strip_decoded(raw_value, value, false) == Some(&[]),
            _ => false,
        };
        if matches {
            return true;
        }
        match rest.get(end + 1..) {
            Some(next) => rest = next,
            None => return false,
        }
    }
}

/// What is left of `raw` after the prefix that decodes to `want`; `None` when no prefix does. In a name
/// (`in_name`) a literal `=` ends the name, so it never matches.
fn strip_decoded<'a>(raw: &'a [u8], want: &[u8], in_name: bool) -> Option<&'a [u8]> {
    let mut decoded = Decoded { rest: raw };
    for &wanted in want {
        if in_name && decoded.rest.first() == Some(&b'=') {
            return None;
        }
        if decoded.next()? != wanted {
            return None;
        }
    }
    Some(decoded.rest)
}

/// An iterator over the percent-decoded bytes of a query component.
struct Decoded<'a> {
    rest: &'a [u8],
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, after) = self.rest.split_first()?;
        match (first, after) {
            (b'%', &[high, low, ..]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                self.rest = &after[2..];
                Some(hex_value(high) << 4 | hex_value(low))
            }
            (b'+', _) => {
                self.rest = after;
                Some(b' ')
            }
            _ => {
                self.rest = after;
                Some(first)
            }
        }
    }
}

/// The value of an ASCII hex digit (called only on one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::has_pair;

    #[test]
    fn a_pair_is_found_among_others() {
        assert!(has_pair("a=1&utm_source=news&b=2", "utm_source", "news"));
        assert!(!has_pair("a=1&utm_source=newsletter", "utm_source", "news"));
        assert!(!has_pair("", "utm_source", "news"));
    }

    #[test]
    fn names_and_values_are_compared_decoded() {
        assert!(has_pair("q=caf%C3%A9+au+lait", "q", "café au lait"));
        assert!(has_pair("my%20name=x%2By", "my name", "x+y"));
        assert!(has_pair("k=%4a%4A", "k", "JJ"));
        assert!(
            !has_pair("q=a+b", "q", "a+b"),
            "a + in the query is a space"
        );
    }

    #[test]
    fn a_lone_percent_stands_for_itself_and_a_bare_name_has_an_empty_value() {
        assert!(has_pair("discount=100%", "discount", "100%"));
        assert!(has_pair("p=%zz", "p", "%zz"));
        assert!(has_pair("flag&x=1", "flag", ""));
        assert!(!has_pair("flag&x=1", "flag", "1"));
    }

    #[test]
    fn a_pair_splits_at_its_first_literal_equals_sign() {
        assert!(has_pair("a=b=c", "a", "b=c"));
        assert!(!has_pair("a=b=c", "a=b", "c"));
        assert!(has_pair("a%3Db=c", "a=b", "c"));
        assert!(!has_pair("name=value", "nam", "e=value"));
        assert!(!has_pair("name=value", "name", "valu"));
        assert!(!has_pair("name=value", "name", "value2"));
    }

    #[test]
    fn a_repeated_name_holds_when_any_of_its_values_matches() {
        assert!(has_pair("v=a&v=b", "v", "b"));
    }
}
