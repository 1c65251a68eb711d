//! Test support lives in it/; this crate only hosts the integration test binary.
