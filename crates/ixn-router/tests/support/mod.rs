//! Test support: an in-memory server for paused-clock strategy tests (`fake`).

#![allow(dead_code)] // each test binary uses only some of the helpers

pub mod fake;
