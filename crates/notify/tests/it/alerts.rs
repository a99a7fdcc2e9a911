//! Alert delivery to a real webhook receiver (HTTP) and the ops address (a real SMTP server).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use chrono::Utc;
use skybook_domain::{Email, RetryPolicy};
use skybook_notify::{AlertChannels, AlertDispatcher, AlertDispatcherConfig, SmtpMailer};
use skybook_storage::{Engine, NewAlert};
use skybook_testkit::backend_tests;
use skybook_testkit::smtp::SmtpSink;

/// A webhook receiver: records every body, answers with the status in `status`.
#[derive(Clone, Default)]
struct Webhook {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    status: Arc<AtomicU16>,
}

impl Webhook {
    async fn start(&self) -> url::Url {
        async fn receive(
            State(hook): State<Webhook>,
            Json(body): Json<serde_json::Value>,
        ) -> StatusCode {
            hook.bodies.lock().unwrap().push(body);
            StatusCode::from_u16(hook.status.load(Ordering::SeqCst)).unwrap()
        }
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook").parse().unwrap()
    }
}

async fn alerts_reach_the_webhook_and_the_ops_mailbox_retrying_failures(engine: Engine) {
    let store = skybook_testkit::store(engine, "alert_delivery").await;
    let hook = Webhook::default();
    hook.status.store(500, Ordering::SeqCst);
    let webhook = hook.start().await;
    let sink = SmtpSink::start(&skybook_testkit::test_dir("alerts-smtp"));
    let mailer = Arc::new(SmtpMailer::new(&sink.url().into(), super::outbox::from()).unwrap());
    let channels = AlertChannels {
        webhook: Some(webhook),
        ops_email: Some((Email::parse("ops@example.com").unwrap(), mailer)),
    };
    let config = AlertDispatcherConfig {
        retry: RetryPolicy {
            initial_delay: Duration::ZERO,
            ..RetryPolicy::outbound()
        },
        ..AlertDispatcherConfig::default()
    };
    let dispatcher = AlertDispatcher::new(store.clone(), reqwest::Client::new(), channels, config);

    let alert = NewAlert {
        kind: "duplicate_charge",
        subject: "ch_dup".into(),
        tenant_id: None,
        message: "charge ch_dup duplicates booking K7M2QX's charge; refunded".into(),
        details: serde_json::json!({ "charge_id": "ch_dup", "refund_id": "re_1" }),
    };
    assert!(store.raise_alert(&alert, Utc::now()).await.unwrap());

    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let stored = store.recent_alerts(None, 10).await.unwrap();
    assert_eq!(
        stored[0].delivered_at, None,
        "a 500 from the webhook is not a delivery"
    );
    assert!(
        stored[0].last_error.as_deref().unwrap().contains("500"),
        "{stored:?}"
    );

    hook.status.store(200, Ordering::SeqCst);
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    assert!(store.recent_alerts(None, 10).await.unwrap()[0]
        .delivered_at
        .is_some());
    assert_eq!(
        dispatcher.run_once().await.unwrap(),
        0,
        "delivered alerts are not sent again"
    );

    let bodies = hook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "one failed and one accepted POST");
    let text = bodies[1]["text"].as_str().unwrap();
    assert!(
        text.contains("duplicate_charge") && text.contains("ch_dup") && text.contains("re_1"),
        "{text}"
    );

    // The failed attempt stopped at the webhook; the accepted one mailed the ops address (the server had it
    // before it answered 250, so it is on disk now).
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("To: ops@example.com")
            && mails[0].contains("[skybook alert] duplicate_charge"),
        "{mails:?}"
    );
}

backend_tests!(alerts_reach_the_webhook_and_the_ops_mailbox_retrying_failures);
