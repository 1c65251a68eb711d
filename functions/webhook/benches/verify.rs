//! The in-process work per webhook request (signature check + envelope parse) beside the cost
//! of HMAC-SHA256 alone over the same bytes, for a typical (2 KB) and a large (256 KB) body.
//!
//! Run: `cargo bench -p webhook -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use reimbi_shared::domain::{CompanyId, EventId, SigningSecret, WebhookEnvelope, sign, verify_signature};
use secrecy::SecretString;
use serde_json::json;

/// A signed `candidateStageChange` padded with application custom fields to about `size` bytes,
/// so the parser sees nested JSON as Ashby sends it, not one long string.
fn stage_change_of_size(size: usize) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut body = Vec::new();
    let mut i = 0;
    loop {
        let envelope = json!({
            "webhookActionId": "9c1f3a52-6d0e-4b7a-9f7e-2a41d0c8e5b1",
            "action": "candidateStageChange",
            "data": { "application": {
                "id": "4f6a2c1e-8b3d-4e7f-a1c2-5d9e0b7f3a64",
                "status": "Active",
                "candidate": { "id": "b2e47d19-3c5a-4f8e-9d61-07a8c3f2e4d5", "name": "Jane Doe" },
                "currentInterviewStage": { "id": "e1d2c3b4", "title": "Onsite", "type": "Active" },
                "hiringTeam": [ { "userId": "u1", "firstName": "Rae", "lastName": "Cruiter",
                                  "email": "rae@acme.example", "role": "Recruiter" } ],
                "customFields": fields,
            } }
        });
        let next = serde_json::to_vec(&envelope).unwrap();
        if next.len() > size {
            return if body.is_empty() { next } else { body };
        }
        body = next;
        fields.push(json!({ "id": format!("0f1e2d3c-4b5a-4968-8776-{i:012}"), "isPrivate": false,
                            "title": format!("Field number {i}"), "value": "some value, a few words long" }));
        i += 1;
    }
}

fn bench(c: &mut Criterion) {
    let secret = SigningSecret::new(SecretString::from("whsec-example-3f9a1c7e5b2d4a6c8e0f1a3b5c7d9e1f".to_owned()));
    let company = CompanyId::parse("acme").unwrap();
    let mut group = c.benchmark_group("webhook");
    for (label, size) in [("2KB", 2 * 1024), ("256KB", 256 * 1024)] {
        let body = stage_change_of_size(size);
        let header = sign(&secret, &body);
        group.throughput(Throughput::Bytes(body.len() as u64));

        group.bench_with_input(BenchmarkId::new("hmac_sha256_alone", label), &body, |b, body| {
            b.iter(|| {
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.key_bytes()).unwrap();
                mac.update(black_box(body));
                black_box(mac.finalize().into_bytes())
            })
        });
        group.bench_with_input(BenchmarkId::new("verify_and_parse", label), &body, |b, body| {
            b.iter(|| {
                let verified = verify_signature(&secret, Some(header.as_bytes()), black_box(body)).unwrap();
                let envelope = WebhookEnvelope::parse(verified.bytes()).unwrap();
                let id = EventId::derive(&company, envelope.webhook_action_id.as_deref(), verified.bytes());
                // The handler also copies the verified body into the queue message.
                let message_body = String::from_utf8(verified.bytes().to_vec()).unwrap();
                black_box((envelope, id, message_body))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
