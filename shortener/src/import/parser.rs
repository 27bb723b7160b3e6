//! From chunks of an export file to rows: the [`Format`] decides how the bytes are read (CSV records with a
//! header, or the elements of a JSON array of links) and what a record means; each row comes out with the line
//! it starts on, or the reason it cannot be imported.

use std::str::FromStr;

use super::{
    csv_records::{CsvItem, CsvRecords},
    formats::{bitly, csv, kutt, shlink, yourls},
    json_elements::{JsonElements, JsonItem},
    row::{bad_file, bad_line, Header, Parsed, Row},
};
use crate::errors::{ApiError, ErrorCode};

/// Bytes a Bitly file may start with before its first character says whether it is CSV or JSON.
const MAX_LEADING_SPACE: usize = 4096;

/// The export files an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Bitly's API list of links (JSON) or its web app's CSV export.
    Bitly,
    /// Shlink's web client CSV export.
    Shlink,
    /// YOURLS' `yourls_url` table as CSV.
    Yourls,
    /// Kutt's API list of links (JSON).
    Kutt,
    /// The Contract's CSV.
    Csv,
}

impl FromStr for Format {
    type Err = ApiError;

    fn from_str(name: &str) -> Result<Self, ApiError> {
        Ok(match name {
            "bitly" => Self::Bitly,
            "shlink" => Self::Shlink,
            "yourls" => Self::Yourls,
            "kutt" => Self::Kutt,
            "csv" => Self::Csv,
            _ => {
                return Err(ApiError::InvalidField {
                    code: ErrorCode::InvalidFormat,
                    message: format!(
                        "format must be bitly, shlink, yourls, kutt or csv, not {:?}",
                        super::row::shorten(name)
                    ),
                })
            }
        })
    }
}

/// How the bytes are read.
enum Decoder {
    Csv {
        /// Boxed: csv-core's state machine is most of a kilobyte.
        records: Box<CsvRecords>,
        header: Option<Header>,
        items: Vec<CsvItem>,
    },
    Json {
        elements: JsonElements,
        items: Vec<JsonItem>,
    },
}

/// An import file being parsed.
pub struct Parser {
    format: Format,
    decoder: Option<Decoder>,
    /// A Bitly file's leading white space, held until its first character picks the decoder.
    leading: Vec<u8>,
}

impl Parser {
    /// A parser of `format`.
    pub fn new(format: Format) -> Self {
        let decoder = match format {
            Format::Bitly => None,
            Format::Kutt => Some(json(kutt::ARRAY_KEY)),
            Format::Shlink | Format::Yourls | Format::Csv => Some(csv_decoder()),
        };
        Self {
            format,
            decoder,
            leading: Vec::new(),
        }
    }

    /// Parses the next chunk, adding the rows it completes to `rows`.
    ///
    /// # Errors
    /// 422 `invalid_file` when the file is not of its format (a CSV header without the URL's column).
    pub fn feed(&mut self, chunk: &[u8], rows: &mut Vec<Parsed>) -> Result<(), ApiError> {
        let Some(decoder) = self.decoder.as_mut() else {
            return self.pick_decoder(chunk, rows);
        };
        match decoder {
            Decoder::Csv {
                records,
                header,
                items,
            } => {
                records.feed(chunk, items);
                csv_rows(self.format, header, items, rows)
            }
            Decoder::Json { elements, items } => {
                elements.feed(chunk, items);
                json_rows(self.format, items, rows);
                Ok(())
            }
        }
    }

