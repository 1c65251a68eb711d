//! All integration tests in one binary (one link of the AWS SDK instead of many).
//!
//! Tests that need the AWS emulator read `AWS_ENDPOINT_URL` (set by `make test`, which starts
//! moto) and fail loudly when it is missing or unreachable: they never skip.

mod harness;

mod aws_adapters;
mod local;
mod processor;
mod settings;
mod store_conformance;
mod template;
mod webhook;
