//! ATI1 input decoding: any bytes give an input or an error, never a crash, and whatever decodes
//! re-encodes to exactly the same bytes (one encoding per input, so one inputHash).
#![no_main]

use attesta_sdk::input::{Input, magika_features};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = Input::decode(data) {
        assert_eq!(input.encode(), data);
    }
    assert_eq!(magika_features(data).len(), 2048);
});
