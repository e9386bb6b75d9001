//! `attesta-relayer`: the relayer's command line (`attesta-relayer --help`).

fn main() {}
