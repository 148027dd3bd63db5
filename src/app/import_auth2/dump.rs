//! Reading what `mongodump --db <auth2's database>` wrote: a folder with one
//! `<collection>.bson` per collection (its documents one after another), or
//! `<collection>.bson.gz` with `--gzip`. Every error names the file.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use bson::Document;

/// The largest document MongoDB stores (16 MiB).
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;

/// Why a dump cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{0}: not a folder written by mongodump")]
    NotAFolder(PathBuf),
    #[error("{0}: no users.bson (or users.bson.gz): not a dump of auth2's database")]
    NoUsers(PathBuf),
    #[error("{file}: {error}")]
    Unreadable { file: PathBuf, error: std::io::Error },
    #[error("{file}: truncated: the document at byte {offset} ends early")]
    Truncated { file: PathBuf, offset: u64 },
    #[error("{file}: not BSON: the document at byte {offset} {why}")]
    NotBson { file: PathBuf, offset: u64, why: String },
}

/// A dump folder.
#[derive(Debug, Clone)]
pub struct Dump {
    dir: PathBuf,
}

impl Dump {
    /// The dump in `dir`, which must hold auth2's `users` collection.
    pub fn open(dir: &Path) -> Result<Self, DumpError> {
        if !dir.is_dir() {
            return Err(DumpError::NotAFolder(dir.to_owned()));
        }
        let dump = Self { dir: dir.to_owned() };
        if dump.file("users").is_none() {
            return Err(DumpError::NoUsers(dir.to_owned()));
        }
        Ok(dump)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `collection`, plain or gzipped, if the dump has it.
    fn file(&self, collection: &str) -> Option<PathBuf> {
        [format!("{collection}.bson"), format!("{collection}.bson.gz")]
            .into_iter()
            .map(|name| self.dir.join(name))
            .find(|path| path.is_file())
    }

    /// Whether the dump holds `collection`.
    pub fn has(&self, collection: &str) -> bool {
        self.file(collection).is_some()
    }

    /// The documents of `collection`, read one at a time (none when the dump
    /// has no such file: mongodump writes none for a collection never created).
    pub fn documents(&self, collection: &str) -> Result<Documents, DumpError> {
        let Some(file) = self.file(collection) else {
            return Ok(Documents { reader: Box::new(std::io::empty()), file: PathBuf::new(), offset: 0, done: true });
        };
        let unreadable = |error| DumpError::Unreadable { file: file.clone(), error };
        let opened = File::open(&file).map_err(unreadable)?;
        let reader: Box<dyn Read + Send> = if file.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(opened)))
        } else {
            Box::new(BufReader::new(opened))
        };
        Ok(Documents { reader, file, offset: 0, done: false })
    }

    /// Every document of `collection` at once (for the small ones).
    pub fn all(&self, collection: &str) -> Result<Vec<Document>, DumpError> {
        self.documents(collection)?.collect()
    }
}

/// The documents of one file, one after another, each checked whole; the
/// first error ends them.
pub struct Documents {
    reader: Box<dyn Read + Send>,
    file: PathBuf,
    offset: u64,
    done: bool,
}

impl Iterator for Documents {
    type Item = Result<Document, DumpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let read = self.read();
        self.done = !matches!(read, Ok(Some(_)));
        read.transpose()
    }
}

impl Documents {
    fn read(&mut self) -> Result<Option<Document>, DumpError> {
        let (file, offset) = (&self.file, self.offset);
        let mut length = [0u8; 4];
        let got = read_up_to(&mut self.reader, &mut length)
            .map_err(|error| DumpError::Unreadable { file: file.clone(), error })?;
        match got {
            0 => return Ok(None),
            4 => {}
            _ => return Err(DumpError::Truncated { file: file.clone(), offset }),
        }
        let size = i32::from_le_bytes(length);
        let size = usize::try_from(size).ok().filter(|s| (5..=MAX_DOCUMENT).contains(s)).ok_or_else(|| {
            DumpError::NotBson { file: file.clone(), offset, why: format!("claims a length of {size} bytes") }
        })?;
        let mut bytes = vec![0u8; size];
        bytes[..4].copy_from_slice(&length);
        match self.reader.read_exact(&mut bytes[4..]) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::UnexpectedEof => {
                return Err(DumpError::Truncated { file: file.clone(), offset });
            }
            Err(error) => return Err(DumpError::Unreadable { file: file.clone(), error }),
        }
        let document = Document::from_reader(bytes.as_slice()).map_err(|e| DumpError::NotBson {
            file: file.clone(),
            offset,
            why: e.to_string(),
        })?;
        self.offset += size as u64;
        Ok(Some(document))
    }
}

/// Reads until `buffer` is full or the input ends; how many bytes were read.
fn read_up_to(reader: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn read_all(bytes: &[u8], file: &Path) -> Result<Vec<Document>, DumpError> {
        let reader = Box::new(std::io::Cursor::new(bytes.to_vec()));
        Documents { reader, file: file.to_owned(), offset: 0, done: false }.collect()
    }

    fn written(documents: &[Document]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for d in documents {
            d.to_writer(&mut bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        bytes
    }

    #[test]
    fn documents_are_read_one_after_another_and_a_cut_one_is_named() {
        let bytes = written(&[doc! {"user": "alice"}, doc! {"user": "bob"}]);
        let read = read_all(&bytes, Path::new("users.bson")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].get_str("user").ok(), Some("bob"));
        let cut = &bytes[..bytes.len() - 3];
        let error = read_all(cut, Path::new("users.bson")).err().map(|e| e.to_string());
        let first = doc! {"user": "alice"};
        let offset = written(&[first]).len();
        assert_eq!(error, Some(format!("users.bson: truncated: the document at byte {offset} ends early")));
        let error = read_all(b"not bson at all", Path::new("users.bson")).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.starts_with("users.bson: not BSON: the document at byte 0")));
    }
}
