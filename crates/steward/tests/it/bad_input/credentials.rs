//! Credential input: a refused one never replaces the stored one.
use super::*;

#[tokio::test]
async fn credential_input_is_validated_and_a_refused_one_never_replaces_the_stored_one() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let path = format!("/api/v1/servers/{}/credential", w.server);

    // First with no credential at all, then with one in place that must survive.
    for round in ["without a credential", "with a credential in place"] {
        if round.starts_with("with a") {
            let (s, b) = admin
                .put(
                    &path,
                    json!({ "kind": "private_key", "private_key": PLAIN_KEY }),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
        let before = stored(app).await;
        let credential_json = admin.get(&path).await;

        let mut cases: Vec<(String, Value, &str)> = Vec::new();
        let mut garbage_keys: Vec<String> = vec![
            String::new(),
            " ".into(),
            "not a key".into(),
            chars(10_000),
            chars(40 * 1024),
            "-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----\n"
                .into(),
            PLAIN_KEY.replace("b3Bl", "AAAA"),
            PLAIN_KEY.lines().take(3).collect::<Vec<_>>().join("\n"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJU/UzASIPX7jtczC9QFpJ1fO3KM83/P2LVshsa2/xic"
                .into(),
        ];
        garbage_keys.extend(CONTROLS.iter().map(|c| format!("{c}{PLAIN_KEY}")));
        garbage_keys.extend(SQL_META.iter().map(|m| m.to_string()));
        for key in &garbage_keys {
            cases.push((
                format!("private key {}", short(key)),
                json!({ "kind": "private_key", "private_key": key }),
                "private_key",
            ));
            cases.push((
                format!("private key {} with a passphrase", short(key)),
                json!({ "kind": "private_key", "private_key": key, "passphrase": "pp" }),
                "private_key",
            ));
        }
        let mut wrong_passphrases: Vec<Value> = vec![
            json!(null),
            json!(""),
            json!("wrong"),
            json!(chars(10_000)),
            json!(format!("{KEY_PASSPHRASE} ")),
        ];
        wrong_passphrases.extend(
            CONTROLS
                .iter()
                .map(|c| json!(format!("{KEY_PASSPHRASE}{c}"))),
        );
        wrong_passphrases.extend(SQL_META.iter().map(|m| json!(m)));
        for pp in wrong_passphrases {
            let mut body = json!({ "kind": "private_key", "private_key": ENCRYPTED_KEY });
            if !pp.is_null() {
                body["passphrase"] = pp.clone();
            }
            cases.push((
                format!("encrypted key with passphrase {}", short(&pp.to_string())),
                body,
                "passphrase",
            ));
        }
        let mut bad_passwords: Vec<String> = vec![String::new(), chars(10_000), chars(4097)];
        bad_passwords.extend(CONTROLS.iter().map(|c| format!("ssh{c}pass")));
        for pw in &bad_passwords {
            cases.push((
                format!("password {}", short(pw)),
                json!({ "kind": "password", "password": pw }),
                "password",
            ));
        }
        for (what, body, field) in &cases {
            p.invalid(
                &format!("{round}: PUT credential with {what}"),
                admin.put(&path, body.clone()).await,
                field,
            );
        }
        p.unchanged(app, &before, &format!("{round}: after bad credentials"))
            .await;
        let after = admin.get(&path).await;
        p.check(
            &format!("{round}: credential JSON"),
            after == credential_json,
            || format!("{credential_json:?} became {after:?}"),
        );
    }

    // What is valid is accepted: the encrypted key with its passphrase, a password with SQL text.
    let got = admin.put(&path, json!({ "kind": "private_key", "private_key": ENCRYPTED_KEY, "passphrase": KEY_PASSPHRASE })).await;
    let b = p.ok(
        "PUT the encrypted key with its passphrase",
        got,
        StatusCode::OK,
    );
    p.check(
        "encrypted key facts",
        b["has_passphrase"] == true && b["kind"] == "private_key",
        || format!("{b}"),
    );
    let got = admin.put(&path, json!({ "kind": "password", "password": "'; DROP TABLE secrets; -- \" OR 1=1 -- %_\\" })).await;
    p.ok("PUT an SSH password made of SQL text", got, StatusCode::OK);
    let (s, b) = admin.get(&path).await;
    p.check(
        "the password credential is in place",
        s == StatusCode::OK && b["kind"] == "password" && !b.to_string().contains("DROP"),
        || format!("{s} {b}"),
    );

    // A passphrase for a key that is not encrypted means nothing: it is refused, or ignored —
    // never stored as a secret nor reported as protecting the key.
    let (s, b) = admin
        .put(
            &path,
            json!({ "kind": "private_key", "private_key": PLAIN_KEY, "passphrase": "pointless" }),
        )
        .await;
    let passphrases: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE purpose = 'ssh_key_passphrase'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    if s == StatusCode::UNPROCESSABLE_ENTITY {
        p.invalid(
            "PUT an unencrypted key with a passphrase",
            (s, b),
            "passphrase",
        );
    } else {
        p.check(
            "PUT an unencrypted key with a passphrase",
            s == StatusCode::OK && b["has_passphrase"] == false && passphrases == 0,
            || format!("status {s}, {passphrases} passphrase secret(s) stored, body {b}"),
        );
    }
    p.alive(app, "bad credentials").await;
    p.finish();
}
