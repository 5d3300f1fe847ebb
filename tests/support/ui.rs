#![allow(dead_code)]
//! The web UI in process: a throwaway store behind `server::router`, requests sent with
//! `tower::ServiceExt::oneshot`, people signed in through the real sign-in form.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sluice::model::access::{Role, token_sha256};
use sluice::server::ui::{UiRead, UiSettings};
use sluice::server::{AppState, Metrics, router};
use sluice::store::{Database, NewApiToken};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Notify;
use tower::ServiceExt;

pub struct Ui {
    pub state: AppState,
    pub database: Arc<dyn Database>,
    _dir: tempfile::TempDir,
}

/// One answer: status, headers and the body as text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The `Set-Cookie` value named `name` (`name=value`), if the answer set it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with(&format!("{name}=")))
            .map(|value| value.split(';').next().unwrap_or_default().to_owned())
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
    }
}

impl Ui {
    /// The SQLite file behind `database`.
    pub fn database_path(&self) -> std::path::PathBuf {
        self._dir.path().join("sluice.db")
    }

    /// Reading open to guests.
    pub fn open() -> Ui {
        Ui::with_read(UiRead::Open)
    }

    pub fn with_read(read: UiRead) -> Ui {
        let dir = tempfile::tempdir().unwrap();
        let database = sluice::store::open(&dir.path().join("sluice.db")).unwrap();
        let (updates, _) = tokio::sync::broadcast::channel(1024);
        let state = AppState {
            store: database.clone(),
            deploy_store: database.clone(),
            promotion_wakeup: Arc::new(Notify::new()),
            api_token: Some(Arc::new("bootstrap-secret".to_owned())),
            webhook_secret: Arc::new(b"secret".to_vec()),
            repositories: Arc::new(BTreeMap::from([(
                "acme/ml-platform".to_owned(),
                "/nonexistent".to_owned(),
            )])),
            metrics: Arc::new(Metrics::default()),
            intake_wakeup: Arc::new(Notify::new()),
            body_limits: Default::default(),
            run_updates: updates,
            dispatcher_wakeup: Arc::new(Notify::new()),
            drift_asks: None,
            ui: Arc::new(UiSettings {
                read,
                secure_cookies: false,
                closing: Default::default(),
            }),
        };
        Ui {
            state,
            database,
            _dir: dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET path`, as the holder of `session` (a `sluice_session=…` pair) if given.
    pub async fn get(&self, path: &str, session: Option<&str>) -> Answer {
        let mut request = Request::get(path);
        if let Some(session) = session {
            request = request.header(header::COOKIE, session);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// `POST path` with a form, as the holder of `session` if given.
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        session: Option<&str>,
    ) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(session) = session {
            request = request.header(header::COOKIE, session);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// Makes `login` a personal token with `role` and signs in with it through the form:
    /// the session cookie (`sluice_session=…`) and the CSRF token of its forms.
    pub async fn sign_in(&self, login: &str, role: Role) -> (String, String) {
        let token = format!("sluice_test_{login}");
        self.database
            .insert_api_token(&NewApiToken {
                name: login.to_owned(),
                role,
                sha256: token_sha256(&token),
                created_at: chrono::Utc::now().timestamp(),
                expires_at: None,
            })
            .unwrap();
        let form = self.get("/signin", None).await;
        let check = form
            .cookie("sluice_signin")
            .expect("the sign-in form sets its cookie");
        let value = check.split_once('=').unwrap().1.to_owned();
        let answer = self
            .post_form(
                "/signin",
                &[("token", &token), ("csrf", &value), ("next", "/")],
                Some(&check),
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let session = answer
            .cookie("sluice_session")
            .expect("signing in sets the session");
        let page = self.get("/", Some(&session)).await;
        let csrf = csrf_of(&page.body).expect("a signed-in page carries a CSRF token");
        (session, csrf)
    }
}

/// The CSRF token in a page's forms.
pub fn csrf_of(page: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_owned()).filter(|value| !value.is_empty())
}

/// The board's column of one environment, as its HTML.
pub fn column<'a>(page: &'a str, environment: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"env-{environment}\""))
        .unwrap_or_else(|| panic!("no column for {environment}: {page}"));
    let end = page[start..].find("</section>").unwrap() + start;
    &page[start..end]
}
