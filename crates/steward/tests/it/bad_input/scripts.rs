//! Script and run input: nothing runs on refused input.
use super::*;

#[tokio::test]
async fn script_and_run_input_is_validated_and_nothing_runs() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    // Script definitions.
    let script = json!({ "name": "s9", "body": "true" });
    let mut bad_scripts: Vec<(Value, &str)> = vec![
        (with(&script, "body", json!("")), "body"),
        (with(&script, "body", json!("   \n")), "body"),
        (with(&script, "body", json!("a\u{0}b")), "body"),
        (
            with(&script, "body", json!("x".repeat(256 * 1024 + 1))),
            "body",
        ),
        (with(&script, "name", json!("")), "name"),
        (with(&script, "name", json!(chars(101))), "name"),
        (
            with(&script, "description", json!("bell\u{7}")),
            "description",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "", "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A B", "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "X'; rm -rf /", "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": chars(65), "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A", "type": "string", "choices": ["x"] }]),
            ),
            "parameters[0].choices",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A", "type": "boolean", "default": "yes" }]),
            ),
            "parameters[0].default",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A", "type": "choice", "choices": ["a"], "default": "b" }]),
            ),
            "parameters[0].default",
        ),
    ];
    let many: Vec<Value> = (0..33)
        .map(|i| json!({ "name": format!("P{i}"), "type": "string" }))
        .collect();
    bad_scripts.push((with(&script, "parameters", json!(many)), "parameters"));
    for (body, field) in bad_scripts {
        let got = admin.post("/api/v1/scripts", body.clone()).await;
        p.error(
            &format!("script {field}"),
            got,
            unprocessable,
            "validation_failed",
            Some(field),
        );
    }
    for kind in [json!("float"), json!(1), json!(null)] {
        let body = with(
            &script,
            "parameters",
            json!([{ "name": "A", "type": kind }]),
        );
        let got = admin.post("/api/v1/scripts", body).await;
        p.error("parameter type", got, unprocessable, "invalid_body", None);
    }
    let got = admin
        .post("/api/v1/scripts", with(&script, "shell", json!("zsh")))
        .await;
    p.error("unknown shell", got, unprocessable, "invalid_body", None);
    // (From another session with a step-up: this one must stay without, for the runs below.)
    let other = w.app.login(ADMIN, PASSWORD).await;
    other.step_up().await;
    let got = other
        .post("/api/v1/scripts", with(&script, "name", json!("s1")))
        .await;
    p.error("taken name", got, StatusCode::CONFLICT, "", Some("name"));

    // Runs.
    let run = json!({ "script_id": w.script, "script_version": 1, "server_ids": [w.server], "parameters": { "N": 5 } });
    let runs: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            with(&run, "command", json!("id")),
            unprocessable,
            "validation_failed",
            Some("script_id"),
        ),
        (
            without(&run, "script_id"),
            unprocessable,
            "validation_failed",
            Some("script_id"),
        ),
        (
            with(&run, "timeout_secs", json!(0)),
            unprocessable,
            "validation_failed",
            Some("timeout_secs"),
        ),
        (
            with(&run, "timeout_secs", json!(86_401)),
            unprocessable,
            "validation_failed",
            Some("timeout_secs"),
        ),
        (
            with(&run, "concurrency", json!(0)),
            unprocessable,
            "validation_failed",
            Some("concurrency"),
        ),
        (
            with(&run, "concurrency", json!(201)),
            unprocessable,
            "validation_failed",
            Some("concurrency"),
        ),
        (
            with(&run, "parameters", json!({ "N": "five" })),
            unprocessable,
            "validation_failed",
            Some("parameters.N"),
        ),
        (
            with(&run, "parameters", json!({ "N": [1] })),
            unprocessable,
            "validation_failed",
            Some("parameters.N"),
        ),
        (
            with(&run, "parameters", json!({})),
            unprocessable,
            "validation_failed",
            Some("parameters.N"),
        ),
        (
            with(&run, "parameters", json!({ "N": 1, "M": 2 })),
            unprocessable,
            "validation_failed",
            Some("parameters.M"),
        ),
        (
            with(&run, "shell", json!("bash")),
            unprocessable,
            "validation_failed",
            Some("shell"),
        ),
        (
            with(&run, "server_ids", json!([])),
            unprocessable,
            "no_targets",
            None,
        ),
        (
            with(
                &run,
                "server_ids",
                json!([uuid::Uuid::new_v4().to_string()]),
            ),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            with(&run, "server_ids", json!(["'; DROP TABLE servers; --"])),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            with(&run, "tags", json!(["BAD TAG!"])),
            unprocessable,
            "validation_failed",
            Some("tags[0]"),
        ),
        (
            with(&run, "script_id", json!(uuid::Uuid::new_v4().to_string())),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            with(&run, "script_id", json!("../../etc/passwd")),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            json!({ "command": "", "server_ids": [w.server] }),
            unprocessable,
            "validation_failed",
            Some("command"),
        ),
        (
            json!({ "command": "a\u{0}b", "server_ids": [w.server] }),
            unprocessable,
            "validation_failed",
            Some("command"),
        ),
        (
            json!({ "command": "x".repeat(64 * 1024 + 1), "server_ids": [w.server] }),
            unprocessable,
            "validation_failed",
            Some("command"),
        ),
        (
            json!({ "command": "id", "server_ids": [w.server], "parameters": { "A": 1 } }),
            unprocessable,
            "validation_failed",
            Some("parameters"),
        ),
        // A valid ad-hoc command without a step-up, and with a wrong one.
        (
            json!({ "command": "id", "server_ids": [w.server] }),
            StatusCode::FORBIDDEN,
            "step_up_required",
            None,
        ),
        (
            json!({ "command": "id", "server_ids": [w.server], "step_up": { "password": "wrong-password-1" } }),
            StatusCode::FORBIDDEN,
            "step_up_failed",
            None,
        ),
        (
            json!({ "command": "id", "server_ids": [w.server], "step_up": {} }),
            unprocessable,
            "step_up_missing",
            None,
        ),
    ];
    for (body, status, code, field) in runs {
        let got = admin.post("/api/v1/executions", body.clone()).await;
        p.error(
            &format!("run {}", short(&body.to_string())),
            got,
            status,
            code,
            field,
        );
    }

    // History filters.
    for q in [
        "status=done",
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=nope",
        "script_id=1",
        "server_id=%27",
        "mine=maybe",
        "bogus=1",
    ] {
        let got = admin.get(&format!("/api/v1/executions?{q}")).await;
        p.error(
            &format!("history ?{q}"),
            got,
            StatusCode::BAD_REQUEST,
            "",
            None,
        );
    }
    // Script versions that do not exist.
    for v in ["0", "2", "-1", "x", "99999999999999999999"] {
        let got = admin
            .get(&format!("/api/v1/scripts/{}/versions/{v}", w.script))
            .await;
        p.error(
            &format!("version {v}"),
            got,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }

    p.unchanged(app, &before, "after bad script and run input")
        .await;
    p.alive(app, "bad script and run input").await;
    p.finish();
}
