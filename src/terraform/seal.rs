//! Plans at rest: AES-256-GCM with a key from `SLUICE_PLAN_KEY` (64 hex digits or base64 of 32
//! bytes) or from the file named by `SLUICE_PLAN_KEY_FILE`. A sealed plan is
//! `MAGIC || nonce (12 bytes) || ciphertext+tag`, with the plan's sha256 as associated data, so a
//! ciphertext moved to another plan's row does not open. Knows nothing of where sealed bytes live.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::path::Path;

const MAGIC: &[u8] = b"sluice-plan-v1\0";
const NONCE_BYTES: usize = 12;

/// The environment variable holding the key itself.
pub const KEY_VARIABLE: &str = "SLUICE_PLAN_KEY";
/// The environment variable naming a file that holds the key.
pub const KEY_FILE_VARIABLE: &str = "SLUICE_PLAN_KEY_FILE";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "stored Terraform plans are enabled but no key is set; set {KEY_VARIABLE} to 32 random bytes as hex or base64 (e.g. `openssl rand -hex 32`) or {KEY_FILE_VARIABLE} to a file holding them"
    )]
    MissingKey,
    /// Never includes the key or any part of it.
    #[error(
        "the plan key from {source_name} is not 32 bytes as hex or base64; generate one with `openssl rand -hex 32`"
    )]
    MalformedKey { source_name: String },
    #[error("cannot read the plan key file {path}: {message}; check {KEY_FILE_VARIABLE}")]
    KeyFile { path: String, message: String },
    #[error(
        "the stored plan {sha256} does not decrypt: it was tampered with or sealed with another key; plan again"
    )]
    Tampered { sha256: String },
    #[error(
        "the stored plan decrypts to content with sha256 {actual}, not the recorded {expected}; plan again"
    )]
    HashMismatch { expected: String, actual: String },
}

/// The key plans are sealed with. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct PlanKey([u8; 32]);

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PlanKey(redacted)")
    }
}

impl PlanKey {
    pub fn from_bytes(bytes: [u8; 32]) -> PlanKey {
        PlanKey(bytes)
    }

    /// Reads 64 hex digits or base64 of 32 bytes, surrounding whitespace ignored.
    pub fn parse(text: &str, source_name: &str) -> Result<PlanKey, SealError> {
        let trimmed = text.trim();
        let malformed = || SealError::MalformedKey {
            source_name: source_name.to_owned(),
        };
        let bytes = if trimmed.len() == 64 {
            hex::decode(trimmed).map_err(|_| malformed())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(trimmed)
                .map_err(|_| malformed())?
        };
        let array: [u8; 32] = bytes.try_into().map_err(|_| malformed())?;
        Ok(PlanKey(array))
    }

    /// The key from `SLUICE_PLAN_KEY` or `SLUICE_PLAN_KEY_FILE`; `MissingKey` when neither is set.
    pub fn from_env() -> Result<PlanKey, SealError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As `from_env`, with the variables looked up by `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<PlanKey, SealError> {
        if let Some(text) = lookup(KEY_VARIABLE).filter(|text| !text.trim().is_empty()) {
            return PlanKey::parse(&text, KEY_VARIABLE);
        }
        if let Some(path) = lookup(KEY_FILE_VARIABLE).filter(|path| !path.is_empty()) {
            let text =
                std::fs::read_to_string(Path::new(&path)).map_err(|error| SealError::KeyFile {
                    path: path.clone(),
                    message: error.to_string(),
                })?;
            return PlanKey::parse(&text, &path);
        }
        Err(SealError::MissingKey)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }

    /// Seals `plan`; `sha256` (hex) is bound as associated data.
    pub fn seal(&self, plan: &[u8], sha256: &str) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plan,
                    aad: sha256.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(MAGIC.len() + NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a sealed plan and checks that its content hashes to `sha256`.
    pub fn open(&self, sealed: &[u8], sha256: &str) -> Result<Vec<u8>, SealError> {
        let tampered = || SealError::Tampered {
            sha256: sha256.to_owned(),
        };
        let body = sealed.strip_prefix(MAGIC).ok_or_else(tampered)?;
        if body.len() < NONCE_BYTES {
            return Err(tampered());
        }
        let (nonce_bytes, ciphertext) = body.split_at(NONCE_BYTES);
        let nonce_array: [u8; NONCE_BYTES] = nonce_bytes.try_into().map_err(|_| tampered())?;
        let plan = self
            .cipher()
            .decrypt(
                &Nonce::from(nonce_array),
                Payload {
                    msg: ciphertext,
                    aad: sha256.as_bytes(),
                },
            )
            .map_err(|_| tampered())?;
        let actual = sha256_hex(&plan);
        if actual != sha256 {
            return Err(SealError::HashMismatch {
                expected: sha256.to_owned(),
                actual,
            });
        }
        Ok(plan)
    }
}

/// Lowercase hex sha256 of `bytes`: the address of a stored plan.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PlanKey {
        PlanKey::from_bytes([7; 32])
    }

    #[test]
    fn a_sealed_plan_opens_only_unchanged_with_its_key_and_address() {
        let plan = b"a plan with a secret value";
        let address = sha256_hex(plan);
        let sealed = key().seal(plan, &address);
        assert!(!sealed.windows(6).any(|window| window == b"secret"));
        assert_eq!(key().open(&sealed, &address).unwrap(), plan);

        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            key().open(&flipped, &address),
            Err(SealError::Tampered { .. })
        ));
        let other_key = PlanKey::from_bytes([8; 32]);
        assert!(other_key.open(&sealed, &address).is_err());
        assert!(key().open(&sealed, &sha256_hex(b"another plan")).is_err());
    }

    #[test]
    fn keys_come_from_hex_base64_or_a_file_and_a_missing_key_is_named() {
        let hex_key = "11".repeat(32);
        let base64_key = base64::engine::general_purpose::STANDARD.encode([0x11u8; 32]);
        assert_eq!(PlanKey::parse(&hex_key, "x").unwrap().0, [0x11; 32]);
        assert_eq!(PlanKey::parse(&base64_key, "x").unwrap().0, [0x11; 32]);
        let short = PlanKey::parse("abcd", "SLUICE_PLAN_KEY").unwrap_err();
        assert!(short.to_string().contains("SLUICE_PLAN_KEY"), "{short}");
        assert!(!short.to_string().contains("abcd"));

        let missing = PlanKey::from_lookup(|_| None).unwrap_err();
        assert_eq!(missing, SealError::MissingKey);
        assert!(missing.to_string().contains("openssl rand -hex 32"));

        let directory = tempfile::tempdir().unwrap();
        let key_file = directory.path().join("plan.key");
        std::fs::write(&key_file, format!("{hex_key}\n")).unwrap();
        let key_file_text = key_file.display().to_string();
        let from_file =
            PlanKey::from_lookup(|name| (name == KEY_FILE_VARIABLE).then(|| key_file_text.clone()))
                .unwrap();
        assert_eq!(from_file.0, [0x11; 32]);
        assert_eq!(format!("{from_file:?}"), "PlanKey(redacted)");
    }
}
