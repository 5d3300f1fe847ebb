//! The web UI, served by `sluice serve` on its own port: server-rendered HTML (maud) that reads
//! without JavaScript, and a small embedded script that follows Server-Sent Events for live runs
//! and logs. Pages read through the same store queries and `deploy::actions` functions as the JSON
//! API, and act through them too, so a button refuses exactly what the API and the command line
//! refuse. Reading is open or needs a session (`ui.read`); every action needs a signed-in person
//! and the form's CSRF token (`session.rs`).

mod ansi;
mod assets;
mod delivery;
mod drift;
mod environments;
mod history;
mod layout;
mod releases;
mod run_page;
mod runs;
pub mod session;
mod stream;
mod svg;
mod waiting;

use super::AppState;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

pub use crate::config::server::UiRead;
pub use layout::{Nav, page};
pub use runs::RunsQuery;
pub use session::Viewer;

/// How the UI treats its readers.
#[derive(Clone, Debug)]
pub struct UiSettings {
    pub read: UiRead,
    /// Mark the session cookie `Secure` (the server is reached over https).
    pub secure_cookies: bool,
    /// Cancelled when the server shuts down: live streams end, so connections close at once.
    pub closing: tokio_util::sync::CancellationToken,
}

impl Default for UiSettings {
    fn default() -> UiSettings {
        UiSettings {
            read: UiRead::Open,
            secure_cookies: false,
            closing: Default::default(),
        }
    }
}

impl UiSettings {
    /// `ui.read` as configured, else open on a loopback address and signed-in elsewhere.
    pub fn for_listener(
        configured: Option<UiRead>,
        address: std::net::SocketAddr,
        public_url: Option<&str>,
    ) -> UiSettings {
        let read = configured.unwrap_or(if address.ip().is_loopback() {
            UiRead::Open
        } else {
            UiRead::SignedIn
        });
        UiSettings {
            read,
            secure_cookies: public_url.is_some_and(|url| url.starts_with("https://")),
            closing: Default::default(),
        }
    }
}

/// The UI's routes, merged into the server's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(runs::list))
        .route("/runs/{id}", get(run_page::show))
        .route("/runs/{id}/cancel", post(run_page::cancel))
        .route("/runs/{id}/rerun", post(run_page::rerun))
        .route("/runs/{id}/jobs/{job}/log/stream", get(stream::job_log))
        .route("/events", get(stream::changes))
        .route("/environments", get(environments::board))
        .route(
            "/environments/{environment}/{action}",
            post(environments::act),
        )
        .route("/releases", get(releases::list))
        .route("/releases/{id}", get(releases::show))
        .route("/history", get(history::list))
        .route("/signin", get(session::sign_in_form).post(session::sign_in))
        .route("/signout", post(session::sign_out))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/metrics/delivery", get(delivery::show))
}

/// The UI's JSON twins, read like the rest of the API.
pub fn api_routes() -> Router<AppState> {
    Router::new().route("/api/metrics/delivery", get(delivery::api))
}

/// A page that could not be shown or an action that was refused, as an HTML page with its status.
#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
    /// Who was looking, so the error page still says who they are (boxed: errors stay small).
    pub viewer: Option<Box<Viewer>>,
}

impl UiError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> UiError {
        UiError {
            status,
            title,
            message: message.into(),
            viewer: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> UiError {
        UiError::new(StatusCode::NOT_FOUND, "Not found", message)
    }

    pub fn internal(detail: impl std::fmt::Display) -> UiError {
        tracing::error!(error = %detail, "a page failed");
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "the page could not be made; the server log says why",
        )
    }

    /// The same error, shown to `viewer`.
    pub fn seen_by(mut self, viewer: &Viewer) -> UiError {
        self.viewer = Some(Box::new(viewer.clone()));
        self
    }
}

impl From<crate::deploy::actions::ActionError> for UiError {
    fn from(error: crate::deploy::actions::ActionError) -> UiError {
        use crate::deploy::actions::ActionError;
        match error {
            ActionError::Forbidden(message) => {
                UiError::new(StatusCode::FORBIDDEN, "Not allowed", message)
            }
            ActionError::Refused(message) => UiError::new(StatusCode::CONFLICT, "Refused", message),
            ActionError::Store(error) => UiError::internal(error),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let viewer = self.viewer.map(|viewer| *viewer).unwrap_or_default();
        let body = html! {
            h1 { (self.title) }
            p.error role="alert" { (self.message) }
            p { a href="/" { "Back to the runs" } }
        };
        (self.status, page(&viewer, self.title, Nav::None, body)).into_response()
    }
}

/// Runs blocking store work off the async threads; a panic or store error becomes a 500 page.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(UiError::internal)?
}

/// A page's outcome after an action: what happened, and where to go next.
pub fn done(viewer: &Viewer, title: &'static str, message: &str, back: &str) -> Markup {
    page(
        viewer,
        title,
        Nav::None,
        html! {
            h1 { (title) }
            p.notice role="status" { (message) }
            p { a href=(back) { "Back" } }
        },
    )
}
