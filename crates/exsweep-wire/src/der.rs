//! A bounded DER reader (definite lengths of up to three octets), shared by the SPNEGO and
//! certificate decoders.

use crate::DecodeError;

/// A DER reader over one buffer; every length is checked against what is left.
pub(crate) struct Der<'a> {
    buf: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Der<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Der { buf, at: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.at).ok_or(DecodeError::Truncated {
            what,
            offset: self.at,
            need: 1,
            have: 0,
        })?;
        self.at += 1;
        Ok(b)
    }

    /// The next element: its tag and its content.
    pub(crate) fn element(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), DecodeError> {
        let tag = self.byte(what)?;
        let first = self.byte(what)?;
        let len = match first {
            0..=0x7f => first as usize,
            0x81..=0x83 => {
                let mut len = 0usize;
                for _ in 0..(first & 0x7f) {
                    len = (len << 8) | self.byte(what)? as usize;
                }
                len
            }
            _ => {
                return Err(DecodeError::invalid(
                    what,
                    format!("unsupported DER length form 0x{first:02x}"),
                ))
            }
        };
        let have = self.buf.len() - self.at;
        if len > have {
            return Err(DecodeError::Truncated {
                what,
                offset: self.at,
                need: len,
                have,
            });
        }
        let content = &self.buf[self.at..self.at + len];
        self.at += len;
        Ok((tag, content))
    }

    pub(crate) fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.element(what)? {
            (t, content) if t == tag => Ok(content),
            (t, _) => Err(DecodeError::invalid(
                what,
                format!("tag 0x{t:02x} where 0x{tag:02x} was expected"),
            )),
        }
    }
}
