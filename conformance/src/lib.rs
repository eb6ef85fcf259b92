//! Conformance suite for batch endpoints.

pub mod fixture;
