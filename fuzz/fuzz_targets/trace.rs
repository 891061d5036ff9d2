//! A trace file's bytes, read as pcap or pcapng by the project's own reader. Nothing may panic;
//! a read that stops names the packet after the ones delivered, and no frame is longer than
//! the reader's buffer may ever grow.
#![no_main]

use std::io::Cursor;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use throttlewatch::capture::{CaptureError, TraceFile};

fuzz_target!(|data: &[u8]| {
    let source = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut file) = TraceFile::from_reader(PathBuf::from("fuzz"), source) else { return };
    let mut delivered = 0u64;
    let result = file.for_each_packet(|_, _, frame, _| {
        assert!(frame.len() < 16 * 1024 * 1024);
        delivered += 1;
    });
    match result {
        Ok(n) => assert_eq!(n, delivered),
        Err(CaptureError::Packet { packet, .. }) => assert_eq!(packet, delivered + 1),
        Err(CaptureError::Open { .. }) => unreachable!("the file was opened"),
    }
});
