//! CSV records read incrementally from chunks of a body or file, each with the line it starts on. `csv-core`'s
//! state machine takes bytes as they arrive (the `csv` crate's reader wants a blocking `Read`), so memory is one
//! record: a record over [`MAX_RECORD_BYTES`] or [`MAX_FIELDS`] is skipped (read past, never held) and reported.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};

/// Longest record kept: a longer line is reported and skipped.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Most fields in one record.
pub const MAX_FIELDS: usize = 64;

/// One record, or why it was skipped.
#[derive(Debug, PartialEq, Eq)]
pub enum CsvItem {
    /// A record's fields, with the line it starts on (1-based).
    Record { line: u64, fields: Vec<String> },
    /// A record that was too long or not UTF-8.
    Bad { line: u64, error: String },
}

/// The reader's state between chunks.
pub struct CsvRecords {
    reader: Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    nout: usize,
    nend: usize,
    /// Why the record being read will be skipped (it outgrew a bound): the rest of it is read into scratch.
    overflow: Option<String>,
    /// The line after the last record read: where an overflowing record is reported.
    next_line: u64,
    /// Whether a record was read (only the first may start with a byte order mark).
    started: bool,
}

impl Default for CsvRecords {
    fn default() -> Self {
        Self {
            // `\n` alone ends a record, so a record's lines are counted when it ends; a `\r` before it is trimmed
            // from the last field (files from Windows, Excel).
            reader: ReaderBuilder::new()
                .terminator(Terminator::Any(b'\n'))
                .build(),
            out: vec![0; MAX_RECORD_BYTES],
            ends: vec![0; MAX_FIELDS],
            nout: 0,
            nend: 0,
            overflow: None,
            next_line: 1,
            started: false,
        }
    }
}

impl CsvRecords {
    /// Reads `input` (the next chunk), adding each record it completes to `items`.
    pub fn feed(&mut self, input: &[u8], items: &mut Vec<CsvItem>) {
        if !input.is_empty() {
            self.read(input, false, items);
        }
    }

    /// Reads what the end of the input completes.
    pub fn finish(&mut self, items: &mut Vec<CsvItem>) {
        self.read(&[], true, items);
    }

    fn read(&mut self, mut input: &[u8], at_end: bool, items: &mut Vec<CsvItem>) {
        let mut scratch = [0_u8; 4096];
        let mut scratch_ends = [0_usize; 16];
        loop {
            let (result, read) = if self.overflow.is_some() {
                let (result, read, _, _) =
                    self.reader
                        .read_record(input, &mut scratch, &mut scratch_ends);
                (result, read)
            } else {
                let (result, read, written, ended) = self.reader.read_record(
                    input,
                    &mut self.out[self.nout..],
                    &mut self.ends[self.nend..],
                );
                self.nout += written;
                self.nend += ended;
                (result, read)
            };
            input = &input[read..];
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return,
                ReadRecordResult::OutputFull => {
                    self.overflow = Some(format!(
                        "the line is longer than {} KiB",
                        MAX_RECORD_BYTES / 1024
                    ));
                }
                ReadRecordResult::OutputEndsFull => {
                    self.overflow = Some(format!("the line has more than {MAX_FIELDS} columns"));
                }
                ReadRecordResult::Record => {
                    items.extend(self.take_record(at_end && input.is_empty()));
                }
            }
        }
    }

    /// The record just completed (`None` for a blank line), and the state reset for the next.
    fn take_record(&mut self, unterminated: bool) -> Option<CsvItem> {
        let line_after = self.reader.line();
        let (nout, nend) = (
            std::mem::take(&mut self.nout),
            std::mem::take(&mut self.nend),
        );
        let first_line = std::mem::replace(&mut self.next_line, line_after);
        if let Some(error) = self.overflow.take() {
            return Some(CsvItem::Bad {
                line: first_line,
                error,
            });
        }
        let data = &self.out[..nout];
        let newlines = data.iter().filter(|&&byte| byte == b'\n').count() as u64;
        let line = line_after
            .saturating_sub(newlines + u64::from(!unterminated))
            .max(1);
        let mut fields = Vec::with_capacity(nend);
        // A byte order mark (files saved by Excel) is no part of the first column's name.
        let mut start = if self.started || !data.starts_with(b"\xEF\xBB\xBF") {
            0
        } else {
            3
        };
        self.started = true;
        for (index, &end) in self.ends[..nend].iter().enumerate() {
            let mut field = &data[start..end];
            if index + 1 == nend {
                field = field.strip_suffix(b"\r").unwrap_or(field);
            }
            start = end;
            match std::str::from_utf8(field) {
                Ok(text) => fields.push(text.to_owned()),
                Err(_) => {
                    return Some(CsvItem::Bad {
                        line,
                        error: "the line is not UTF-8 text".into(),
                    })
                }
            }
        }
        if fields.iter().all(String::is_empty) {
            return None;
        }
        Some(CsvItem::Record { line, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item of `text` fed in chunks of `chunk` bytes.
    fn items(text: &[u8], chunk: usize) -> Vec<CsvItem> {
        let mut reader = CsvRecords::default();
        let mut items = Vec::new();
        for piece in text.chunks(chunk) {
            reader.feed(piece, &mut items);
        }
        reader.finish(&mut items);
        items
    }

    fn record(line: u64, fields: &[&str]) -> CsvItem {
        CsvItem::Record {
            line,
            fields: fields.iter().map(|field| (*field).to_owned()).collect(),
        }
    }

    #[test]
    fn records_carry_the_line_they_start_on_whatever_the_chunks() {
        let text = b"\xEF\xBB\xBFa,b\r\n\r\n\"multi\nline\",x\n1,2";
        for chunk in [1, 2, 3, 7, 1024] {
            assert_eq!(
                items(text, chunk),
                vec![
                    record(1, &["a", "b"]),
                    record(3, &["multi\nline", "x"]),
                    record(5, &["1", "2"]),
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_record_over_the_bound_is_skipped_and_the_next_one_read() {
        let long = "x".repeat(MAX_RECORD_BYTES + 10);
        let text = format!("a,b\n{long},y\nc,d\n");

        let items = items(text.as_bytes(), 8192);

        assert_eq!(items.len(), 3);
        assert!(
            matches!(&items[1], CsvItem::Bad { line: 2, .. }),
            "{:?}",
            items[1]
        );
        assert_eq!(items[2], record(3, &["c", "d"]));
    }
}
