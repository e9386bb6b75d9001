//! Shared input vectors (`sdk/testdata/inputs.json`): ATI1 encodings and the magika demo model's
//! inputs, which the TypeScript sdk (`sdk/ts/test/unit/input.test.ts`) reproduces byte for byte so
//! a browser and a Rust client give one file the same `inputHash`. Regenerate after an
//! intentional change with `ATTESTA_UPDATE_VECTORS=1 cargo test -p attesta-sdk --test it
//! input_vectors`.

use alloy::primitives::hex;
use attesta_sdk::{
    input::{Input, Tensor, Values, magika_input},
    input_hash,
};
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/inputs.json");

/// The long magika case's file: 10 000 printable bytes, `33 + i % 200` (both sides generate it).
fn long_file() -> Vec<u8> {
    (0..10_000u32).map(|i| (i % 200) as u8 + 33).collect()
}

fn vectors() -> Value {
    let tensors = Input::new(vec![
        Tensor::new(vec![2, 2], Values::F32(vec![1.0, -2.5, 0.0, 3.25])).unwrap(),
        Tensor::new(vec![3], Values::I64(vec![i64::MIN, 0, i64::MAX])).unwrap(),
        Tensor::new(vec![], Values::I32(vec![-7])).unwrap(),
        Tensor::new(vec![2, 0], Values::U8(vec![])).unwrap(),
        Tensor::new(vec![3], Values::U8(vec![0, 127, 255])).unwrap(),
    ])
    .unwrap();
    let encoded = tensors.encode();
    let ati1 = json!([{
        "tensors": [
            {"dtype": "f32", "shape": [2, 2], "values": [1.0, -2.5, 0.0, 3.25]},
            {"dtype": "i64", "shape": [3], "values": [i64::MIN.to_string(), "0", i64::MAX.to_string()]},
            {"dtype": "i32", "shape": [], "values": [-7]},
            {"dtype": "u8", "shape": [2, 0], "values": []},
            {"dtype": "u8", "shape": [3], "values": [0, 127, 255]},
        ],
        "encoded": hex::encode_prefixed(&encoded),
        "inputHash": input_hash(&encoded),
    }]);

    let files: [(&str, Vec<u8>); 6] = [
        ("rust", b"  fn main() {}\n".to_vec()),
        ("python whitespace", b"\x0b\x0c \tab\n\r\x0b".to_vec()),
        ("only whitespace", b"   ".to_vec()),
        ("empty", Vec::new()),
        (
            "pdf",
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n".to_vec(),
        ),
        ("binary 3000", (0..3000u32).map(|i| (i * 7 % 256) as u8).collect()),
    ];
    let mut magika: Vec<Value> = files
        .iter()
        .map(|(name, file)| {
            let encoded = magika_input(file).encode();
            json!({
                "name": name,
                "file": hex::encode_prefixed(file),
                "inputHash": input_hash(&encoded),
                "encodedLength": encoded.len(),
            })
        })
        .collect();
    let long = magika_input(&long_file()).encode();
    magika.push(json!({
        "name": "long",
        "generator": "10000 bytes, byte i = 33 + i % 200",
        "inputHash": input_hash(&long),
        "encodedLength": long.len(),
    }));

    json!({
        "description": "Attesta shared input vectors (ATI1, magika features): every implementation must reproduce each inputHash byte for byte.",
        "version": 1,
        "ati1": ati1,
        "magika": magika,
    })
}

#[test]
fn shared_input_vectors_are_reproduced() {
    let fresh = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("ATTESTA_UPDATE_VECTORS").is_some() {
        std::fs::write(PATH, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(PATH).expect("sdk/testdata/inputs.json is missing");
    assert_eq!(
        committed, fresh,
        "input vectors changed: if intended, regenerate (see module docs)"
    );
}

#[test]
fn input_vectors_decode_to_what_they_encode() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    for case in v["ati1"].as_array().unwrap() {
        let bytes = hex::decode(case["encoded"].as_str().unwrap()).unwrap();
        assert_eq!(Input::decode(&bytes).unwrap().encode(), bytes);
    }
    let long = v["magika"].as_array().unwrap().iter().find(|c| c["name"] == "long").unwrap();
    assert_eq!(long["inputHash"], json!(input_hash(magika_input(&long_file()).encode())));
}
