use crate::helpers::promtool::run_promtool;
use crate::helpers::spawn_app;
use std::io::Write;
use std::process::{Command, Stdio};

#[actix_rt::test]
async fn metrics_show_the_actor_tree_and_label_requests_by_route_pattern() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/no/such/route/12345").await;

    let metrics = app.metrics().await;

    assert!(
        metrics.contains(r#"tgvisor_actor_up{actor="root/database"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tgvisor_actor_up{actor="root/rate-limiter"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tgvisor_http_requests_total{method="GET",route="/health",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="unmatched",status="404""#),
        "{metrics}"
    );
    assert!(
        !metrics.contains("12345"),
        "raw paths must not become labels"
    );
    assert!(metrics.contains("tgvisor_db_up 1"), "{metrics}");
    assert!(metrics.contains("tgvisor_build_info"), "{metrics}");
    assert!(
        metrics.contains("process_resident_memory_bytes"),
        "{metrics}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn made_up_http_methods_fold_into_one_label_value() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let res = client
            .request(method, app.url("/health"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
    }

    let metrics = app.metrics().await;

    assert!(
        !metrics.contains("BREW"),
        "a client's method became a label"
    );
    let other: Vec<_> = metrics
        .lines()
        .filter(|l| l.starts_with("tgvisor_http_requests_total{method=\"other\""))
        .collect();
    assert_eq!(other.len(), 1, "{other:?}");
    assert!(other[0].ends_with(" 50"), "{other:?}");
    app.stop().await;
}

#[actix_rt::test]
async fn metrics_pass_promtool_check() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.inject_panic("root/database").await;
    let metrics = app.metrics().await;

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package `prometheus`; scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();

    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejected /metrics:\n{report}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool found problems:\n{report}"
    );
    app.stop().await;
}

/// Runs promtool with `args`, which must succeed; answers its report.
fn promtool(args: &[&str]) -> String {
    let (ok, report) = run_promtool(args);
    assert!(ok, "promtool {args:?} failed:\n{report}");
    report
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let report = promtool(&["check", "rules", "prometheus/tgvisor.rules.yml"]);
    assert!(report.contains("SUCCESS"), "{report}");

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/tests");
    let mut tests: Vec<String> = std::fs::read_dir(&dir)
        .expect("prometheus/tests exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .map(|p| p.display().to_string())
        .collect();
    tests.sort();
    assert!(
        !tests.is_empty(),
        "no promtool unit tests in {}",
        dir.display()
    );
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let report = promtool(&args);
    assert!(!report.contains("FAILED"), "{report}");
}
