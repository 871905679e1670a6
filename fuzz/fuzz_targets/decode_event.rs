//! Any bytes on the events topic: decoded into an event or refused with a reason; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = surgstream_proto::decode_event(data) {
        // What decodes re-encodes to bytes that decode to the same encoding (compared as bytes:
        // a NaN field is not equal to itself).
        let bytes = surgstream_proto::encode_event(&event);
        let again = surgstream_proto::decode_event(&bytes).expect("a decoded event re-encodes");
        assert_eq!(surgstream_proto::encode_event(&again), bytes);
    }
});
