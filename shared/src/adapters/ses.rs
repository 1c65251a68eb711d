//! SES (v2) adapter: sends the invitation as a raw MIME message (both parts, see
//! [`crate::adapters::mime`]) and returns SES's message id.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};

use crate::adapters::mime;
use crate::ports::{MailError, Mailer, OutgoingEmail};

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// A fresh `Message-ID` (without brackets) in the sender's domain.
fn message_id(email: &OutgoingEmail) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    let domain = email.from.as_str().rsplit_once('@').map_or("reimbi.invalid", |(_, d)| d);
    format!("{}@{domain}", hex::encode(bytes))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let raw = mime::render(email, &message_id(email), &chrono::Utc::now().to_rfc2822());
        let content = EmailContent::builder()
            .raw(
                RawMessage::builder()
                    .data(Blob::new(raw.into_bytes()))
                    .build()
                    .map_err(|e| MailError::Rejected(e.into()))?,
            )
            .build();
        let res = self
            .client
            .send_email()
            .from_email_address(email.from.as_str())
            .destination(Destination::builder().to_addresses(email.to.as_str()).build())
            .content(content)
            .send()
            .await;
        match res {
            Ok(out) => out.message_id.ok_or_else(|| MailError::Unavailable("SES returned no message id".into())),
            Err(e) => {
                let permanent = matches!(
                    e.as_service_error(),
                    Some(
                        SendEmailError::MessageRejected(_)
                            | SendEmailError::MailFromDomainNotVerifiedException(_)
                            | SendEmailError::AccountSuspendedException(_)
                            | SendEmailError::BadRequestException(_)
                            | SendEmailError::NotFoundException(_)
                    )
                );
                Err(if permanent { MailError::Rejected(Box::new(e)) } else { MailError::Unavailable(Box::new(e)) })
            }
        }
    }
}
