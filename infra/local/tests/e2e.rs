//! End to end: the real `reimbi-local` binary on a free port, driven over HTTP as Ashby and an
//! admin would, with the Ashby simulator; in embedded mode and in `--aws` mode against moto.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ashby_sim::AshbySim;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_reimbi-local");
const KEY: &str = "e2e-ashby-key-0001";

/// A running `reimbi-local serve`; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path, ashby: &str, aws: Option<&[(&str, String)]>) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir).args(["--ashby-api-url", ashby]);
    cmd.env("RUST_LOG", "warn")
        .env("APP_BASE_URL", "https://app.reimbi.test")
        .env("SENDER_EMAIL", "invites@reimbi.test");
    cmd.env_remove("PUBLIC_BASE_URL").env_remove("QUEUE_URL").env_remove("TABLE_NAME");
    if let Some(env) = aws {
        cmd.arg("--aws");
        for (k, v) in env {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("reimbi-local starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        let line = lines.next().expect("reimbi-local printed its address before exiting").unwrap();
        if let Some(rest) = line.strip_prefix("reimbi-local listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "reimbi-local did not start in time");
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

fn token(data_dir: &Path, company: &str, role: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "--company", company, "--role", role, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("reimbi-local token runs");
    assert!(out.status.success(), "token failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
    company: String,
}

impl Admin {
    async fn req(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/companies/{}{path}", self.base, self.company);
        let mut r = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>, expect: u16) -> Value {
        let (status, v) = self.req(method.clone(), path, body).await;
        assert_eq!(status, expect, "{method} {path}: {v}");
        v
    }
}

/// A flagged candidate with a unique address, so tests sharing a moto can find their own email.
fn seed_candidate(sim: &AshbySim, tag: &str) -> (String, String) {
    let candidate_id = format!("cand-{tag}");
    let email = format!("{tag}@candidates.example");
    sim.set_candidate(json!({
        "id": candidate_id, "name": "Jane <b>Doe</b>",
        "primaryEmailAddress": {"value": email, "type": "Personal", "isPrimary": true},
        "emailAddresses": [{"value": email, "type": "Personal", "isPrimary": true}],
        "customFields": [
            {"id": "f1", "isPrivate": false, "title": "Send to Reimbi", "value": true},
            {"id": "f2", "isPrivate": false, "title": "Reimbi Reimbursement Policy", "value": "onsite", "valueLabel": "Onsite Interview"}
        ],
        "applicationIds": [format!("app-{tag}")]
    }));
    (candidate_id, email)
}

async fn configure(admin: &Admin) -> (String, String) {
    use reqwest::Method;
    admin
        .ok(
            Method::PUT,
            "/policies/onsite",
            Some(json!({"name": "Onsite Interview", "enabled": true, "submissionGuidelines": "Keep every receipt."})),
            200,
        )
        .await;
    admin
        .ok(
            Method::PUT,
            "/policies/travel",
            Some(json!({"name": "Final Round Travel", "enabled": true, "submissionGuidelines": "Economy only."})),
            200,
        )
        .await;
    admin.ok(Method::PUT, "/staff/rae@acme.example", Some(json!({"name": "Rae", "canApprove": true})), 200).await;
    admin.ok(Method::PUT, "/staff/ops%40acme.example", Some(json!({"name": "Ops", "canApprove": true})), 200).await;
    let s = admin
        .ok(
            Method::PUT,
            "/integrations/ashby",
            Some(json!({"apiKey": KEY, "approverRole": "hiringTeam", "hiringTeamRole": "recruiter", "backupApproverEmail": "ops@acme.example", "enabled": true})),
            200,
        )
        .await;
    assert_eq!(s["apiKeyConfigured"], true);
    assert!(!s.to_string().contains(KEY), "the API key must never be returned");
    let creds = admin.ok(Method::POST, "/integrations/ashby/webhook-credentials", None, 201).await;
    let url = creds["webhookUrl"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&admin.base), "{url} is served by this server");
    (url, creds["secretKey"].as_str().unwrap().to_owned())
}

async fn deliver_stage_change(url: &str, secret: &str, action_id: &str, candidate_id: &str, tag: &str) -> (u16, Value) {
    let team = json!([{"userId": "u1", "firstName": "Rae", "lastName": "Cruiter", "email": "rae@acme.example", "role": "Recruiter"}]);
    let body = ashby_sim::webhook::stage_change(action_id, candidate_id, &format!("app-{tag}"), team);
    let resp = ashby_sim::webhook::deliver(url, secret, &body).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn wait_for_outcome(admin: &Admin, event_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = admin.ok(reqwest::Method::GET, "/integrations/ashby/events?limit=100", None, 200).await;
        if let Some(e) = events["items"].as_array().unwrap().iter().find(|e| e["eventId"] == event_id)
            && !matches!(e["outcome"].as_str(), Some("accepted") | Some("retrying"))
        {
            return e.clone();
        }
        assert!(Instant::now() < deadline, "event {event_id} was not processed in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn outbox_emails(data_dir: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(data_dir.join("outbox")) else { return vec![] };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_mode_invites_a_flagged_candidate_once_and_survives_a_restart() {
    let sim = AshbySim::start().await;
    sim.add_api_key(KEY);
    let (candidate_id, email) = seed_candidate(&sim, "embedded");
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &sim.url(), None);
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token: token(dir.path(), "acme", "admin"),
        company: "acme".into(),
    };
    let (url, secret) = configure(&admin).await;

    let (status, accepted) = deliver_stage_change(&url, &secret, "action-1", &candidate_id, "embedded").await;
    assert_eq!(status, 202, "{accepted}");
    let event_id = accepted["eventId"].as_str().unwrap().to_owned();
    let event = wait_for_outcome(&admin, &event_id).await;
    assert_eq!(event["outcome"], "invited", "{event}");
    let candidate = admin
        .ok(reqwest::Method::GET, &format!("/candidates/{}", event["candidateId"].as_str().unwrap()), None, 200)
        .await;
    assert_eq!(candidate["status"], "Invited");
    assert_eq!(candidate["email"], email.as_str());
    assert_eq!(candidate["policyName"], "Onsite Interview");
    assert_eq!(candidate["approverEmail"], "rae@acme.example");
    assert_eq!(candidate["approverSource"], "hiringTeam");
    assert_eq!(candidate["inviteEmail"]["status"], "sent");

    let emails = outbox_emails(dir.path());
    assert_eq!(emails.len(), 1);
    let text = reimbi_mime_part(&emails[0], "text/plain");
    let html = reimbi_mime_part(&emails[0], "text/html");
    assert!(
        text.contains("Jane <b>Doe</b>")
            && text.contains("https://app.reimbi.test/")
            && text.contains("Keep every receipt.")
            && text.contains("support@reimbi.com"),
        "{text}"
    );
    assert!(html.contains("Jane &lt;b&gt;Doe&lt;/b&gt;") && !html.contains("<b>Doe"), "{html}");

    // Restart: settings, credentials and candidates survive; the same event is not a second invitation.
    drop(server);
    let server = serve(dir.path(), &sim.url(), None);
    let admin = Admin { base: server.base.clone(), ..admin };
    let settings = admin.ok(reqwest::Method::GET, "/integrations/ashby", None, 200).await;
    assert_eq!(settings["enabled"], true);
    assert_eq!(settings["apiKeyHint"], "…0001");
    let candidates = admin.ok(reqwest::Method::GET, "/candidates", None, 200).await;
    assert_eq!(candidates["items"].as_array().unwrap().len(), 1);
    // The credentials survived too: the old URL's path on the new port still verifies.
    let path = &url[url.find("/webhooks/").unwrap()..];
    let (status, again) =
        deliver_stage_change(&format!("{}{path}", server.base), &secret, "action-1", &candidate_id, "embedded").await;
    assert_eq!(status, 202);
    assert_eq!(again["eventId"], event_id.as_str());
    let (status, second) =
        deliver_stage_change(&format!("{}{path}", server.base), &secret, "action-2", &candidate_id, "embedded").await;
    assert_eq!(status, 202);
    let second = wait_for_outcome(&admin, second["eventId"].as_str().unwrap()).await;
    assert_eq!(second["outcome"], "alreadyInvited");
    assert_eq!(outbox_emails(dir.path()).len(), 1, "exactly one invitation in the end");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_checked_by_the_local_server() {
    let sim = AshbySim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &sim.url(), None);
    let http = reqwest::Client::new();
    let get = |t: Option<String>| {
        let mut r = http.get(format!("{}/companies/acme/integrations/ashby", server.base));
        if let Some(t) = t {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(get(None).await.unwrap().status().as_u16(), 401);
    assert_eq!(get(Some("garbage".into())).await.unwrap().status().as_u16(), 401);
    let other_dir = tempfile::tempdir().unwrap();
    assert_eq!(get(Some(token(other_dir.path(), "acme", "admin"))).await.unwrap().status().as_u16(), 401);
    assert_eq!(get(Some(token(dir.path(), "acme", "member"))).await.unwrap().status().as_u16(), 403);
    assert_eq!(get(Some(token(dir.path(), "globex", "admin"))).await.unwrap().status().as_u16(), 403);
    let ok = get(Some(token(dir.path(), "acme", "admin"))).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["enabled"], false);
    assert_eq!(body["apiKeyConfigured"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_mode_runs_the_story_against_moto() {
    let tag = format!("aws{}", std::process::id());
    aws_story(&tag, vec![("TABLE_NAME", format!("reimbi-e2e-{tag}")), ("QUEUE_URL", String::new())]).await;
}

/// The table and queue the SAM template creates in moto (`infra/scripts/check-template.sh`
/// creates the stack, exports their names and runs this with `--ignored`): if the code and the
/// template disagree on a key, an index or the queue, this fails.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the stack infra/scripts/check-template.sh creates in moto; the script runs it with --ignored"]
async fn aws_mode_runs_the_story_on_the_stack_the_template_creates() {
    let table = std::env::var("STACK_TABLE_NAME").expect("STACK_TABLE_NAME: the stack's table");
    let queue = std::env::var("STACK_QUEUE_URL").expect("STACK_QUEUE_URL: the stack's queue");
    aws_story(&format!("stack{}", std::process::id()), vec![("TABLE_NAME", table), ("QUEUE_URL", queue)]).await;
}

async fn aws_story(tag: &str, mut env: Vec<(&str, String)>) {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL must point at moto (make test starts it)");
    let sim = AshbySim::start().await;
    sim.add_api_key(KEY);
    let (candidate_id, email) = seed_candidate(&sim, tag);
    let dir = tempfile::tempdir().unwrap();
    env.push(("SECRETS_PREFIX", format!("e2e-{tag}/")));
    let server = serve(dir.path(), &sim.url(), Some(&env));
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token: token(dir.path(), tag, "admin"),
        company: tag.into(),
    };
    let (url, secret) = configure(&admin).await;
    let (status, accepted) = deliver_stage_change(&url, &secret, &format!("{tag}-action-1"), &candidate_id, tag).await;
    assert_eq!(status, 202, "{accepted}");
    let event = wait_for_outcome(&admin, accepted["eventId"].as_str().unwrap()).await;
    assert_eq!(event["outcome"], "invited", "{event}");
    let candidates = admin.ok(reqwest::Method::GET, "/candidates", None, 200).await;
    assert_eq!(candidates["items"][0]["email"], email.as_str());

    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json")).await.unwrap().json().await.unwrap();
    let raw: Vec<String> = data["ses"]["RawMessage"]
        .as_array()
        .expect("moto lists raw SES messages")
        .iter()
        .filter_map(|m| m["raw_data"].as_str().map(str::to_owned))
        .filter(|m| m.contains(&email))
        .collect();
    assert_eq!(raw.len(), 1, "one invitation through SES to {email}");
    assert!(reimbi_mime_part(&raw[0], "text/plain").contains("Keep every receipt."));
}

fn reimbi_mime_part(raw: &str, content_type: &str) -> String {
    reimbi_shared::adapters::mime::part(raw, content_type).unwrap_or_else(|| panic!("no {content_type} part in {raw}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminate_signal_stops_the_server_cleanly() {
    let sim = AshbySim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &sim.url(), None);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "reimbi-local did not stop within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a graceful stop exits 0, got {status}");
}
