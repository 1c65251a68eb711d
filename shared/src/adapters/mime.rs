//! RFC 5322 / MIME rendering of an [`OutgoingEmail`]: `multipart/alternative` with a plain-text
//! and an HTML part, both quoted-printable. SES gets it as a raw message (so both parts
//! survive; see toolchain notes) and the local runner writes it as an `.eml` file.

use base64::Engine as _;

use crate::ports::OutgoingEmail;

/// Renders the message. `message_id` is the `Message-ID` header value without brackets;
/// `date` is an RFC 2822 date.
pub fn render(email: &OutgoingEmail, message_id: &str, date: &str) -> String {
    let boundary = format!("reimbi-{}", &hex::encode(sha_prefix(message_id)));
    let mut out = String::new();
    out.push_str(&format!("From: Reimbi <{}>\r\n", email.from));
    out.push_str(&format!("To: {}\r\n", mailbox(&email.to_name, email.to.as_str())));
    out.push_str(&format!("Subject: {}\r\n", encode_header(&email.subject)));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("Message-ID: <{message_id}>\r\n"));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"));
    for (kind, body) in [("text/plain", &email.text), ("text/html", &email.html)] {
        out.push_str(&format!("--{boundary}\r\n"));
        out.push_str(&format!("Content-Type: {kind}; charset=UTF-8\r\n"));
        out.push_str("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        out.push_str(&quoted_printable(body));
        out.push_str("\r\n");
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

fn sha_prefix(s: &str) -> [u8; 8] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(s.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// `"Name" <addr>` with the display name encoded when it is not plain ASCII.
fn mailbox(name: &str, addr: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    if clean.trim().is_empty() {
        return format!("<{addr}>");
    }
    if clean.is_ascii() && !clean.contains(['"', '\\']) {
        format!("\"{clean}\" <{addr}>")
    } else {
        format!("{} <{addr}>", encode_word(&clean))
    }
}

/// Header text: as is when printable ASCII, else an RFC 2047 encoded word.
fn encode_header(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() { clean } else { encode_word(&clean) }
}

fn encode_word(s: &str) -> String {
    format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
}

/// Quoted-printable (RFC 2045) with CRLF line breaks and soft breaks under 76 characters.
pub fn quoted_printable(s: &str) -> String {
    let mut out = String::new();
    let text = s.replace("\r\n", "\n");
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let mut len = 0;
        let bytes = line.as_bytes();
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let enc = if (b == b' ' || b == b'\t') && last {
                format!("={b:02X}")
            } else if (33..=126).contains(&b) && b != b'=' || b == b' ' || b == b'\t' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if len + enc.len() > 75 {
                out.push_str("=\r\n");
                len = 0;
            }
            len += enc.len();
            out.push_str(&enc);
        }
    }
    out
}

/// Decodes quoted-printable text (for tests and tools that read `.eml` files back).
pub fn decode_quoted_printable(s: &str) -> String {
    let mut bytes = Vec::new();
    let src = s.replace("=\r\n", "").replace("=\n", "");
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            bytes.push(v);
            i += 3;
            continue;
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
}

/// The decoded text of the part with this content type (`text/plain` or `text/html`).
pub fn part(message: &str, content_type: &str) -> Option<String> {
    let start = message.find(&format!("Content-Type: {content_type}"))?;
    let rest = &message[start..];
    let body_start = rest.find("\r\n\r\n")? + 4;
    let body = &rest[body_start..];
    let end = body.find("\r\n--").unwrap_or(body.len());
    Some(decode_quoted_printable(&body[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;

    fn email(name: &str, text: &str, html: &str) -> OutgoingEmail {
        OutgoingEmail {
            from: EmailAddress::parse("invites@reimbi.example").unwrap(),
            to: EmailAddress::parse("jane@example.com").unwrap(),
            to_name: name.into(),
            subject: "Your interview expenses with Acme".into(),
            text: text.into(),
            html: html.into(),
        }
    }

    #[test]
    fn both_parts_round_trip_through_quoted_printable() {
        let text = format!("Hi Zoë,\nline with = sign and trailing space \n{}", "x".repeat(200));
        let html = "<p>Hi Zo&euml; &lt;b&gt;</p>";
        let m = render(&email("Zoë Doe", &text, html), "abc@reimbi", "Fri, 04 Dec 2026 10:00:00 +0000");
        assert_eq!(part(&m, "text/plain").unwrap(), text);
        assert_eq!(part(&m, "text/html").unwrap(), html);
        assert!(m.lines().all(|l| l.len() <= 998));
        assert!(m.contains("To: =?UTF-8?B?"));
        assert!(m.contains("Message-ID: <abc@reimbi>"));
    }

    #[test]
    fn header_injection_through_the_name_is_impossible() {
        let m = render(&email("Eve\r\nBcc: x@evil.example", "t", "h"), "id@x", "d");
        assert!(!m.contains("\r\nBcc:"));
    }
}
