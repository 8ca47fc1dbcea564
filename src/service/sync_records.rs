//! Reading a caseload file one record at a time without ever holding more than
//! `MAX_RECORD_BYTES` of one: the rest of an over-long line is skipped as it streams past, so
//! a file of any shape costs the same memory as a file of short lines.

use std::io::{self, BufRead};

/// The longest record (an NDJSON line, a CSV row) that is read; a real holding is a few
/// hundred bytes, and its every field has a much smaller limit of its own.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The most cells a CSV row may have (the widest layout has about fifty columns).
pub const MAX_CSV_CELLS: usize = 1024;

/// What the rejection of an over-long record says.
pub fn too_long_message() -> String {
    format!(
        "this row is longer than the {MAX_RECORD_BYTES} bytes (or {MAX_CSV_CELLS} cells) a row may have; \
         it was skipped unread"
    )
}

/// How a record was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Whole, in the buffer.
    Whole,
    /// Longer than the bound: the buffer holds none of it, and the rest was skipped.
    TooLong,
}

/// Reads the next line into `buf` without its `\n`, holding at most `MAX_RECORD_BYTES` of it.
/// `None` at the end of the input.
pub fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<Read>> {
    buf.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(if too_long { Read::TooLong } else { Read::Whole }));
        }
        any = true;
        let newline = available.iter().position(|b| *b == b'\n');
        let part = &available[..newline.unwrap_or(available.len())];
        if !too_long && buf.len() + part.len() > MAX_RECORD_BYTES {
            too_long = true;
            *buf = Vec::new();
        }
        if !too_long {
            buf.extend_from_slice(part);
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(if too_long { Read::TooLong } else { Read::Whole }));
        }
    }
}

/// CSV records (RFC 4180 quoting, as the `csv` crate reads them), each within the bound.
pub struct CsvRecords<R> {
    reader: R,
    core: csv_core::Reader,
    cells: Vec<u8>,
    ends: Vec<usize>,
    /// Where the rest of an over-long record is parsed and dropped.
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
    /// Bytes and cells of the last record read.
    len: (usize, usize),
    done: bool,
}

impl<R: BufRead> CsvRecords<R> {
    pub fn new(reader: R) -> Self {
        CsvRecords {
            reader,
            core: csv_core::Reader::new(),
            cells: vec![0; MAX_RECORD_BYTES],
            ends: vec![0; MAX_CSV_CELLS],
            scratch: vec![0; 8192],
            scratch_ends: vec![0; 256],
            len: (0, 0),
            done: false,
        }
    }

    /// The next record and the line it starts on (as the `csv` crate numbers lines); `None`
    /// at the end. After `Read::Whole`, `cells` gives its cells.
    pub fn next_record(&mut self) -> io::Result<Option<(u64, Read)>> {
        use csv_core::ReadRecordResult as Result;
        if self.done {
            return Ok(None);
        }
        let line = self.core.line();
        let (mut bytes, mut cells, mut too_long) = (0, 0, false);
        loop {
            let input = match self.reader.fill_buf() {
                Ok(input) => input,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let (result, read, written, ended) = if too_long {
                self.core.read_record(input, &mut self.scratch, &mut self.scratch_ends)
            } else {
                self.core.read_record(input, &mut self.cells[bytes..], &mut self.ends[cells..])
            };
            self.reader.consume(read);
            if !too_long {
                bytes += written;
                cells += ended;
            }
            match result {
                Result::InputEmpty => {}
                Result::OutputFull | Result::OutputEndsFull => too_long = true,
                Result::Record => {
                    self.len = (bytes, cells);
                    return Ok(Some((line, if too_long { Read::TooLong } else { Read::Whole })));
                }
                Result::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    /// The cells of the last whole record, or `None` if it is not UTF-8 text.
    pub fn cells(&self) -> Option<Vec<&str>> {
        let (bytes, cells) = self.len;
        let text = std::str::from_utf8(&self.cells[..bytes]).ok()?;
        let mut start = 0;
        let mut out = Vec::with_capacity(cells);
        for end in &self.ends[..cells] {
            out.push(text.get(start..*end)?);
            start = *end;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_rows(text: &[u8]) -> Vec<(u64, Option<Vec<String>>)> {
        let mut records = CsvRecords::new(io::BufReader::with_capacity(16, text));
        let mut out = Vec::new();
        while let Some((line, read)) = records.next_record().unwrap() {
            let cells = (read == Read::Whole)
                .then(|| records.cells().map(|c| c.iter().map(|s| s.to_string()).collect()))
                .flatten();
            out.push((line, cells));
        }
        out
    }

    #[test]
    fn csv_rows_are_numbered_and_quoted_as_the_csv_crate_does() {
        let rows = csv_rows(b"a,b\n1,\"x,\"\"y\"\"\"\n\n2,\"multi\nline\"\n3,z");
        let cells = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(rows[0], (1, cells(&["a", "b"])));
        assert_eq!(rows[1], (2, cells(&["1", "x,\"y\""])));
        assert_eq!(rows[2].1, cells(&["2", "multi\nline"]));
        assert_eq!(rows[3].1, cells(&["3", "z"]));
        assert_eq!(rows.len(), 4);
    }

    #[test]
    fn an_over_long_csv_row_is_skipped_and_the_next_one_read() {
        let mut text = b"a,b\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES * 3));
        text.extend(b",y\n1,2\n");
        let rows = csv_rows(&text);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1], (2, None), "the long row is named by its line, with none of it kept");
        assert_eq!(rows[2], (3, Some(vec!["1".to_string(), "2".to_string()])));
    }

    #[test]
    fn an_over_long_line_is_skipped_without_being_held() {
        let mut text = b"{}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 1));
        text.extend(b"\n{\"a\":1}");
        let mut reader = io::BufReader::with_capacity(64, text.as_slice());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), Some(Read::Whole));
        assert_eq!(buf, b"{}");
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), Some(Read::TooLong));
        assert!(buf.is_empty() && buf.capacity() <= MAX_RECORD_BYTES);
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), Some(Read::Whole));
        assert_eq!(buf, b"{\"a\":1}");
        assert_eq!(read_line(&mut reader, &mut buf).unwrap(), None);
    }
}
