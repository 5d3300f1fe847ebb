//! Who is looking at a page. A person signs in with a personal token (`sluice token create`); the
//! server answers with a session cookie (random, HttpOnly, SameSite=Strict, `Secure` behind
//! https) whose sha256 alone is stored, tied to the token's sha256 so that revoking or expiring
//! the token ends the session. Every form carries the session's CSRF token, compared in constant
//! time before anything is done; the sign-in form itself is protected by a double-submit cookie.
//! Reading needs a session only where `ui.read: signed-in`.

use super::layout::{Nav, page};
use super::{UiError, UiRead};
use crate::deploy::actions;
use crate::model::access::{Principal, Role, Via, token_sha256};
use crate::server::AppState;
use crate::store::NewUiSession;
use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

const SESSION_COOKIE: &str = "sluice_session";
const SIGN_IN_COOKIE: &str = "sluice_signin";
/// A session lasts a working day, or less when its token expires sooner.
const SESSION_SECONDS: i64 = 12 * 3600;

/// The person looking (if signed in) and their session's CSRF token.
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    pub principal: Option<Principal>,
    csrf: Option<String>,
    session_sha256: Option<String>,
}

impl Viewer {
    /// The hidden field every form of this session carries.
    pub fn csrf_field(&self) -> maud::Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf.as_deref().unwrap_or_default()); }
    }

    /// Whether the person may do what needs `needed` (to show or hide a button).
    pub fn may(&self, needed: Role) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|principal| principal.role.allows(needed))
    }

    /// The principal acting through a form: refused without a session, with a missing or wrong
    /// CSRF token, or below the role `what` needs, each with what to do instead.
    pub fn act(&self, csrf: Option<&str>, needed: Role, what: &str) -> Result<Principal, UiError> {
        let (Some(principal), Some(expected)) = (&self.principal, &self.csrf) else {
            return Err(UiError::new(
                StatusCode::UNAUTHORIZED,
                "Sign in first",
                format!("{what} needs a person: sign in with a personal token at /signin"),
            )
            .seen_by(self));
        };
        if !same_secret(csrf.unwrap_or_default(), expected) {
            return Err(UiError::new(
                StatusCode::FORBIDDEN,
                "Form expired",
                "the form's CSRF token is missing or does not belong to your session; reload the page and try again",
            )
            .seen_by(self));
        }
        actions::require(principal, needed, what)
            .map_err(|error| UiError::from(error).seen_by(self))?;
        Ok(principal.clone())
    }
}

/// Whether a form's token is the expected one, compared in constant time; an empty one never is.
fn same_secret(given: &str, expected: &str) -> bool {
    !given.is_empty()
        && !expected.is_empty()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            expected.as_bytes(),
        ))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The signed-in person behind the request's session cookie, if any and still valid.
async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Viewer, UiError> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(Viewer::default());
    };
    let sha256 = token_sha256(value);
    let store = state.store.clone();
    super::blocking(move || {
        let now = chrono::Utc::now().timestamp();
        let Some(session) = store.ui_session(&sha256).map_err(UiError::internal)? else {
            return Ok(Viewer::default());
        };
        if session.expires_at <= now {
            return Ok(Viewer::default());
        }
        let Some(token) = store
            .api_token_by_sha256(&session.token_sha256)
            .map_err(UiError::internal)?
        else {
            return Ok(Viewer::default());
        };
        if token.refusal(now).is_some() {
            return Ok(Viewer::default());
        }
        Ok(Viewer {
            principal: Some(Principal {
                person: Some(token.name),
                role: token.role,
                via: Via::PersonalToken,
            }),
            csrf: Some(session.csrf),
            session_sha256: Some(sha256),
        })
    })
    .await
}

/// Whether the request carries a valid session (for the JSON API where reading needs one).
pub async fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    matches!(
        viewer(state, headers).await,
        Ok(Viewer {
            principal: Some(_),
            ..
        })
    )
}

/// A page's reader: signed in or not; where `ui.read: signed-in`, a guest is sent to sign in.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        let viewer = viewer(state, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)?;
        if viewer.principal.is_none() && state.ui.read == UiRead::SignedIn {
            let here = parts
                .uri
                .path_and_query()
                .map(|path| path.as_str())
                .unwrap_or("/");
            let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
            return Err(Redirect::to(&format!("/signin?next={next}")).into_response());
        }
        Ok(viewer)
    }
}

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    pub next: Option<String>,
}

