//! Model decoding: any bytes must give a model or a typed error, never a crash. Loaded models
//! also run one small input, which exercises planning and shape checks.
#![no_main]

use attesta_node::inference::{LoadOptions, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_bytes(data, &LoadOptions::default()) {
        let x = attesta_sdk::input::Tensor::new(
            vec![1, 4],
            attesta_sdk::input::Values::F32(vec![0.5; 4]),
        );
        if let Ok(input) = x.and_then(|x| attesta_sdk::input::Input::new(vec![x])) {
            let _ = model.run_canonical(&input.encode());
        }
    }
});
