//! A phone gateway stand-in: an HTTP server on 127.0.0.1 that keeps every signed webhook POST
//! (the `x-mamori-timestamp` and `x-mamori-signature` headers and the body).

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Hook {
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub body: String,
}

/// A phone gateway stand-in: an HTTP server on 127.0.0.1 that keeps every POST, on a thread
/// of its own (a gateway keeps answering whatever the test does:
/// [`crate::serve_on_own_thread`]).
#[derive(Clone)]
pub struct WebhookReceiver {
    pub url: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    _stop: crate::StopOnDrop,
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let hooks: Arc<Mutex<Vec<Hook>>> = Arc::new(Mutex::new(Vec::new()));
        let store = hooks.clone();
        let app = axum::Router::new().route(
            "/sms",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let store = store.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    store.lock().unwrap().push(Hook {
                        timestamp: h("x-mamori-timestamp"),
                        signature: h("x-mamori-signature"),
                        body,
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let (addr, stop) = crate::serve_on_own_thread("webhook-receiver", |listener| async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookReceiver {
            url: format!("http://{addr}/sms"),
            hooks,
            _stop: stop,
        }
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) for the `n`-th message (1-based).
    pub async fn wait_for(&self, n: usize) -> Hook {
        for _ in 0..400 {
            if let Some(h) = self.hooks().get(n - 1) {
                return h.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("webhook message {n} did not arrive: {:?}", self.hooks());
    }
}
