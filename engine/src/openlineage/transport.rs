//! Delivering events: a bounded FIFO with retries ([`Outbox`], pure) and the
//! HTTP POST ([`Http`]).

use std::collections::VecDeque;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The first retry's delay; each failure doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Events waiting to be delivered, oldest first.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<String>,
    capacity: usize,
    /// Consecutive failures of the event at the head.
    failures: u32,
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Worth retrying: the endpoint is down, slow or overloaded (5xx, 408, 429).
    Retry(String),
    /// The endpoint refused the event itself (another 4xx): retrying cannot help.
    Refused(String),
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox { queue: VecDeque::new(), capacity: capacity.max(1), failures: 0 }
    }

    /// Queues an event; `false` (dropped) when the buffer is full.
    pub fn push(&mut self, event: String) -> bool {
        if self.queue.len() >= self.capacity {
            return false;
        }
        self.queue.push_back(event);
        true
    }

    pub fn head(&self) -> Option<&str> {
        self.queue.front().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Records how the head's delivery went; returns how long to wait before the
    /// next delivery (zero after a success or a refusal, which moves on).
    pub fn record(&mut self, d: &Delivery) -> Duration {
        match d {
            Delivery::Sent | Delivery::Refused(_) => {
                self.queue.pop_front();
                self.failures = 0;
                Duration::ZERO
            }
            Delivery::Retry(_) => {
                self.failures += 1;
                FIRST_BACKOFF.saturating_mul(1 << (self.failures - 1).min(16)).min(MAX_BACKOFF)
            }
        }
    }
}

/// The status of a response: 2xx delivered it; 408, 429 and 5xx are worth a retry.
pub fn classify(status: u16, body: &str) -> Delivery {
    match status {
        200..=299 => Delivery::Sent,
        408 | 429 | 500..=599 => Delivery::Retry(format!("HTTP {status}: {body}")),
        _ => Delivery::Refused(format!("HTTP {status}: {body}")),
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// POSTs JSON events to one URL, over HTTP or HTTPS (the system's roots).
pub struct Http {
    client: Client<Connector, Full<Bytes>>,
    runtime: tokio::runtime::Runtime,
    url: hyper::Uri,
    timeout: Duration,
}

impl Http {
    pub fn new(url: &str, timeout: Duration) -> Result<Http, String> {
        let url: hyper::Uri = url.parse().map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Http { client, runtime, url, timeout })
    }

    pub fn send(&self, event: &str) -> Delivery {
        let request = hyper::Request::post(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(event.to_string())));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Delivery::Refused(format!("cannot build the request: {e}")),
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| connection_error(&e))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string();
            Ok::<_, String>(classify(status, &body))
        };
        match self.runtime.block_on(async { tokio::time::timeout(self.timeout, exchange).await }) {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => Delivery::Retry(e),
            Err(_) => Delivery::Retry(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}

/// The error and its causes: hyper's own message is only "client error (Connect)".
fn connection_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_is_bounded_and_keeps_order() {
        let mut o = Outbox::new(2);
        assert!(o.push("a".into()) && o.push("b".into()));
        assert!(!o.push("c".into()), "a full buffer drops the new event");
        assert_eq!(o.record(&Delivery::Retry("down".into())), FIRST_BACKOFF);
        assert_eq!(o.record(&Delivery::Retry("down".into())), FIRST_BACKOFF * 2);
        assert_eq!(o.head(), Some("a"), "the head is retried before anything after it");
        assert_eq!(o.record(&Delivery::Sent), Duration::ZERO);
        assert_eq!(o.head(), Some("b"));
        assert_eq!(o.record(&Delivery::Retry("down".into())), FIRST_BACKOFF, "the backoff restarts per event");
        for _ in 0..40 {
            o.record(&Delivery::Retry("down".into()));
        }
        assert_eq!(o.record(&Delivery::Retry("down".into())), MAX_BACKOFF);
        o.record(&Delivery::Refused("400".into()));
        assert!(o.is_empty());
    }

    #[test]
    fn server_errors_are_retried_and_client_errors_are_not() {
        assert_eq!(classify(201, ""), Delivery::Sent);
        assert!(matches!(classify(503, ""), Delivery::Retry(_)));
        assert!(matches!(classify(429, ""), Delivery::Retry(_)));
        assert!(matches!(classify(400, "bad"), Delivery::Refused(m) if m.contains("bad")));
    }
}