/// Only a path on this server: never another origin (`//evil`, `https://…`).
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

fn cookie_header(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.ui.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are hex")
}

/// `GET /signin`: the form, with a fresh double-submit token.
pub async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Result<Response, UiError> {
    let viewer = viewer(&state, &headers).await?;
    let check = hex::encode(rand::random::<[u8; 16]>());
    let next = local_path(query.next.as_deref()).to_owned();
    let body = html! {
        h1 { "Sign in" }
        p {
            "Sign in with your personal token. An admin makes one with "
            code { "sluice token create NAME --role approver" } "; it is shown once."
        }
        form.signin method="post" action="/signin" {
            input type="hidden" name="csrf" value=(check);
            input type="hidden" name="next" value=(next);
            label for="token" { "Personal token" }
            input #token type="password" name="token" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
    };
    let mut response = page(&viewer, "Sign in", Nav::None, body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(&state, SIGN_IN_COOKIE, &check, 600),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    pub token: String,
    pub csrf: Option<String>,
    pub next: Option<String>,
}

/// `POST /signin`: a personal token becomes a session cookie.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, UiError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !same_secret(form.csrf.as_deref().unwrap_or_default(), expected) {
        return Err(UiError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "the sign-in form's CSRF token is missing or stale; open /signin again and sign in",
        ));
    }
    let token = form.token.trim().to_owned();
    if state
        .api_token
        .as_deref()
        .is_some_and(|bootstrap| bootstrap.as_str() == token)
    {
        return Err(UiError::new(
            StatusCode::UNAUTHORIZED,
            "Not a person",
            "the server's bootstrap token has no person behind it; sign in with a personal token from `sluice token create NAME --role ROLE`",
        ));
    }
    let token_sha = token_sha256(&token);
    let store = state.store.clone();
    let value = hex::encode(rand::random::<[u8; 32]>());
    let session = NewUiSession {
        sha256: token_sha256(&value),
        token_sha256: token_sha.clone(),
        csrf: hex::encode(rand::random::<[u8; 32]>()),
        created_at: chrono::Utc::now().timestamp(),
        expires_at: 0,
    };
    let lifetime = super::blocking(move || {
        let now = session.created_at;
        let Some(record) = store
            .api_token_by_sha256(&token_sha)
            .map_err(UiError::internal)?
        else {
            return Err(UiError::new(
                StatusCode::UNAUTHORIZED,
                "Unknown token",
                "no personal token matches; `sluice token list` shows the tokens there are, and an admin makes one with `sluice token create NAME --role ROLE`",
            ));
        };
        if let Some(refusal) = record.refusal(now) {
            return Err(UiError::new(StatusCode::UNAUTHORIZED, "Token refused", refusal));
        }
        let expires_at = record
            .expires_at
            .map_or(now + SESSION_SECONDS, |end| end.min(now + SESSION_SECONDS));
        store
            .create_ui_session(&NewUiSession {
                expires_at,
                ..session
            })
            .map_err(UiError::internal)?;
        Ok(expires_at - now)
    })
    .await?;
    let mut response = Redirect::to(local_path(form.next.as_deref())).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie_header(&state, SESSION_COOKIE, &value, lifetime),
    );
    headers.append(
        header::SET_COOKIE,
        cookie_header(&state, SIGN_IN_COOKIE, "", 0),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// `POST /signout`: ends the session here and in the store.
pub async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    viewer.act(form.csrf.as_deref(), Role::Viewer, "signing out")?;
    if let Some(sha256) = viewer.session_sha256.clone() {
        let store = state.store.clone();
        super::blocking(move || store.delete_ui_session(&sha256).map_err(UiError::internal))
            .await?;
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(&state, SESSION_COOKIE, "", 0),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_followed_after_signing_in() {
        assert_eq!(local_path(Some("/runs/4")), "/runs/4");
        assert_eq!(local_path(Some("//evil.example/x")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn the_session_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; sluice_session=abc123; other=1"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc123"));
        assert_eq!(cookie(&headers, SIGN_IN_COOKIE), None);
    }
}
