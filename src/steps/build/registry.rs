//! The registry's HTTP API (distribution v2): the digest a tag points to, and copying a manifest
//! to new tags without pulling the image. Speaks basic auth and the bearer-token challenge, with
//! credentials from the step or the Docker `config.json`; credentials never reach a log or an
//! error. Loopback registries and those listed in `SLUICE_INSECURE_REGISTRIES` are spoken to in
//! plain HTTP, as the Docker engine does for loopback.

use super::reference::ImageName;
use std::time::Duration;

/// The manifest types sluice asks for, Docker's and OCI's, single images and indexes.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Credentials({}, ***)", self.username)
    }
}

/// One registry's API for one repository.
pub struct Registry {
    client: reqwest::Client,
    base_url: String,
    name: ImageName,
    credentials: Option<Credentials>,
}

impl Registry {
    pub fn new(name: &ImageName, credentials: Option<Credentials>) -> Registry {
        let host = if name.registry == "docker.io" {
            "registry-1.docker.io".to_owned()
        } else {
            name.registry.clone()
        };
        let scheme = if is_plain_http(&name.registry) {
            "http"
        } else {
            "https"
        };
        Registry {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
            base_url: format!("{scheme}://{host}"),
            name: name.clone(),
            credentials,
        }
    }

    /// The digest the tag points to, `None` when the registry has no such tag.
    pub async fn manifest_digest(&self, tag: &str) -> Result<Option<String>, String> {
        let url = self.manifest_url(tag);
        let response = self
            .send(
                |client| client.head(&url).header("Accept", MANIFEST_TYPES),
                "pull",
            )
            .await?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                match response
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|value| value.to_str().ok())
                {
                    Some(digest) => Ok(Some(digest.to_owned())),
                    None => {
                        let (body, _) = self.manifest(tag).await?;
                        Ok(Some(format!("sha256:{}", hex::encode(sha2_digest(&body)))))
                    }
                }
            }
            status => Err(self.refused("reading", tag, status)),
        }
    }

    /// Points `to_tag` at the manifest `from` (a tag or a digest) refers to. The layers are
    /// already in the repository, so nothing but the manifest moves.
    pub async fn copy_tag(&self, from: &str, to_tag: &str) -> Result<(), String> {
        let (body, content_type) = self.manifest(from).await?;
        let url = self.manifest_url(to_tag);
        let response = self
            .send(
                |client| {
                    client
                        .put(&url)
                        .header("Content-Type", content_type.clone())
                        .body(body.clone())
                },
                "pull,push",
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.refused("tagging", to_tag, response.status()))
        }
    }

    async fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String), String> {
        let url = self.manifest_url(reference);
        let response = self
            .send(
                |client| client.get(&url).header("Accept", MANIFEST_TYPES),
                "pull",
            )
            .await?;
        if !response.status().is_success() {
            return Err(self.refused("reading", reference, response.status()));
        }
        let content_type = response
            .headers()
            .get("Content-Type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("application/vnd.docker.distribution.manifest.v2+json")
            .to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.unreachable(&error))?;
        Ok((body.to_vec(), content_type))
    }

    fn manifest_url(&self, reference: &str) -> String {
        format!(
            "{}/v2/{}/manifests/{reference}",
            self.base_url, self.name.repository
        )
    }

    /// Sends the request; on a 401 answers the challenge (basic, or a bearer token for
    /// `scope` actions) once and sends it again.
    async fn send(
        &self,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        actions: &str,
    ) -> Result<reqwest::Response, String> {
        let first = request(&self.client)
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let challenge = first
            .headers()
            .get("WWW-Authenticate")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let authorised = if challenge.to_ascii_lowercase().starts_with("bearer") {
            let token = self.bearer_token(&challenge, actions).await?;
            request(&self.client).bearer_auth(token)
        } else {
            let Some(credentials) = &self.credentials else {
                return Err(self.no_credentials());
            };
            request(&self.client).basic_auth(&credentials.username, Some(&credentials.password))
        };
        authorised
            .send()
            .await
            .map_err(|error| self.unreachable(&error))
    }

    async fn bearer_token(&self, challenge: &str, actions: &str) -> Result<String, String> {
        let parameters = challenge_parameters(challenge);
        let realm = parameters
            .iter()
            .find(|(key, _)| key == "realm")
            .map(|(_, value)| value.clone())
            .ok_or_else(|| {
                format!(
                    "registry {} asked for a token without saying where to get one; check the registry address",
                    self.name.registry
                )
            })?;
        let mut query: Vec<(String, String)> = parameters
            .into_iter()
            .filter(|(key, _)| key == "service")
            .collect();
        query.push((
            "scope".to_owned(),
            format!("repository:{}:{actions}", self.name.repository),
        ));
        let mut token_request = self.client.get(&realm).query(&query);
        if let Some(credentials) = &self.credentials {
            token_request =
                token_request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        let response = token_request
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        if !response.status().is_success() {
            return Err(if self.credentials.is_none() {
                self.no_credentials()
            } else {
                format!(
                    "registry {} refused the credentials for {} (HTTP {}); check the user name and token",
                    self.name.registry,
                    self.name.repository,
                    response.status().as_u16()
                )
            });
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|error| self.unreachable(&error))?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|token| token.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "registry {} answered the token request without a token; check the registry",
                    self.name.registry
                )
            })
    }

    fn unreachable(&self, error: &reqwest::Error) -> String {
        // reqwest errors carry the URL, never the credentials.
        format!(
            "cannot reach registry {} ({error}); check that it runs (scripts/setup-registry.sh starts one on 127.0.0.1:5000) and that the address is right",
            self.name.registry
        )
    }

    fn no_credentials(&self) -> String {
        format!(
            "registry {} requires credentials for {} and none were given; set `credentials:` on the build step or log in with `docker login {}`",
            self.name.registry, self.name.repository, self.name.registry
        )
    }

    fn refused(&self, doing: &str, reference: &str, status: reqwest::StatusCode) -> String {
        format!(
            "registry {} refused {doing} {}:{reference} (HTTP {}); check the credentials and that the repository may be written",
            self.name.registry,
            self.name.repository,
            status.as_u16()
        )
    }
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// `Bearer realm="https://auth/token",service="registry"` → `[(realm, ...), (service, ...)]`.
fn challenge_parameters(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge
        .split_once(' ')
        .map_or("", |(_, parameters)| parameters);
    let mut parameters = Vec::new();
    let mut remaining = rest.trim();
    while let Some((key, after_key)) = remaining.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after_value) = if let Some(quoted) = after_key.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, after)) => (value.to_owned(), after),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after_key.split_once(',') {
                Some((value, after)) => (value.trim().to_owned(), after),
                None => (after_key.trim().to_owned(), ""),
            }
        };
        parameters.push((key, value));
        remaining = after_value.trim_start_matches(',').trim();
    }
    parameters
}

