//! Decompression on a thread of its own, so that decoding the next block overlaps writing the
//! files of the last one — as `tar -xJf` overlaps them by running `xz` as a second process.
//! Unpacking a large escrow is bound by the decoder (xz, single-threaded); in one thread,
//! every file's `open`, `write` and `fchmod` came on top of it.
//!
//! Invariants:
//!
//! - **Bounded.** The decoder runs at most [`DEPTH`] chunks of [`CHUNK`] bytes ahead of the
//!   extractor, which charges every byte against the budget as it writes it; memory stays
//!   flat whatever the archive expands to.
//! - **Nothing outlives the call.** The decoder thread is scoped: when the extractor stops,
//!   for any reason (done, refused, corrupt, a bound, a signal), its end of the channel is
//!   dropped, the decoder's next hand-off fails, and it ends before [`decoded_in_thread`]
//!   returns.
//! - **Same bytes, same errors.** The extractor reads exactly the decoded stream; a decoding
//!   error reaches it as the `io::Error` the decoder returned, at the point in the stream where
//!   it happened, and every read after it fails too.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes handed over at a time: large enough that the hand-off is noise.
const CHUNK: usize = 1 << 20;
/// Chunks the decoder may run ahead of the extractor.
const DEPTH: usize = 4;

/// Run `consume` on the stream `decoder` yields, decoded on a second thread.
pub(super) fn decoded_in_thread<R: Read + Send, T>(
    decoder: R,
    consume: impl FnOnce(&mut Decoded) -> T,
) -> T {
    let (full_tx, full_rx) = sync_channel(DEPTH);
    // Emptied buffers go back to the decoder, so each is allocated (and zeroed) once.
    let (empty_tx, empty_rx) = sync_channel(DEPTH + 2);
    std::thread::scope(|scope| {
        scope.spawn(move || decode(decoder, &full_tx, &empty_rx));
        let mut reader = Decoded {
            full: full_rx,
            empty: empty_tx,
            current: Vec::new(),
            at: 0,
            failed: false,
        };
        let out = consume(&mut reader);
        // Hang up first: the decoder then stops at its next hand-off, and the scope joins it.
        drop(reader);
        out
    })
}

fn decode(
    mut decoder: impl Read,
    full: &SyncSender<io::Result<Vec<u8>>>,
    empty: &Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = empty.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        buf.resize(CHUNK, 0);
        let mut filled = 0;
        let mut failed = None;
        while filled < CHUNK {
            match decoder.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // What was decoded before an error is handed over first, so the error comes where
        // it happened in the stream.
        buf.truncate(filled);
        if filled > 0 && full.send(Ok(buf)).is_err() {
            return; // the extractor stopped
        }
        if let Some(e) = failed {
            let _ = full.send(Err(e));
            return;
        }
        if filled < CHUNK {
            return; // the end of the stream
        }
    }
}

/// The decoded stream, as the extractor reads it.
pub(super) struct Decoded {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    failed: bool,
}

impl Read for Decoded {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "the compressed stream failed to decode earlier",
            ));
        }
        while self.at == self.current.len() {
            match self.full.recv() {
                Ok(Ok(next)) => {
                    let done = std::mem::replace(&mut self.current, next);
                    self.at = 0;
                    let _ = self.empty.try_send(done);
                }
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                // The decoder hung up: the end of the stream.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that yields `good` bytes, then fails.
    struct FailsAfter {
        good: usize,
    }

    impl Read for FailsAfter {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.good == 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad block"));
            }
            let n = out.len().min(self.good);
            out[..n].fill(7);
            self.good -= n;
            Ok(n)
        }
    }

    #[test]
    fn hands_over_every_byte_in_order() {
        let data: Vec<u8> = (0..(3 * CHUNK + 4321))
            .map(|i| u8::try_from(i % 253).unwrap())
            .collect();
        let mut got = Vec::new();
        decoded_in_thread(&data[..], |r| r.read_to_end(&mut got)).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn an_error_arrives_where_it_happened_and_stays() {
        decoded_in_thread(FailsAfter { good: CHUNK + 10 }, |r| {
            let mut got = Vec::new();
            let e = r.read_to_end(&mut got).unwrap_err();
            assert_eq!(e.to_string(), "bad block");
            // Every good byte arrived before the error.
            assert_eq!(got.len(), CHUNK + 10);
            assert!(r.read(&mut [0; 8]).is_err());
        });
    }

    #[test]
    fn stopping_early_ends_the_decoder() {
        // An endless stream: the call returns only if the decoder stops when the reader does.
        let first = decoded_in_thread(io::repeat(1), |r| {
            let mut b = [0u8; 16];
            r.read_exact(&mut b).map(|()| b[0])
        });
        assert_eq!(first.unwrap(), 1);
    }
}
