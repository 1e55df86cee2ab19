//! The Grafana dashboards (`grafana/dashboards/*.json`) and the alert rules
//! (`prometheus/tgvisor.rules.yml`) against the service: the dashboards are
//! well-formed, every query is valid PromQL, and every metric a query or a
//! rule names is one a running tgvisor exports.

use crate::helpers::accounts::{connected_account, send, wait_status};
use crate::helpers::{TestApp, spawn_app_with};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tgvisor::telegram::sim::ECHO_USER_ID;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PHONE: &str = "+9996621234";

/// The datasource every panel and target must use: the dashboard's
/// `datasource` variable, so one import works with any Prometheus.
fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every dashboard file, parsed, by file name.
fn dashboards() -> BTreeMap<String, Value> {
    let dir = repo("grafana/dashboards");
    let all: BTreeMap<String, Value> = std::fs::read_dir(&dir)
        .expect("grafana/dashboards exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a readable dashboard");
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, json)
        })
        .collect();
    assert!(!all.is_empty(), "no dashboards in {}", dir.display());
    all
}

/// A dashboard's panels, with the panels inside (collapsed) rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("a panels array") {
        out.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// Every query of every dashboard: (where, expression as written).
fn queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (file, d) in dashboards() {
        for panel in panels(&d) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default();
                let at = format!("{file}: {}", panel["title"]);
                out.push((at, expr.to_owned()));
            }
        }
    }
    out
}

/// An expression as Prometheus receives it: Grafana's interval variables
/// replaced by a duration.
fn as_sent(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
}

