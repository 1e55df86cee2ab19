//! Upload jobs on the simulated Telegram: small and big files (parts in
//! parallel), a part failing once, FLOOD_WAITs, bad bodies, limits,
//! ownership, and jobs a stop interrupted.

use crate::helpers::accounts::{connected_account, imported_account};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use tgvisor::entities::upload;
use tgvisor::telegram::sim::{FloodRule, FloodTarget};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PHONE: &str = "+9996631234";
const PART: usize = 512 * 1024;

/// Bytes that differ from part to part.
fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn upload(
    app: &TestApp,
    token: &str,
    account: i64,
    name: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/accounts/{account}/uploads")))
        .query(&[("name", name)])
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("request sent")
}

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("a JSON body");
    (status, body["error"].clone())
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body` over a raw connection, then closes the writing side; answers the
/// status code, if one came back.
async fn raw(app: &TestApp, head: &str, body: &[u8]) -> Option<u16> {
    let addr = app.address.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .expect("head");
    s.write_all(body).await.expect("body");
    s.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

/// A multipart/form-data request as a browser sends it: `fields` are
/// (name, filename, bytes), in order.
async fn multipart(
    app: &TestApp,
    token: &str,
    account: i64,
    query: &str,
    fields: &[(&str, Option<&str>, &[u8])],
) -> reqwest::Response {
    let boundary = "----tgvisorFormBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, filename, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    app.client
        .post(app.url(&format!("/api/v1/accounts/{account}/uploads{query}")))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("request sent")
}

/// An upload whose body ends (the client closes) after PART + 7 of its
/// declared 2 × PART bytes.
async fn cut_short(app: &TestApp, token: &str, account: i64, name: &str) {
    let head = format!(
        "POST /api/v1/accounts/{account}/uploads?name={name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}",
        2 * PART
    );
    raw(app, &head, &file(PART + 7)).await;
}

/// The account's upload rows.
async fn rows(app: &TestApp, account: i64) -> Vec<upload::Model> {
    upload::Entity::find()
        .filter(upload::Column::AccountId.eq(account))
        .all(&app.db_conn().await)
        .await
        .expect("uploads")
}

/// An upload row as a job that stopped mid-body leaves it: 1 of 3 parts
/// sent, created and last updated at `at`.
async fn unfinished_row(
    app: &TestApp,
    user: i64,
    account: i64,
    name: &str,
    status: &str,
    at: chrono::DateTime<chrono::FixedOffset>,
) -> upload::Model {
    sea_orm::ActiveModelTrait::insert(
        upload::ActiveModel {
            account_id: sea_orm::Set(account),
            user_id: sea_orm::Set(user),
            name: sea_orm::Set(name.into()),
            status: sea_orm::Set(status.into()),
            size: sea_orm::Set(Some(3 * PART as i64)),
            bytes: sea_orm::Set(PART as i64),
            parts_total: sea_orm::Set(Some(3)),
            parts_done: sea_orm::Set(1),
            big: sea_orm::Set(false),
            file_id: sea_orm::Set(42),
            created_at: sea_orm::Set(at),
            updated_at: sea_orm::Set(at),
            ..Default::default()
        },
        &app.db_conn().await,
    )
    .await
    .unwrap()
}

#[actix_rt::test]
async fn a_small_file_goes_part_by_part_and_its_job_says_so() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    let len = 2 * PART + 1000;
    let res = upload(&app, &token, account, "notes.txt", file(len)).await;
    assert_eq!(res.status().as_u16(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["status"], "done");
    assert_eq!(job["name"], "notes.txt");
    assert_eq!(job["size"], len);
    assert_eq!(job["bytes"], len);
    assert_eq!(job["parts_total"], 3);
    assert_eq!(job["parts_done"], 3);
    assert!(job["error"].is_null());
    let id = job["upload_id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/uploads/{id}"));
    // Telegram got three parts of the right sizes, with the small-file method.
    let files = app.world.uploaded(PHONE);
    assert_eq!(files.len(), 1);
    let parts: Vec<(u32, usize)> = files.into_values().next().unwrap().into_iter().collect();
    assert_eq!(parts, [(0, PART), (1, PART), (2, 1000)]);
    let calls = app.world.calls();
    assert_eq!(calls.get("upload.saveFilePart"), Some(&3));
    assert_eq!(calls.get("upload.saveBigFilePart"), None);
    // GET says the same; the account's topic heard the end.
    let got: Value = app.get_auth(&location, &token).await.json().await.unwrap();
    assert_eq!(got["status"], "done");
    assert_eq!(got["parts_done"], 3);
    assert!(
        got["rate_bytes_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{got}"
    );
    let done = app
        .wait_event(&format!("account:{account}"), |e| {
            e.kind == "upload.progress" && e.data["upload_id"] == id && e.data["status"] == "done"
        })
        .await;
    assert_eq!(done.data["bytes"], len);
    assert_eq!(done.data["parts_total"], 3);
}

#[actix_rt::test]
async fn a_big_file_sends_its_parts_in_parallel_with_the_big_file_method() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    // Every call takes a while: the parts overlap if they are sent in parallel.
    app.world.set_latency(std::time::Duration::from_millis(100));
    let len = 11 * 1024 * 1024 + 5;
    let res = upload(&app, &token, account, "big.bin", file(len)).await;
    assert_eq!(res.status().as_u16(), 201);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["status"], "done");
    assert_eq!(job["parts_total"], 23);
    let calls = app.world.calls();
    assert_eq!(calls.get("upload.saveBigFilePart"), Some(&23));
    assert_eq!(calls.get("upload.saveFilePart"), None);
    let parallel = app.settings.uploads.parallel_parts;
    assert_eq!(app.world.most_in_flight("upload.saveBigFilePart"), parallel);
    let parts = app.world.uploaded(PHONE).into_values().next().unwrap();
    assert_eq!(parts.len(), 23);
    assert_eq!(parts.values().sum::<usize>(), len);
    // Over 10 MiB it can be a document, not a photo: refused when the
    // message is, not when the drain meets it.
    let upload_id = job["upload_id"].as_i64().unwrap();
    let as_photo = serde_json::json!({"chat": "me", "upload_id": upload_id, "kind": "photo"});
    let res = crate::helpers::accounts::send(&app, &token, account, &as_photo, None).await;
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("photo_too_large"))
    );
    let as_document = serde_json::json!({"chat": "me", "upload_id": upload_id, "kind": "document"});
    let res = crate::helpers::accounts::send(&app, &token, account, &as_document, None).await;
    assert_eq!(res.status().as_u16(), 202);
    app.stop().await;
}

#[actix_rt::test]
async fn a_part_that_fails_once_is_sent_again() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    app.world.fail_next_parts(1);
    let res = upload(&app, &token, account, "a.bin", file(PART + 10)).await;
    assert_eq!(res.status().as_u16(), 201);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["status"], "done");
    assert_eq!(job["parts_done"], 2);
    assert_eq!(app.world.calls().get("upload.saveFilePart"), Some(&3));
    let parts = app.world.uploaded(PHONE).into_values().next().unwrap();
    assert_eq!(parts.into_iter().collect::<Vec<_>>(), [(0, PART), (1, 10)]);
    let metrics = app.metrics().await;
    for line in [
        "tgvisor_upload_parts_total{result=\"ok\"} 2",
        "tgvisor_upload_parts_total{result=\"error\"} 1",
        &format!("tgvisor_upload_bytes_total {}", PART + 10),
        "tgvisor_uploads_total{result=\"done\"} 1",
        "tgvisor_uploads_running 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line}");
    }
}

#[actix_rt::test]
async fn a_flood_wait_pauses_the_job_then_it_goes_on() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    app.world.inject_flood(FloodRule {
        target: FloodTarget::Method("upload.saveFilePart".into()),
        seconds: 1,
        times: 1,
    });
    let res = upload(&app, &token, account, "a.bin", file(PART + 10)).await;
    assert_eq!(res.status().as_u16(), 201);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["status"], "done");
    let id = job["upload_id"].as_i64().unwrap();
    let paused = app
        .wait_event(&format!("account:{account}"), |e| {
            e.kind == "upload.progress" && e.data["upload_id"] == id && e.data["status"] == "paused"
        })
        .await;
    assert_eq!(paused.data["retry_after_ms"], 1000);
}

#[actix_rt::test]
async fn a_flood_wait_longer_than_the_pause_allowed_fails_the_job_with_the_wait() {
    let app = spawn_app_with(|f| f.merge(("uploads.max_pause_ms", 2000))).await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    app.world.inject_flood(FloodRule {
        target: FloodTarget::Method("upload.saveFilePart".into()),
        seconds: 30,
        times: 1,
    });
    let res = upload(&app, &token, account, "a.bin", file(100)).await;
    assert_eq!(res.headers()["retry-after"], "30");
    let (status, error) = error_of(res).await;
    assert_eq!((status, error["code"].as_str()), (503, Some("flood_wait")));
    let rows = rows(&app, account).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "failed");
    assert_eq!(rows[0].error_code.as_deref(), Some("flood_wait"));
}

#[actix_rt::test]
async fn bodies_that_are_empty_too_big_or_cut_short_are_refused_and_leave_nothing_running() {
    let app =
        spawn_app_with(|f| f.merge(("rate_limits.telegram.media_uploads.max_size", 3 * PART)))
            .await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    // Zero bytes: refused before a job exists.
    let (status, error) = error_of(upload(&app, &token, account, "a.bin", Vec::new()).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("empty_upload"))
    );
    // Over the limit by Content-Length: refused before the body is read.
    let (status, error) =
        error_of(upload(&app, &token, account, "a.bin", file(3 * PART + 1)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("upload_too_large"))
    );
    assert!(rows(&app, account).await.is_empty());
    assert_eq!(app.world.calls().get("upload.saveFilePart"), None);
    // Over the limit without a Content-Length (chunked): cut off on the way.
    let path = format!("/api/v1/accounts/{account}/uploads?name=c.bin");
    let mut chunked = Vec::new();
    for _ in 0..4 {
        chunked.extend_from_slice(format!("{:x}\r\n", PART).as_bytes());
        chunked.extend_from_slice(&file(PART));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close"
    );
    assert_eq!(raw(&app, &head, &chunked).await, Some(413));
    // Cut short: the body ends before its Content-Length.
    cut_short(&app, &token, account, "t.bin").await;
    // Every job ended, failed, with its reason.
    let jobs = rows(&app, account).await;
    let mut codes: Vec<(String, Option<String>)> = jobs
        .iter()
        .map(|r| (r.name.clone(), r.error_code.clone()))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("c.bin".to_owned(), Some("upload_too_large".to_owned())),
            ("t.bin".to_owned(), Some("truncated_body".to_owned())),
        ]
    );
    assert!(
        jobs.iter()
            .all(|r| r.status == "failed" && r.finished_at.is_some())
    );
}

#[actix_rt::test]
async fn names_accounts_and_uploads_of_others_are_checked() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let account = connected_account(&app, &alice, PHONE).await;
    // Someone else's account is not found.
    let (status, error) = error_of(upload(&app, &bob, account, "a.bin", file(10)).await).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    // A path is no file name.
    let (status, error) =
        error_of(upload(&app, &alice, account, "../etc/passwd", file(10)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_input"))
    );
    assert_eq!(error["field"], "name");
    // A form without a file part says so.
    let res = multipart(
        &app,
        &alice,
        account,
        "",
        &[("note", None, b"hi".as_slice())],
    )
    .await;
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_multipart"))
    );
    // Empty fields cost nothing to send but a parse each: 32 at most
    // before the file.
    let empty: Vec<(&str, Option<&str>, &[u8])> = (0..33)
        .map(|_| ("e", None, b"".as_slice()))
        .chain([("file", Some("f.bin"), b"data".as_slice())])
        .collect();
    let (status, error) = error_of(multipart(&app, &alice, account, "", &empty).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_multipart"))
    );
    assert!(error["message"].as_str().unwrap().contains("32 fields"));
    let res = multipart(&app, &alice, account, "", &empty[1..]).await;
    assert_eq!(res.status().as_u16(), 201);
    // Alice's upload is hers alone; an unknown id is not found either.
    let job: Value = upload(&app, &alice, account, "a.bin", file(10))
        .await
        .json()
        .await
        .unwrap();
    let id = job["upload_id"].as_i64().unwrap();
    let res = app.get_auth(&format!("/api/v1/uploads/{id}"), &bob).await;
    assert_eq!(res.status().as_u16(), 404);
    let res = app
        .get_auth(&format!("/api/v1/uploads/{}", id + 1000), &alice)
        .await;
    assert_eq!(res.status().as_u16(), 404);
    let res = app.get_auth(&format!("/api/v1/uploads/{id}"), &alice).await;
    assert_eq!(res.status().as_u16(), 200);
}

#[actix_rt::test]
async fn the_eleventh_upload_in_a_minute_is_rate_limited() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    let max = app.settings.rate_limits.telegram.media_uploads.max;
    for n in 0..max {
        let res = upload(&app, &token, account, &format!("{n}.bin"), file(10)).await;
        assert_eq!(res.status().as_u16(), 201, "upload {n}");
    }
    let res = upload(&app, &token, account, "one-more.bin", file(10)).await;
    assert!(res.headers().contains_key("retry-after"));
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(rows(&app, account).await.len(), max as usize);
}

#[actix_rt::test]
async fn a_job_a_stop_interrupted_is_failed_when_the_service_starts() {
    let app = spawn_app().await;
    let (user, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    // A job as a stop mid-body leaves it.
    let now = chrono::Utc::now().fixed_offset();
    let row = unfinished_row(&app, user, account, "half.bin", "receiving", now).await;
    let app = app.restart(|f| f).await;
    let token = app.login("alice").await;
    let got: Value = app
        .get_auth(&format!("/api/v1/uploads/{}", row.id), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "failed");
    assert_eq!(got["error"]["code"], "interrupted");
    assert_eq!(got["parts_done"], 1);
}

#[actix_rt::test]
async fn a_finished_upload_is_sent_as_media_through_the_outbox() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    let len = PART + 99;
    let job: Value = upload(&app, &token, account, "report.pdf", file(len))
        .await
        .json()
        .await
        .unwrap();
    let upload_id = job["upload_id"].as_i64().unwrap();
    let body = serde_json::json!({
        "chat": "me", "upload_id": upload_id, "kind": "document", "caption": "the report",
    });
    let res = crate::helpers::accounts::send(&app, &token, account, &body, Some("media-1")).await;
    assert_eq!(res.status().as_u16(), 202);
    let message_id = res.json::<Value>().await.unwrap()["message_id"]
        .as_i64()
        .unwrap();
    crate::helpers::accounts::wait_status(&app, account, message_id, "sent").await;
    let me = app.world.user_id(PHONE).unwrap();
    let sent = app.world.dialog(PHONE, me);
    let last = sent.last().expect("a message in Saved Messages");
    assert_eq!(last.text, "the report");
    let media = last.media.as_ref().expect("media");
    assert_eq!(media.name.as_deref(), Some("report.pdf"));
    assert_eq!(media.size, len as u64);
    assert_eq!(app.world.calls().get("messages.sendMedia"), Some(&1));
    // The same key and request: the same message, not a second one.
    let res = crate::helpers::accounts::send(&app, &token, account, &body, Some("media-1")).await;
    assert_eq!(res.status().as_u16(), 202);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.json::<Value>().await.unwrap()["message_id"], message_id);
    // The same key with another upload is another request.
    let other = serde_json::json!({
        "chat": "me", "upload_id": upload_id, "kind": "photo", "caption": "the report",
    });
    let res = crate::helpers::accounts::send(&app, &token, account, &other, Some("media-1")).await;
    assert_eq!(res.status().as_u16(), 409);
}

#[actix_rt::test]
async fn media_messages_need_a_finished_upload_of_the_account() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let account = connected_account(&app, &alice, PHONE).await;
    let bobs = connected_account(&app, &bob, "+9996631235").await;
    let job: Value = upload(&app, &alice, account, "a.bin", file(10))
        .await
        .json()
        .await
        .unwrap();
    let upload_id = job["upload_id"].as_i64().unwrap();
    let send = |token: &str, account: i64, body: Value| {
        let (app, token) = (&app, token.to_owned());
        async move {
            error_of(crate::helpers::accounts::send(app, &token, account, &body, None).await).await
        }
    };
    // Bob cannot send Alice's upload from his account.
    let (status, error) = send(
        &bob,
        bobs,
        serde_json::json!({"chat": "me", "upload_id": upload_id, "kind": "document"}),
    )
    .await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    // Text and upload together, or an upload without its kind: refused.
    let (status, error) = send(
        &alice,
        account,
        serde_json::json!({"chat": "me", "upload_id": upload_id, "text": "x", "kind": "photo"}),
    )
    .await;
    assert_eq!((status, error["field"].as_str()), (400, Some("upload_id")));
    let (status, error) = send(
        &alice,
        account,
        serde_json::json!({"chat": "me", "upload_id": upload_id}),
    )
    .await;
    assert_eq!((status, error["field"].as_str()), (400, Some("kind")));
    let (status, error) = send(
        &alice,
        account,
        serde_json::json!({"chat": "me", "upload_id": upload_id, "kind": "photo", "caption": "x".repeat(1025)}),
    )
    .await;
    assert_eq!((status, error["field"].as_str()), (400, Some("caption")));
    // A failed upload is not sendable.
    cut_short(&app, &alice, account, "t.bin").await;
    let failed = rows(&app, account)
        .await
        .into_iter()
        .find(|r| r.name == "t.bin")
        .expect("the cut-short job");
    let (status, error) = send(
        &alice,
        account,
        serde_json::json!({"chat": "me", "upload_id": failed.id, "kind": "document"}),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("upload_not_ready"))
    );
}

/// On the grammers backend against the loopback fake MTProto server: a big
/// file in parallel parts (one failing once, one meeting a FLOOD_WAIT),
/// then sent as a document.
#[actix_rt::test]
async fn on_grammers_a_big_file_goes_in_parallel_parts_and_is_sent_as_a_document() {
    let (app, server) = crate::helpers::spawn_grammers_app().await;
    let (_, token) = app.user("alice").await;
    let account = crate::helpers::grammers::imported(&app, &server, &token).await;
    let phone = crate::helpers::grammers::PHONE;
    app.world.set_latency(std::time::Duration::from_millis(100));
    app.world.fail_next_parts(1);
    app.world.inject_flood(FloodRule {
        target: FloodTarget::Method("upload.saveBigFilePart".into()),
        seconds: 1,
        times: 1,
    });
    let len = 11 * 1024 * 1024 + 5;
    let res = upload(&app, &token, account, "big.bin", file(len)).await;
    assert_eq!(res.status().as_u16(), 201);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["status"], "done");
    assert_eq!(job["parts_done"], 23);
    // 23 parts, one tried again after failing, one after its wait; the
    // failure drops the connection (the fake's way with network errors),
    // and grammers sends the parts that were in flight on it again.
    let calls = app.world.calls()["upload.saveBigFilePart"];
    assert!((25..=25 + 3).contains(&calls), "{calls} calls");
    assert_eq!(
        app.world.most_in_flight("upload.saveBigFilePart"),
        app.settings.uploads.parallel_parts
    );
    let parts = app.world.uploaded(phone).into_values().next().unwrap();
    assert_eq!(parts.len(), 23);
    assert_eq!(parts.values().sum::<usize>(), len);
    app.world.set_latency(std::time::Duration::ZERO);
    let body = serde_json::json!({
        "chat": "me", "upload_id": job["upload_id"], "kind": "document",
    });
    let res = crate::helpers::accounts::send(&app, &token, account, &body, None).await;
    assert_eq!(res.status().as_u16(), 202);
    let message_id = res.json::<Value>().await.unwrap()["message_id"]
        .as_i64()
        .unwrap();
    crate::helpers::accounts::wait_status(&app, account, message_id, "sent").await;
    let me = app.world.user_id(phone).unwrap();
    let last = app.world.dialog(phone, me).pop().expect("the document");
    let media = last.media.expect("media");
    assert_eq!(media.size, len as u64);
    assert_eq!(media.name.as_deref(), Some("big.bin"));
}

#[actix_rt::test]
async fn on_grammers_a_small_file_goes_part_by_part_and_a_cut_body_fails() {
    let (app, server) = crate::helpers::spawn_grammers_app().await;
    let (_, token) = app.user("alice").await;
    let account = crate::helpers::grammers::imported(&app, &server, &token).await;
    let res = upload(&app, &token, account, "small.bin", file(2 * PART + 3)).await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(app.world.calls().get("upload.saveFilePart"), Some(&3));
    cut_short(&app, &token, account, "t.bin").await;
    let cut = rows(&app, account)
        .await
        .into_iter()
        .find(|r| r.name == "t.bin")
        .expect("the cut-short job");
    assert_eq!(cut.status, "failed");
    assert_eq!(cut.error_code.as_deref(), Some("truncated_body"));
}

#[actix_rt::test]
async fn a_browser_form_uploads_its_file_part_under_its_file_name() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    let photo = file(PART + 321);
    // A field before the file, as forms have.
    let res = multipart(
        &app,
        &token,
        account,
        "",
        &[
            ("note", None, b"holiday".as_slice()),
            ("file", Some("beach.jpg"), &photo),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["name"], "beach.jpg");
    assert_eq!(job["status"], "done");
    assert_eq!(job["size"], PART + 321);
    let parts = app.world.uploaded(PHONE).into_values().next().unwrap();
    assert_eq!(parts.into_iter().collect::<Vec<_>>(), [(0, PART), (1, 321)]);
    // With ?size=, the size is known up front and checked: a file longer
    // than it is refused, one shorter is cut short.
    let res = multipart(
        &app,
        &token,
        account,
        "?size=100",
        &[("file", Some("a.bin"), &file(200))],
    )
    .await;
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("size_mismatch"))
    );
    let res = multipart(
        &app,
        &token,
        account,
        "?size=300",
        &[("file", Some("b.bin"), &file(200))],
    )
    .await;
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("truncated_body"))
    );
    // A big file names its size, and goes in parallel parts.
    let big = file(11 * 1024 * 1024 + 1);
    let query = format!("?size={}&name=big.bin", big.len());
    let res = multipart(
        &app,
        &token,
        account,
        &query,
        &[("file", Some("ignored.bin"), &big)],
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let job: Value = res.json().await.unwrap();
    assert_eq!(job["name"], "big.bin");
    assert_eq!(job["parts_total"], 23);
    assert_eq!(app.world.calls().get("upload.saveBigFilePart"), Some(&23));
    // Without its size, a form over 10 MiB cannot be sent as a big file.
    let res = multipart(&app, &token, account, "", &[("file", Some("c.bin"), &big)]).await;
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (411, Some("length_required"))
    );
}

#[actix_rt::test]
async fn a_stalled_body_times_out_and_running_jobs_are_capped() {
    let app = spawn_app_with(|f| {
        f.merge(("uploads.max_running", 1))
            .merge(("uploads.body_idle_timeout_ms", 1500))
    })
    .await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    // A client that sends part of its body, then nothing, connection open.
    let addr = app.address.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /api/v1/accounts/{account}/uploads?name=stalled.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        2 * PART
    );
    let mut stalled = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&file(1000)).await.unwrap();
    app.wait_event(&format!("account:{account}"), |e| {
        e.kind == "upload.progress" && e.data["status"] == "receiving"
    })
    .await;
    // It holds the only slot.
    let (status, error) = error_of(upload(&app, &token, account, "b.bin", file(10)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (503, Some("too_many_uploads"))
    );
    // Silence ends it with 408; the slot is free again.
    let mut answer = Vec::new();
    let _ = stalled.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    let res = upload(&app, &token, account, "c.bin", file(10)).await;
    assert_eq!(res.status().as_u16(), 201);
    let jobs = rows(&app, account).await;
    let stalled = jobs.iter().find(|r| r.name == "stalled.bin").unwrap();
    assert_eq!(stalled.status, "failed");
    assert_eq!(stalled.error_code.as_deref(), Some("body_timeout"));
}

#[actix_rt::test]
async fn names_that_read_differently_than_they_are_are_refused() {
    let app = spawn_app().await;
    let (_, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    for name in [
        "invoice\u{202E}fdp.exe",
        "a\u{200B}b.txt",
        "\u{FEFF}x.txt",
        ".",
        "..",
        "report.pdf ",
        " report.pdf",
        "report.pdf.",
    ] {
        let (status, error) = error_of(upload(&app, &token, account, name, file(10)).await).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some("name")),
            "{name:?}"
        );
    }
    let res = upload(&app, &token, account, "résumé 2026.pdf", file(10)).await;
    assert_eq!(res.status().as_u16(), 201);
}

#[actix_rt::test]
async fn an_account_not_connected_yet_is_refused_before_its_body_is_read() {
    // One client slot: the second account waits for it.
    let app = spawn_app_with(|f| f.merge(("telegram.client_pool_size", 1))).await;
    let (_, token) = app.user("alice").await;
    connected_account(&app, &token, PHONE).await;
    let second = imported_account(&app, &token, "+9996631235").await;
    app.wait_state(second, "waiting", 0).await;
    let res = upload(&app, &token, second, "a.bin", file(10)).await;
    let (status, error) = error_of(res).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("account_unavailable"))
    );
    assert_eq!(error["state"], "waiting");
    assert!(rows(&app, second).await.is_empty());
    assert_eq!(app.world.calls().get("upload.saveFilePart"), None);
}

#[actix_rt::test]
async fn a_job_whose_request_is_dropped_mid_body_is_failed_abandoned() {
    let app = spawn_app().await;
    let (user, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    let topic = format!("account:{account}");
    // A body that sends a little, then nothing, and never ends.
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(actix_web::web::Bytes::from(
        file(1000),
    ))])
    .chain(futures_util::stream::pending());
    let declared = Some(2 * PART as u64);
    let job = app
        .uploads
        .receive(user, account, "dropped.bin", declared, body);
    tokio::select! {
        _ = job => panic!("the job cannot end: its body does not"),
        _ = app.wait_event(&topic, |e| {
            e.kind == "upload.progress" && e.data["status"] == "receiving"
        }) => {}
    }
    // The request's future is gone (dropped when the select ended), as
    // actix drops a handler whose connection it gives up.
    let end = app
        .wait_event(&topic, |e| {
            e.kind == "upload.progress" && e.data["status"] == "failed"
        })
        .await;
    assert_eq!(end.data["error"]["code"], "abandoned");
    let jobs = rows(&app, account).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].status.as_str(), jobs[0].error_code.as_deref()),
        ("failed", Some("abandoned"))
    );
    assert_eq!(app.uploads.running(), 0);
    assert!(
        app.metrics()
            .await
            .contains(r#"tgvisor_uploads_total{result="abandoned"} 1"#)
    );
}

#[actix_rt::test]
async fn a_restarted_uploader_fails_the_jobs_no_request_runs_and_spares_live_ones() {
    let app = spawn_app().await;
    let (user, token) = app.user("alice").await;
    let account = connected_account(&app, &token, PHONE).await;
    let topic = format!("account:{account}");
    let db = app.db_conn().await;
    let old = chrono::Utc::now().fixed_offset() - chrono::Duration::minutes(5);
    // A row whose job is gone (nothing runs it).
    let orphan = unfinished_row(&app, user, account, "orphan.bin", "paused", old).await;
    // A job that runs (its body stalls), made to look as old.
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(actix_web::web::Bytes::from(
        file(1000),
    ))])
    .chain(futures_util::stream::pending());
    let job = app
        .uploads
        .receive(user, account, "live.bin", Some(2 * PART as u64), body);
    let check = async {
        app.wait_event(&topic, |e| {
            e.kind == "upload.progress" && e.data["status"] == "receiving"
        })
        .await;
        let live = rows(&app, account)
            .await
            .into_iter()
            .find(|r| r.name == "live.bin")
            .expect("the live job's row");
        upload::Entity::update_many()
            .col_expr(upload::Column::CreatedAt, old.into())
            .filter(upload::Column::Id.eq(live.id))
            .exec(&db)
            .await
            .unwrap();
        app.restart_actor("root/uploader").await;
        let end = app
            .wait_event(&topic, |e| {
                e.kind == "upload.progress" && e.data["status"] == "failed"
            })
            .await;
        assert_eq!(end.data["upload_id"], orphan.id);
        assert_eq!(end.data["error"]["code"], "interrupted");
        assert_eq!(end.data["parts_done"], 1);
        live.id
    };
    let live_id = tokio::select! {
        _ = job => panic!("the job cannot end: its body does not"),
        id = check => id,
    };
    // The sweep decided about both rows before its first event: the live
    // job was spared (the drop since then makes it abandoned, not
    // interrupted).
    let live = app
        .wait_event(&topic, |e| {
            e.kind == "upload.progress"
                && e.data["status"] == "failed"
                && e.data["upload_id"] == live_id
        })
        .await;
    assert_eq!(live.data["error"]["code"], "abandoned");
}
