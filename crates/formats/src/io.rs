//! Small I/O pieces shared by the format modules.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use raster::{ImageInfo, Result, Samples, Sink, Strip};

use crate::output::AtomicFile;
use crate::STRIP_BYTES;

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
pub(crate) fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Rows in the strip starting at row `next`, or `None` past the last row.
pub(crate) fn next_rows(info: &ImageInfo, next: u32) -> Option<u32> {
    (next < info.height).then(|| info.rows_for_bytes(STRIP_BYTES).min(info.height - next))
}

/// Writes a header, then every strip's samples big-endian and interleaved
/// (KRO and PNM store pixels exactly so).
pub(crate) struct RawWriter {
    out: AtomicFile,
    buf: Vec<u8>,
}

impl RawWriter {
    pub(crate) fn new(out: AtomicFile, header: &[u8]) -> Result<RawWriter> {
        out.file().write_all(header).map_err(|e| out.err(e))?;
        Ok(RawWriter { out, buf: Vec::new() })
    }
}

impl Sink for RawWriter {
    fn write(&mut self, strip: Strip) -> Result<()> {
        let bytes = match &strip.samples {
            Samples::U8(v) => v.as_slice(),
            other => {
                self.buf.clear();
                other.extend_be_bytes(&mut self.buf);
                &self.buf
            }
        };
        self.out.file().write_all(bytes).map_err(|e| self.out.err(e))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.commit()
    }
}