#[test]
fn dashboards_are_well_formed() {
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty(), "{file}: no uid");
        assert!(uids.insert(uid.to_owned()), "{file}: uid {uid} is taken");
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{file}: no title"
        );
        assert_eq!(d["schemaVersion"], 39, "{file}: schemaVersion");
        assert!(
            d.get("id").is_none_or(Value::is_null),
            "{file}: an id at the top level would clash on import"
        );
        assert!(
            d["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("tgvisor"))),
            "{file}: not tagged tgvisor"
        );
        let variables = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            variables.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: no `datasource` variable of type datasource for prometheus"
        );

        let mut ids = BTreeSet::new();
        for panel in panels(&d) {
            let title = &panel["title"];
            let id = panel["id"].as_u64();
            assert!(
                id.is_some_and(|id| ids.insert(id)),
                "{file}: panel {title} has no id or a taken one ({:?})",
                panel["id"]
            );
            let grid = &panel["gridPos"];
            let [x, w] = ["x", "w"].map(|k| grid[k].as_u64());
            assert!(
                ["h", "y"].iter().all(|k| grid[*k].is_u64())
                    && x.zip(w).is_some_and(|(x, w)| w > 0 && x + w <= 24),
                "{file}: panel {title} has no gridPos within 24 columns: {grid}"
            );
            if panel["type"] == "row" {
                assert!(panel.get("targets").is_none(), "{file}: row {title}");
                continue;
            }
            assert_eq!(panel["datasource"], datasource(), "{file}: panel {title}");
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{file}: panel {title} has no query");
            for target in targets {
                assert!(
                    target["expr"]
                        .as_str()
                        .is_some_and(|e| !e.trim().is_empty()),
                    "{file}: panel {title} has a target without an expr: {target}"
                );
                if let Some(ds) = target.get("datasource") {
                    assert_eq!(ds, &datasource(), "{file}: a target of {title}");
                }
            }
        }
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    // Each query becomes a recording rule; promtool parses them all.
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let queries = queries();
    for (i, (at, expr)) in queries.iter().enumerate() {
        let sent = as_sent(expr);
        assert!(!sent.contains('$'), "{at}: an unknown variable in {expr}");
        rules.push_str(&format!(
            "      - record: tgvisor_dashboard_query_{i}\n        expr: {}\n",
            serde_json::to_string(&sent).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let (ok, report) = crate::helpers::promtool::run_promtool(&[
        std::ffi::OsStr::new("check"),
        "rules".as_ref(),
        file.as_os_str(),
    ]);
    let listed: Vec<String> = queries
        .iter()
        .enumerate()
        .map(|(i, (at, expr))| format!("tgvisor_dashboard_query_{i}: {at}: {expr}"))
        .collect();
    assert!(
        ok && report.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "promtool rejected a dashboard query:\n{report}\nqueries:\n{}",
        listed.join("\n")
    );
}

/// The metric names an expression reads: identifiers that are not
/// functions, aggregations, keywords, label names (in `{...}` or after `by`,
/// `without`, `on`, `ignoring`, `group_left`, `group_right`), strings or
/// durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 26] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "atan2",
        // Aggregations, which may be followed by `by (...)` before their `(`.
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Skips from an opening `open` to past its `close`, strings included.
    let skip = |mut i: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        while i < chars.len() {
            match chars[i] {
                '"' | '\'' | '`' => {
                    let quote = chars[i];
                    i += 1;
                    while i < chars.len() && chars[i] != quote {
                        i += if chars[i] == '\\' { 2 } else { 1 };
                    }
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip(i, '{', '}');
        } else if c == '[' {
            i = skip(i, '[', ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip(i, c, c);
        } else if c.is_ascii_digit() {
            // A number or a duration (5m, 1e3, 0x1f).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if call && LABEL_LISTS.contains(&word.as_str()) {
                i = skip(next, '(', ')');
            } else if !call
                && !KEYWORDS.contains(&word.as_str())
                && !matches!(word.to_ascii_lowercase().as_str(), "inf" | "nan")
            {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route!~"/x|{y}", le!="1e3"}[5m])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names(
            "sum(b) by (le) / on (instance) group_left (version) c offset 5m > bool 2 or vector(0) unless d @ 100"
        ),
        ["b", "c", "d"]
    );
    assert_eq!(
        names(r#"count(up{job="a"} == 0) and max_over_time(e[1h:5m]) > Inf"#),
        ["e", "up"]
    );
    assert!(names("vector(1) + 2 * 0x1f").is_empty());
}

/// The alert and recording rules' expressions in `prometheus/tgvisor.rules.yml`
/// (inline, or a block scalar after `expr: |`).
fn rule_expressions() -> Vec<String> {
    let text = std::fs::read_to_string(repo("prometheus/tgvisor.rules.yml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
                .copied()
                .collect();
            out.push(block.join("\n"));
        } else {
            out.push(rest.trim_matches(|c| c == '\'' || c == '"').to_owned());
        }
    }
    let rules = lines
        .iter()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("- alert:") || l.starts_with("- record:")
        })
        .count();
    assert_eq!(out.len(), rules, "one expression per rule");
    assert!(!out.is_empty(), "no rules read");
    out
}

/// The series names in a scrape (`name` of `name{labels} value`): a
/// histogram appears as its `_bucket`, `_sum` and `_count` series.
fn scraped_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Drives the app until every metric family has a series: a request, a
/// database check, a connected account that sends a message and receives
/// the echo's answer, an upload, a WebSocket frame refused, a ping to the
/// account's DC. Families with bounded labels (results, reasons, states)
/// start at zero in the service itself. Answers the scrape.
async fn scrape_of_a_busy_app(app: &TestApp) -> String {
    use tgvisor::db::CheckNow;
    // The supervisor starts its children after the app is up: wait for the
    // database actor rather than fail while it starts.
    let database = app.app_database.ready().await.expect("the database actor");
    let checked = database.send(CheckNow).await.expect("database actor");
    assert!(checked.up, "the database answers");

    let (_, token) = app.user("alice").await;
    let account = connected_account(app, &token, PHONE).await;

    // A message to @echo: sent, and answered (an update received).
    let res = send(
        app,
        &token,
        account,
        &json!({"chat": "@echo", "text": "hi"}),
        None,
    )
    .await;
    assert_eq!(res.status().as_u16(), 202);
    let message_id = res.json::<Value>().await.unwrap()["message_id"]
        .as_i64()
        .unwrap();
    wait_status(app, account, message_id, "sent").await;
    app.wait_event(&format!("account:{account}"), |e| {
        e.kind == "message.new" && e.data["message"]["sender_id"] == ECHO_USER_ID
    })
    .await;

    // An upload of a few bytes.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/accounts/{account}/uploads")))
        .query(&[("name", "notes.txt")])
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 1000])
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status().as_u16(), 201);

    // A WebSocket client whose frame is refused.
    let mut request = format!("{}/ws", app.address.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    let mut frames = Vec::new();
    ws.send(Message::text("not json")).await.unwrap();
    while frames.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a valid frame");
        if let Message::Text(t) = next {
            frames.push(serde_json::from_str::<Value>(&t).unwrap());
        }
    }
    assert_eq!(frames[0]["type"], "auth_ok", "{frames:?}");
    assert_eq!(frames[1]["code"], "invalid_frame", "{frames:?}");

    // The account pings its DC every telegram.health_check_interval_ms
    // (shortened by the caller): scrape until a ping is recorded.
    let pinged = async {
        loop {
            let scrape = app.metrics().await;
            if scrape.contains("tgvisor_telegram_dc_latency_seconds_count{") {
                return scrape;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), pinged)
        .await
        .expect("the account pinged its DC")
}

#[actix_rt::test]
async fn dashboards_and_alert_rules_read_only_metrics_tgvisor_exports() {
    let app = spawn_app_with(|f| f.merge(("telegram.health_check_interval_ms", 20))).await;
    let scrape = scrape_of_a_busy_app(&app).await;
    let exported = scraped_names(&scrape);
    assert!(exported.contains("tgvisor_http_requests_total"), "{scrape}");

    let mut missing = Vec::new();
    for (at, expr) in queries() {
        let names = metric_names(&as_sent(&expr));
        assert!(!names.is_empty(), "{at}: no metric in {expr}");
        for name in names.difference(&exported) {
            missing.push(format!("{at}: {name}"));
        }
    }
    for expr in rule_expressions() {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "no metric in the rule {expr}");
        for name in names.difference(&exported) {
            missing.push(format!("prometheus/tgvisor.rules.yml: {name} in {expr}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in tgvisor's /metrics:\n{}\n\nscrape:\n{scrape}",
        missing.join("\n")
    );
    app.stop().await;
}