/// Loopback registries speak plain HTTP, as the Docker engine allows by default; so do the
/// hosts listed (comma-separated) in `SLUICE_INSECURE_REGISTRIES`.
fn is_plain_http(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(registry, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    loopback
        || std::env::var("SLUICE_INSECURE_REGISTRIES").is_ok_and(|list| {
            list.split(',')
                .any(|entry| entry.trim() == registry || entry.trim() == host)
        })
}

/// The credentials for a registry in the Docker `config.json` (`$DOCKER_CONFIG/config.json`,
/// else `~/.docker/config.json`): its `auths` entry, as `auth` (base64 of `user:password`) or
/// `username` and `password`. Credential helpers are not run.
pub fn docker_config_credentials(registry: &str) -> Option<Credentials> {
    let directory = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".docker"))
        })?;
    let text = std::fs::read_to_string(directory.join("config.json")).ok()?;
    credentials_from_config(&text, registry)
}

fn credentials_from_config(text: &str, registry: &str) -> Option<Credentials> {
    let config: serde_json::Value = serde_json::from_str(text).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let hub = registry == "docker.io";
    let entry = auths.iter().find_map(|(key, value)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        let matches = host == registry
            || (hub && (host == "index.docker.io" || host == "registry-1.docker.io"));
        matches.then_some(value)
    })?;
    if let (Some(username), Some(password)) = (
        entry.get("username").and_then(|value| value.as_str()),
        entry.get("password").and_then(|value| value.as_str()),
    ) {
        return Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    let decoded = decode_base64(entry.get("auth")?.as_str()?)?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Standard base64 with or without padding; `None` on anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |character: u8| -> Option<u32> {
        Some(match character {
            b'A'..=b'Z' => character - b'A',
            b'a'..=b'z' => character - b'a' + 26,
            b'0'..=b'9' => character - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut output = Vec::new();
    let mut accumulator = 0u32;
    let mut bits = 0;
    for character in text.trim().trim_end_matches('=').bytes() {
        accumulator = (accumulator << 6) | value(character)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            output.push((accumulator >> bits) as u8);
            accumulator &= (1 << bits) - 1;
        }
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        assert_eq!(
            challenge_parameters(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#
            ),
            vec![
                (
                    "realm".to_owned(),
                    "https://auth.docker.io/token".to_owned()
                ),
                ("service".to_owned(), "registry.docker.io".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull".to_owned()),
            ]
        );
    }

    #[test]
    fn loopback_registries_speak_plain_http() {
        assert!(is_plain_http("127.0.0.1:5000"));
        assert!(is_plain_http("localhost:5000"));
        assert!(is_plain_http("[::1]:5000"));
        assert!(!is_plain_http("registry.example.com"));
        assert!(!is_plain_http("10.0.0.1:5000"));
    }

    #[test]
    fn docker_config_auths_are_read() {
        let config = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNzd29yZA=="},"reg.example.com":{"username":"ci","password":"tok"}}}"#;
        assert_eq!(
            credentials_from_config(config, "docker.io"),
            Some(Credentials {
                username: "user".into(),
                password: "password".into()
            })
        );
        assert_eq!(
            credentials_from_config(config, "reg.example.com")
                .unwrap()
                .password,
            "tok"
        );
        assert_eq!(credentials_from_config(config, "127.0.0.1:5000"), None);
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!(
            "{:?}",
            Credentials {
                username: "ci".into(),
                password: "s3cret".into()
            }
        );
        assert!(!shown.contains("s3cret"));
    }
}
