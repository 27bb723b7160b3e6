//! The elements of a JSON export's array of links, scanned incrementally from chunks: a peer's API list saved to
//! a file is `{"data": [...], "total": …}` (Kutt) or `{"links": [...], "pagination": …}` (Bitly), or a bare array
//! of links, and several pages are often saved one after another in one file. Each element is handed over whole
//! (with the line it starts on) for `serde_json` to parse; nothing else of the file is held, and an element over
//! [`MAX_ELEMENT_BYTES`] is skipped and reported.

/// Longest element kept: a longer one is reported and skipped.
pub const MAX_ELEMENT_BYTES: usize = 64 * 1024;

/// Longest key remembered (longer keys are never the one looked for).
const MAX_KEY_BYTES: usize = 64;

/// One element, or why it was skipped.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonItem {
    /// An element's bytes, with the line it starts on (1-based).
    Element { line: u64, bytes: Vec<u8> },
    /// An element that was too long, or cut off by the end of the file.
    Bad { line: u64, error: String },
}

/// An element being read.
struct Capture {
    line: u64,
    bytes: Vec<u8>,
    too_long: bool,
}

/// The scanner's state between chunks.
pub struct JsonElements {
    /// The key of the links' array in a top-level object.
    key: &'static str,
    line: u64,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The last string read directly in a top-level object: the key, when a `[` follows it.
    last_key: Vec<u8>,
    /// The depth inside the links' array while one is open.
    items_depth: Option<usize>,
    capture: Option<Capture>,
    /// Whether a links' array was found at all.
    found: bool,
}

impl JsonElements {
    /// A scanner for the elements of a top-level array, or of the array under `key` in a top-level object.
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            line: 1,
            depth: 0,
            in_string: false,
            escaped: false,
            last_key: Vec::new(),
            items_depth: None,
            capture: None,
            found: false,
        }
    }

    /// Scans `input` (the next chunk), adding each element it completes to `items`.
    pub fn feed(&mut self, input: &[u8], items: &mut Vec<JsonItem>) {
        for &byte in input {
            self.step(byte, items);
        }
    }

    /// The end of the input: an element still open was cut off. Returns whether any array of links was found.
    pub fn finish(&mut self, items: &mut Vec<JsonItem>) -> bool {
        if let Some(capture) = self.capture.take() {
            items.push(JsonItem::Bad {
                line: capture.line,
                error: "the file ends inside this element".into(),
            });
        }
        self.found
    }

    fn step(&mut self, byte: u8, items: &mut Vec<JsonItem>) {
        if byte == b'\n' {
            self.line += 1;
        }
        let at_items = !self.in_string && self.items_depth == Some(self.depth);
        if at_items && matches!(byte, b',' | b']') {
            if let Some(capture) = self.capture.take() {
                items.push(finished(capture));
            }
            if byte == b']' {
                self.items_depth = None;
                self.depth = self.depth.saturating_sub(1);
            }
            return;
        }
        if at_items && self.capture.is_none() && !byte.is_ascii_whitespace() {
            self.capture = Some(Capture {
                line: self.line,
                bytes: Vec::new(),
                too_long: false,
            });
        }
        if let Some(capture) = &mut self.capture {
            if capture.bytes.len() < MAX_ELEMENT_BYTES {
                capture.bytes.push(byte);
            } else {
                capture.too_long = true;
            }
        }
        self.track(byte);
    }

    /// Strings, nesting and the key in front of each array of the top-level object.
    fn track(&mut self, byte: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
            } else if self.depth == 1 && self.last_key.len() <= MAX_KEY_BYTES {
                self.last_key.push(byte);
            }
            return;
        }
        match byte {
            b'"' => {
                self.in_string = true;
                self.last_key.clear();
            }
            b'[' | b'{' => {
                let links_array = (self.depth == 0 && byte == b'[')
                    || (self.depth == 1 && byte == b'[' && self.last_key == self.key.as_bytes());
                self.depth += 1;
                if links_array && self.capture.is_none() {
                    self.items_depth = Some(self.depth);
                    self.found = true;
                }
            }
            b']' | b'}' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

fn finished(mut capture: Capture) -> JsonItem {
    while capture.bytes.last().is_some_and(u8::is_ascii_whitespace) {
        capture.bytes.pop();
    }
    if capture.too_long {
        return JsonItem::Bad {
            line: capture.line,
            error: format!(
                "the element is longer than {} KiB",
                MAX_ELEMENT_BYTES / 1024
            ),
        };
    }
    JsonItem::Element {
        line: capture.line,
        bytes: capture.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, key: &'static str, chunk: usize) -> (Vec<JsonItem>, bool) {
        let mut scanner = JsonElements::new(key);
        let mut items = Vec::new();
        for piece in text.as_bytes().chunks(chunk) {
            scanner.feed(piece, &mut items);
        }
        let found = scanner.finish(&mut items);
        (items, found)
    }

    fn element(line: u64, text: &str) -> JsonItem {
        JsonItem::Element {
            line,
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_elements_under_the_key_are_found_after_other_keys_and_in_each_page() {
        let text = "{\"total\": 2, \"note\": \"data\", \"other\": [{\"a\": 1}],\n \"data\": [\n  {\"a\": \"]}\\\"\"},\n  {\"b\": [2]}\n]}\n{\"data\": [{\"c\": 3}]}";
        for chunk in [1, 5, 4096] {
            let (items, found) = scan(text, "data", chunk);
            assert!(found);
            assert_eq!(
                items,
                vec![
                    element(3, "{\"a\": \"]}\\\"\"}"),
                    element(4, "{\"b\": [2]}"),
                    element(6, "{\"c\": 3}"),
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_bare_array_is_the_links_and_a_cut_off_element_is_reported() {
        let (items, found) = scan("[{\"a\": 1}, {\"b\":", "data", 3);

        assert!(found);
        assert_eq!(items[0], element(1, "{\"a\": 1}"));
        assert!(matches!(items[1], JsonItem::Bad { line: 1, .. }));
    }

    #[test]
    fn an_element_over_the_bound_is_skipped() {
        let long = format!(
            "[{{\"a\": \"{}\"}}, {{\"b\": 1}}]",
            "x".repeat(MAX_ELEMENT_BYTES)
        );

        let (items, _) = scan(&long, "data", 4096);

        assert!(matches!(items[0], JsonItem::Bad { .. }));
        assert_eq!(items[1], element(1, "{\"b\": 1}"));
    }

    #[test]
    fn no_array_under_the_key_is_no_links() {
        assert!(!scan("{\"links\": []}", "data", 10).1);
    }
}
