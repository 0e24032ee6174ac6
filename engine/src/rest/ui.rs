//! The web UI: a TypeScript single page (`engine/ui/`), bundled by esbuild and
//! embedded at build time (`engine/build.rs`). `/` serves the page and
//! `/ui/{file}` its script and style; the page calls the REST API with
//! relative URLs, so it also works behind the Kubernetes API server's proxy.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

fn find(name: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    }
}

pub(super) async fn index() -> Response {
    match find("index.html") {
        Some(page) => ([(header::CONTENT_TYPE, content_type("index.html"))], page).into_response(),
        // 200 all the same: the engine works, and the page says what to do.
        None => (
            StatusCode::OK,
            Html(
                "<!doctype html><title>Sluice</title><p>This engine was built without its web UI. \
                 Build it with <code>make ui</code> (or <code>make build</code>), then rebuild the engine. \
                 The REST API is at <a href=\"v1/job\">v1/job</a>.</p>",
            ),
        )
            .into_response(),
    }
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    match find(&file).filter(|_| file != "index.html") {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, content_type(&file)), (header::CACHE_CONTROL, "no-cache")], bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no UI file {file:?}")).into_response(),
    }
}
