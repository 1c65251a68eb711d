//! `reimbi-local demo`: the seed's story once, end to end, against a simulated Ashby, printed
//! step by step. Every step is a real HTTP request to the real handlers; any failure exits non-zero.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::ServeArgs;
use crate::app;
use crate::token::TokenKey;

const COMPANY: &str = "acme";
const ASHBY_KEY: &str = "demo-ashby-api-key-x7Qa";

struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        if status != expect {
            bail!("{method} {path} answered {status}, expected {expect}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }
}

fn step(n: u32, title: &str) {
    println!("\n── {n}. {title}");
}

fn show(v: &Value) {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    for line in text.lines() {
        println!("   {line}");
    }
}

pub async fn run(format: reimbi_shared::telemetry::LogFormat) -> anyhow::Result<()> {
    // Quiet unless asked: the demo's own output is the story.
    if std::env::var_os("RUST_LOG").is_some() {
        reimbi_shared::telemetry::init(format);
    }
    let dir = tempfile::Builder::new().prefix("reimbi-demo-").tempdir()?;
    let data_dir = dir.path().to_path_buf();
    println!("Reimbi ⇄ Ashby: the whole story, end to end (data in {})", data_dir.display());

    step(1, "A simulated Ashby with a candidate, Jane Doe, flagged \"Send to Reimbi\"");
    let sim = ashby_sim::AshbySim::start().await;
    let demo = ashby_sim::demo_data(&sim, ASHBY_KEY);
    println!("   Ashby API at {}", sim.url());

    let args = ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data_dir.clone(),
        ashby_api_url: Some(sim.url()),
        aws: false,
    };
    let running = app::start(&args).await?;
    let base = format!("http://{}", running.addr);
    println!("   reimbi-local serving on {base}");
    let key = TokenKey::load_or_create(&data_dir)?;
    let admin = Admin {
        http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?,
        base: base.clone(),
        token: key.mint(COMPANY, "admin", chrono::Utc::now().timestamp()),
    };
    let result = story(&admin, &sim, &demo, &data_dir).await;
    running.stop().await?;
    match result {
        Ok(()) => {
            println!("\nDone: the candidate is Invited and the invitation is in the outbox.");
            Ok(())
        }
        Err(e) => Err(e.context("the demo failed")),
    }
}

async fn story(
    admin: &Admin,
    sim: &ashby_sim::AshbySim,
    demo: &ashby_sim::Demo,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use reqwest::Method;
    let c = format!("/companies/{COMPANY}");

    step(2, "Reimbi data: two reimbursement policies and the staff who approve");
    for (id, name, guidelines) in [
        (
            "onsite-interview",
            "Onsite Interview",
            "Submit travel, hotel and meal receipts within 30 days of your interview.",
        ),
        ("final-round-travel", "Final Round Travel", "Economy flights and up to two hotel nights are covered."),
    ] {
        let p = admin
            .call(
                Method::PUT,
                &format!("{c}/policies/{id}"),
                Some(json!({"name": name, "enabled": true, "submissionGuidelines": guidelines})),
                200,
            )
            .await?;
        println!("   policy {:<20} {}", p["policyId"].as_str().unwrap_or(id), name);
    }
    for (email, name) in [("rae@acme.example", "Rae Cruiter"), ("ops@acme.example", "Acme Recruiting Ops")] {
        admin
            .call(Method::PUT, &format!("{c}/staff/{email}"), Some(json!({"name": name, "canApprove": true})), 200)
            .await?;
        println!("   staff  {email:<20} can approve");
    }

    step(3, "The admin's settings: API key (checked against Ashby), approver role, backup approver");
    let settings = admin
        .call(
            Method::PUT,
            &format!("{c}/integrations/ashby"),
            Some(json!({
                "apiKey": ASHBY_KEY, "approverRole": "hiringTeam", "hiringTeamRole": "Recruiter",
                "backupApproverEmail": "ops@acme.example", "enabled": true
            })),
            200,
        )
        .await?;
    show(&settings);

    step(4, "Generate new Secret Key and API URL (pasted into Ashby's webhook settings)");
    let creds = admin.call(Method::POST, &format!("{c}/integrations/ashby/webhook-credentials"), None, 201).await?;
    let url = creds["webhookUrl"].as_str().context("no webhookUrl")?.to_owned();
    let secret = creds["secretKey"].as_str().context("no secretKey")?.to_owned();
    println!("   Webhook API URL: {url}");
    println!("   Secret Key:      {}… (shown once; {} characters)", &secret[..6], secret.len());

    step(5, "Ashby pings the new webhook");
    let pong = ashby_sim::webhook::try_deliver(&url, &secret, ashby_sim::webhook::ping()).await?;
    let status = pong.status().as_u16();
    println!("   {} {}", status, pong.text().await?);
    if status != 200 {
        bail!("the ping was answered {status}");
    }

    step(6, "A recruiter moves Jane Doe to Onsite: Ashby sends a signed candidateStageChange");
    // From here on, the simulator's call log shows only what the processor asks Ashby.
    sim.reset_calls();
    let body = demo.stage_change(None);
    let resp = ashby_sim::webhook::try_deliver(&url, &secret, body).await?;
    let status = resp.status().as_u16();
    let accepted: Value = resp.json().await?;
    println!("   {status} {accepted}");
    if status != 202 {
        bail!("the stage change was answered {status}");
    }
    let event_id = accepted["eventId"].as_str().context("no eventId")?.to_owned();

    step(7, "The processor handles the event");
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let events = admin.call(Method::GET, &format!("{c}/integrations/ashby/events?limit=10"), None, 200).await?;
        let found = events["items"]
            .as_array()
            .and_then(|items| items.iter().find(|e| e["eventId"] == event_id.as_str()).cloned());
        match found {
            Some(e) if !matches!(e["outcome"].as_str(), Some("accepted") | Some("retrying")) => break e,
            _ if Instant::now() > deadline => bail!("the event was not processed within 30 s"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    for call in sim.calls() {
        println!("   the processor called Ashby: {}", call.endpoint);
    }
    show(&event);
    if event["outcome"] != "invited" {
        bail!("the outcome is {}, expected invited", event["outcome"]);
    }

    step(8, "The candidate in Reimbi");
    let candidate_id = event["candidateId"].as_str().context("no candidateId")?;
    let candidate = admin.call(Method::GET, &format!("{c}/candidates/{candidate_id}"), None, 200).await?;
    show(&candidate);
    if candidate["status"] != "Invited" {
        bail!("the candidate's status is {}", candidate["status"]);
    }

    step(9, "The invitation email");
    let outbox = data_dir.join("outbox");
    let mut emls: Vec<_> = std::fs::read_dir(&outbox)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    emls.sort();
    let eml = emls.first().context("no email in the outbox")?;
    let raw = std::fs::read_to_string(eml)?;
    println!("   {}", eml.display());
    for line in raw.lines().filter(|l| l.starts_with("To:") || l.starts_with("Subject:") || l.starts_with("From:")) {
        println!("   {line}");
    }
    if let Some(text) = reimbi_shared::adapters::mime::part(&raw, "text/plain") {
        println!("   ---");
        for line in text.lines() {
            println!("   {line}");
        }
    }

    step(10, "Health check of the integration");
    let health = admin.call(Method::GET, &format!("{c}/integrations/ashby/health"), None, 200).await?;
    show(&health);
    if health["ok"] != true {
        bail!("the health check is not ok");
    }
    Ok(())
}
