//! The invitation email a candidate receives (contract section 3, step 6): a subject, a
//! plain-text part and an HTML part rendered from the templates in `shared/templates/`.
//!
//! Candidate names and policy texts come from outside (Ashby, admins), so the HTML template
//! is rendered with auto-escaping on; the text part shows them literally.

use std::sync::LazyLock;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior};
use serde::Serialize;

/// Where candidates write for help.
pub const SUPPORT_EMAIL: &str = "support@reimbi.com";
/// How long an account set-up link works.
pub const INVITE_LINK_VALID_DAYS: i64 = 7;

/// Shown when a policy has no submission guidelines of its own.
const DEFAULT_GUIDELINES: &str =
    "Once your account is set up, add each expense in Reimbi with a photo of its receipt and submit it for approval.";

/// What the invitation says.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationInput<'a> {
    /// The candidate's name as Ashby has it; blank greets "there".
    pub candidate_name: &'a str,
    /// The company's name, or its id when Reimbi knows no name.
    pub company_name: &'a str,
    pub policy_name: &'a str,
    pub submission_guidelines: &'a str,
    /// The single-use account set-up link.
    pub setup_url: &'a str,
    pub support_email: &'a str,
}

/// The rendered email.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedInvitation {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Serialize)]
struct Context<'a> {
    subject: &'a str,
    greeting_name: &'a str,
    company_name: &'a str,
    policy_name: &'a str,
    submission_guidelines: &'a str,
    /// The guidelines as paragraphs of lines, so the HTML keeps the admin's line breaks.
    guideline_paragraphs: Vec<Vec<&'a str>>,
    setup_url: &'a str,
    support_email: &'a str,
    link_valid_days: i64,
}

const SUBJECT: &str = "invitation_subject.txt";
const TEXT: &str = "invitation.txt";
const HTML: &str = "invitation.html";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Escaping is decided here, not by minijinja's defaults, so that it cannot silently change.
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.set_formatter(html_formatter);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    for (name, source) in [
        (SUBJECT, include_str!("../../templates/invitation_subject.txt")),
        (TEXT, include_str!("../../templates/invitation.txt")),
        (HTML, include_str!("../../templates/invitation.html")),
    ] {
        env.add_template(name, source).expect("the invitation templates parse (unit-tested)");
    }
    env
});

/// Renders the invitation. The templates are compiled into the binary and their rendering is
/// covered by the tests below, so a failure here is a programming error.
pub fn render_invitation(input: &InvitationInput<'_>) -> RenderedInvitation {
    let greeting_name = match input.candidate_name.trim() {
        "" => "there",
        name => name,
    };
    let guidelines = match input.submission_guidelines.trim() {
        "" => DEFAULT_GUIDELINES,
        g => g,
    };
    let mut ctx = Context {
        subject: "",
        greeting_name,
        company_name: input.company_name.trim(),
        policy_name: input.policy_name.trim(),
        submission_guidelines: guidelines,
        guideline_paragraphs: paragraphs(guidelines),
        setup_url: input.setup_url,
        support_email: input.support_email,
        link_valid_days: INVITE_LINK_VALID_DAYS,
    };
    let render = |name: &str, ctx: &Context<'_>| {
        TEMPLATES
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|e| panic!("the invitation template {name} renders (unit-tested): {e}"))
    };
    // A header is one line: whatever line breaks the inputs carry become spaces.
    let subject = render(SUBJECT, &ctx).split_whitespace().collect::<Vec<_>>().join(" ");
    ctx.subject = &subject;
    let text = render(TEXT, &ctx);
    let html = render(HTML, &ctx);
    RenderedInvitation { subject, text, html }
}

/// minijinja's HTML escaping, except that `/` stays as it is: links and addresses then read
/// normally in the HTML source (and in tests that look for them), and `/` is harmless in text
/// and in quoted attributes.
fn html_formatter(out: &mut Output<'_>, state: &State<'_, '_>, value: &Value) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(s) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let mut escaped = String::with_capacity(s.len());
            for c in s.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#x27;"),
                    c => escaped.push(c),
                }
            }
            out.write_str(&escaped)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Splits text into paragraphs (separated by blank lines) of non-blank lines.
fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(name: &'a str, guidelines: &'a str) -> InvitationInput<'a> {
        InvitationInput {
            candidate_name: name,
            company_name: "Acme",
            policy_name: "Onsite Interview",
            submission_guidelines: guidelines,
            setup_url: "https://app.reimbi.example/invitations/tok_abc",
            support_email: SUPPORT_EMAIL,
        }
    }

    #[test]
    fn both_parts_greet_the_candidate_and_carry_the_link_guidelines_and_support_address() {
        let r = render_invitation(&input("Jane Doe", "Keep your receipts.\nSubmit within 30 days."));
        assert_eq!(r.subject, "Your interview expenses with Acme: set up your Reimbi account");
        for part in [&r.text, &r.html] {
            assert!(part.contains("Hi Jane Doe,"), "{part}");
            assert!(part.contains("https://app.reimbi.example/invitations/tok_abc"), "{part}");
            assert!(part.contains("Keep your receipts."), "{part}");
            assert!(part.contains("Submit within 30 days."), "{part}");
            assert!(part.contains("support@reimbi.com"), "{part}");
            assert!(part.contains("Onsite Interview"), "{part}");
        }
        assert!(r.text.contains("Keep your receipts.\nSubmit within 30 days."));
        assert!(r.html.contains("<p>Keep your receipts.<br>Submit within 30 days.</p>"));
        assert!(r.html.contains("href=\"https://app.reimbi.example/invitations/tok_abc\""));
        assert!(!r.text.contains('<'), "the text part has no markup: {}", r.text);
    }

    #[test]
    fn a_name_with_html_is_escaped_in_the_html_part_and_literal_in_the_text_part() {
        let name = "<script>alert('x')</script> & \"Bob\"";
        let r = render_invitation(&input(name, "Use <b>bold</b> receipts"));
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(
            r.html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Bob&quot;"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<b>bold</b>"));
        assert!(r.html.contains("&lt;b&gt;bold&lt;/b&gt;"));
        assert!(r.text.contains(&format!("Hi {name},")));
        assert!(r.text.contains("Use <b>bold</b> receipts"));
    }

    #[test]
    fn a_link_cannot_break_out_of_its_attribute() {
        let mut i = input("Jane", "g");
        i.setup_url = "https://x.example/invitations/a\"onmouseover=\"x";
        let r = render_invitation(&i);
        assert!(!r.html.contains("a\"onmouseover"));
        assert!(r.html.contains("a&quot;onmouseover=&quot;x"));
    }

    #[test]
    fn a_missing_name_greets_there_and_missing_guidelines_get_a_default() {
        let r = render_invitation(&input("  ", ""));
        assert!(r.text.contains("Hi there,"));
        assert!(r.html.contains("Hi there,"));
        assert!(r.text.contains(DEFAULT_GUIDELINES));
    }

    #[test]
    fn the_subject_is_one_line_whatever_the_company_name() {
        let mut i = input("Jane", "g");
        i.company_name = "Acme\r\nBcc: eve@evil.example";
        let r = render_invitation(&i);
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
    }

    #[test]
    fn guideline_paragraphs_follow_blank_lines() {
        assert_eq!(paragraphs("a\nb\n\n\nc  \n"), vec![vec!["a", "b"], vec!["c"]]);
        assert!(paragraphs("\n \n").is_empty());
    }
}