    /// The end of the file: the last rows.
    ///
    /// # Errors
    /// 422 `invalid_file` for an empty file, one without a header, or JSON without an array of links.
    pub fn finish(&mut self, rows: &mut Vec<Parsed>) -> Result<(), ApiError> {
        if self.decoder.is_none() {
            let leading = std::mem::take(&mut self.leading);
            self.decoder = Some(csv_decoder());
            self.feed(&leading, rows)?;
        }
        match self.decoder.as_mut() {
            Some(Decoder::Csv {
                records,
                header,
                items,
            }) => {
                records.finish(items);
                csv_rows(self.format, header, items, rows)?;
                if header.is_none() {
                    return Err(bad_file("the file is empty: a header row comes first"));
                }
                Ok(())
            }
            Some(Decoder::Json { elements, items }) => {
                let found = elements.finish(items);
                json_rows(self.format, items, rows);
                if !found {
                    return Err(bad_file(
                        "no array of links: the file is not the JSON this format reads",
                    ));
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// A Bitly file is the API's JSON when its first character is `{` or `[`, else the web app's CSV.
    fn pick_decoder(&mut self, chunk: &[u8], rows: &mut Vec<Parsed>) -> Result<(), ApiError> {
        self.leading.extend_from_slice(chunk);
        let text = self
            .leading
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&self.leading);
        let first = text.iter().find(|byte| !byte.is_ascii_whitespace());
        let decoder = match first {
            Some(b'{' | b'[') => json(bitly::ARRAY_KEY),
            Some(_) => csv_decoder(),
            None if self.leading.len() < MAX_LEADING_SPACE => return Ok(()),
            None => csv_decoder(),
        };
        self.decoder = Some(decoder);
        let leading = std::mem::take(&mut self.leading);
        self.feed(&leading, rows)
    }
}

fn csv_decoder() -> Decoder {
    Decoder::Csv {
        records: Box::default(),
        header: None,
        items: Vec::new(),
    }
}

fn json(key: &'static str) -> Decoder {
    Decoder::Json {
        elements: JsonElements::new(key),
        items: Vec::new(),
    }
}

/// The rows of the CSV records read so far; the first record is the header.
fn csv_rows(
    format: Format,
    header: &mut Option<Header>,
    items: &mut Vec<CsvItem>,
    rows: &mut Vec<Parsed>,
) -> Result<(), ApiError> {
    for item in items.drain(..) {
        let (line, fields) = match item {
            CsvItem::Record { line, fields } => (line, fields),
            CsvItem::Bad { line, error } if header.is_some() => {
                rows.push((line, Err(bad_line(error))));
                continue;
            }
            CsvItem::Bad { line, error } => {
                return Err(bad_file(format!("line {line}, the header: {error}")))
            }
        };
        let Some(columns) = header.as_ref() else {
            let columns = Header::new(&fields);
            check_header(format, &columns)?;
            *header = Some(columns);
            continue;
        };
        rows.push((line, csv_row(format, columns, &fields)));
    }
    Ok(())
}

fn check_header(format: Format, header: &Header) -> Result<(), ApiError> {
    match format {
        Format::Bitly => bitly::check(header),
        Format::Shlink => shlink::check(header),
        Format::Yourls => yourls::check(header),
        Format::Csv | Format::Kutt => csv::check(header),
    }
}

fn csv_row(format: Format, header: &Header, fields: &[String]) -> Result<Row, ApiError> {
    match format {
        Format::Bitly => bitly::row(header, fields),
        Format::Shlink => shlink::row(header, fields),
        Format::Yourls => yourls::row(header, fields),
        Format::Csv | Format::Kutt => csv::row(header, fields),
    }
}

/// The rows of the JSON elements read so far.
fn json_rows(format: Format, items: &mut Vec<JsonItem>, rows: &mut Vec<Parsed>) {
    for item in items.drain(..) {
        rows.push(match item {
            JsonItem::Element { line, bytes } => (
                line,
                match format {
                    Format::Bitly => bitly::element_row(&bytes),
                    _ => kutt::row(&bytes),
                },
            ),
            JsonItem::Bad { line, error } => (line, Err(bad_line(error))),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: Format, text: &str) -> Result<Vec<Parsed>, ApiError> {
        let mut parser = Parser::new(format);
        let mut rows = Vec::new();
        for piece in text.as_bytes().chunks(3) {
            parser.feed(piece, &mut rows)?;
        }
        parser.finish(&mut rows)?;
        Ok(rows)
    }

    #[test]
    fn a_bitly_file_is_json_or_csv_by_its_first_character() {
        let json = parse(
            Format::Bitly,
            "\n {\"links\": [{\"link\": \"https://bit.ly/abc\", \"long_url\": \"https://example.com/\"}]}",
        )
        .expect("parsed");
        let csv = parse(
            Format::Bitly,
            "Bitlink,Long URL,Total Clicks\nbit.ly/abc,https://example.com/,7\n",
        )
        .expect("parsed");

        let (line, row) = &json[0];
        assert_eq!(*line, 2);
        assert_eq!(row.as_ref().expect("a row").code.as_deref(), Some("abc"));
        let (line, row) = &csv[0];
        assert_eq!(*line, 2);
        assert_eq!(row.as_ref().expect("a row").hits, 7);
    }

    #[test]
    fn a_header_without_the_url_column_is_not_the_format() {
        let error =
            parse(Format::Shlink, "code,url\nabc,https://example.com/\n").expect_err("refused");

        assert_eq!(error.code(), ErrorCode::InvalidFile);
    }

    #[test]
    fn an_unknown_format_is_invalid_format() {
        assert_eq!(
            "rebrandly"
                .parse::<Format>()
                .err()
                .map(|error| error.code()),
            Some(ErrorCode::InvalidFormat)
        );
    }
}
