//! Reading a file that someone else may have put in place: only a regular file, and
//! never more than a cap, so a FIFO cannot block us and `/dev/zero` cannot fill memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Reads the regular file at `path`, failing on any other kind of file or past `cap` bytes.
///
/// The error never names the path (the caller does, in its own words): it says what
/// the file is (`is a FIFO, not a regular file`) or that it is larger than the cap.
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    read_capped(open_regular(path)?, cap)
}

/// The last `cap` bytes of the regular file at `path`, from the first line that starts
/// within them, and whether anything before was left out: for a log of lines, whose
/// newest lines matter most and which must never be refused for its size.
pub fn read_regular_tail(path: &Path, cap: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len <= cap {
        return Ok((read_capped(file, cap)?, false));
    }
    // One byte before the window tells whether the window starts on a line.
    file.seek(SeekFrom::Start(len - cap - 1))?;
    let mut bytes = read_capped(file, cap + 1)?;
    let start = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1);
    bytes.drain(..start);
    Ok((bytes, true))
}

/// Opens the regular file at `path` for reading, refusing every other kind.
fn open_regular(path: &Path) -> io::Result<File> {
    // O_NONBLOCK: opening a FIFO with no writer would otherwise wait for one forever.
    // It changes nothing for a regular file, the only kind read past the fstat below.
    let file = OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a plain file"
        };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is {what}, not a regular file")));
    }
    Ok(file)
}

fn read_capped(file: File, cap: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // One byte past the cap tells "exactly at the cap" from "larger" without reading on.
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("is larger than the limit of {} bytes", cap)));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn reads_a_regular_file_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_regular(&path, 5).unwrap(), b"12345");
        let err = read_regular(&path, 4).unwrap_err();
        assert_eq!(err.to_string(), "is larger than the limit of 4 bytes");
    }

    #[test]
    fn the_tail_of_a_large_file_starts_on_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"one\ntwo\nthree\n").unwrap();
        assert_eq!(read_regular_tail(&path, 100).unwrap(), (b"one\ntwo\nthree\n".to_vec(), false));
        // A window that starts exactly on a line keeps it; one that starts inside a line drops its rest.
        assert_eq!(read_regular_tail(&path, 10).unwrap(), (b"two\nthree\n".to_vec(), true));
        assert_eq!(read_regular_tail(&path, 13).unwrap(), (b"two\nthree\n".to_vec(), true));
        assert_eq!(read_regular_tail(&path, 9).unwrap(), (b"three\n".to_vec(), true));
        assert_eq!(read_regular_tail(&path, 3).unwrap(), (Vec::new(), true));
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let started = Instant::now();
        let err = read_regular(&path, 1024).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(err.to_string(), "is a FIFO, not a regular file");
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let err = read_regular(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err.to_string(), "is a character device, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular(dir.path(), 1024).unwrap_err();
        assert_eq!(err.to_string(), "is a directory, not a regular file");
        let err = read_regular(&dir.path().join("missing"), 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
