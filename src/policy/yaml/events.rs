//! The YAML event stream of a document, from the same libyaml parser yaml_serde is built
//! on. yaml_serde shows a position only inside an error; this stream shows the position
//! of every node in one pass, so locating many problems stays linear.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use libyaml_rs as sys;

/// Where an event starts: 1-based line and column, as yaml_serde reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

/// One parser event; anchors and alias names are raw bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Scalar { value: String, anchor: Option<Vec<u8>> },
    Alias(Vec<u8>),
    SequenceStart { anchor: Option<Vec<u8>> },
    SequenceEnd,
    MappingStart { anchor: Option<Vec<u8>> },
    MappingEnd,
    DocumentEnd,
}

/// The events of `text` up to the end of the stream or the first syntax error.
/// A syntax error just ends the stream: yaml_serde reports it, with its own message.
pub struct Events<'a> {
    parser: Box<MaybeUninit<sys::yaml_parser_t>>,
    live: bool,
    // libyaml keeps a pointer into the text for as long as the parser exists.
    text: PhantomData<&'a str>,
}

impl<'a> Events<'a> {
    /// Starts parsing `text`.
    pub fn new(text: &'a str) -> Self {
        let mut parser = Box::new(MaybeUninit::<sys::yaml_parser_t>::uninit());
        let p = parser.as_mut_ptr();
        // SAFETY: as in yaml_serde's own parser: the boxed parser never moves, is
        // initialised before any other call, and the text outlives it (`'a`).
        let live = unsafe {
            let live = !sys::yaml_parser_initialize(p).fail;
            if live {
                sys::yaml_parser_set_encoding(p, sys::YAML_UTF8_ENCODING);
                sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as _);
            }
            live
        };
        Events { parser, live, text: PhantomData }
    }
}

impl Iterator for Events<'_> {
    type Item = (Event, Mark);

    fn next(&mut self) -> Option<(Event, Mark)> {
        while self.live {
            let mut raw = MaybeUninit::<sys::yaml_event_t>::uninit();
            let p = self.parser.as_mut_ptr();
            // SAFETY: the parser is initialised (`live`); a parsed event is read only
            // through the union member its type names, then freed exactly once.
            let (event, mark) = unsafe {
                if (&(*p)).error != sys::YAML_NO_ERROR || sys::yaml_parser_parse(p, raw.as_mut_ptr()).fail {
                    self.live = false;
                    return None;
                }
                let ev = &*raw.as_ptr();
                let mark = Mark { line: ev.start_mark.line as usize + 1, column: ev.start_mark.column as usize + 1 };
                let event = match ev.type_ {
                    sys::YAML_SCALAR_EVENT => {
                        let s = ev.data.scalar;
                        let value = std::slice::from_raw_parts(s.value, s.length as usize);
                        Some(Event::Scalar {
                            value: String::from_utf8_lossy(value).into_owned(),
                            anchor: c_bytes(s.anchor),
                        })
                    }
                    sys::YAML_ALIAS_EVENT => Some(Event::Alias(c_bytes(ev.data.alias.anchor).unwrap_or_default())),
                    sys::YAML_SEQUENCE_START_EVENT => {
                        Some(Event::SequenceStart { anchor: c_bytes(ev.data.sequence_start.anchor) })
                    }
                    sys::YAML_SEQUENCE_END_EVENT => Some(Event::SequenceEnd),
                    sys::YAML_MAPPING_START_EVENT => {
                        Some(Event::MappingStart { anchor: c_bytes(ev.data.mapping_start.anchor) })
                    }
                    sys::YAML_MAPPING_END_EVENT => Some(Event::MappingEnd),
                    sys::YAML_DOCUMENT_END_EVENT => Some(Event::DocumentEnd),
                    sys::YAML_STREAM_END_EVENT => {
                        self.live = false;
                        None
                    }
                    _ => None,
                };
                sys::yaml_event_delete(raw.as_mut_ptr());
                (event, mark)
            };
            if let Some(event) = event {
                return Some((event, mark));
            }
        }
        None
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        // SAFETY: yaml_parser_initialize zeroes the whole struct first, so even a
        // parser whose initialisation failed half-way is safe to delete.
        unsafe { sys::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

/// Copies a NUL-terminated libyaml string (an anchor name), if there is one.
///
/// # Safety
/// `ptr` is null or points at a NUL-terminated string that lives for this call.
unsafe fn c_bytes(ptr: *const u8) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: see the function's contract.
    Some(unsafe { std::ffi::CStr::from_ptr(ptr.cast()) }.to_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_anchors_and_positions() {
        let got: Vec<(Event, Mark)> = Events::new("a: &x [1]\nb: *x\n").collect();
        let m = |line, column| Mark { line, column };
        assert_eq!(got[0], (Event::MappingStart { anchor: None }, m(1, 1)));
        assert_eq!(got[1], (Event::Scalar { value: "a".into(), anchor: None }, m(1, 1)));
        assert_eq!(got[2], (Event::SequenceStart { anchor: Some(b"x".to_vec()) }, m(1, 4)));
        assert_eq!(got[5], (Event::Scalar { value: "b".into(), anchor: None }, m(2, 1)));
        assert_eq!(got[6], (Event::Alias(b"x".to_vec()), m(2, 4)));
        assert_eq!(got[7].0, Event::MappingEnd);
        assert_eq!(got[8].0, Event::DocumentEnd);
        assert_eq!(got.len(), 9);
    }

    #[test]
    fn a_syntax_error_ends_the_stream() {
        let got: Vec<(Event, Mark)> = Events::new("a: [1, 2\nb: 3\n").collect();
        assert!(got.len() < 6, "{got:?}");
        assert_eq!(Events::new("").count(), 0);
    }
}
