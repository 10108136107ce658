//! The wire contract between nodes and the console (the `rtc-model` crate, shared
//! with the server so both sides use one definition).

pub use rtc_model::*;
