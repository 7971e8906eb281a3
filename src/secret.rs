//! Encryption at rest for secrets pdm must be able to read back (DNSSEC
//! private keys, registrar credentials): AES-256-GCM with a key from
//! `PDM_SECRET_KEY` or a key file. The associated data binds each ciphertext
//! to its row (e.g. zone + key id), so a ciphertext copied to another row
//! does not decrypt.

use std::fmt;
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::Config;

/// Format version byte at the start of every sealed value.
const VERSION: u8 = 1;

/// Why a secret key could not be loaded or a value not opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key text is not 32 bytes of hex or base64.
    #[error("secret key must be 32 bytes, hex (64 chars) or base64")]
    BadKey,
    /// The key file could not be read or written.
    #[error("secret key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The ciphertext is not ours, was tampered with, or the key is wrong.
    #[error("cannot decrypt (wrong PDM_SECRET_KEY or corrupted value)")]
    Open,
    /// The system RNG failed.
    #[error("random number generator failed")]
    Rng,
    /// `PDM_SECRET_KEY` is set but is not a key.
    #[error("PDM_SECRET_KEY: {0}")]
    Env(Box<SecretError>),
}

/// The data-encryption key. `Debug` never shows it.
pub struct SecretBox {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(<redacted>)")
    }
}

impl SecretBox {
    /// From 32 raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SecretError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// From key text: 64 hex chars or base64 of 32 bytes (whitespace trimmed).
    pub fn from_text(text: &str) -> Result<Self, SecretError> {
        let t = text.trim();
        let bytes = if t.len() == 64 {
            hex::decode(t).map_err(|_| SecretError::BadKey)?
        } else {
            data_encoding::BASE64
                .decode(t.as_bytes())
                .map_err(|_| SecretError::BadKey)?
        };
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Self::from_bytes(&bytes)
    }

    /// Reads the key from `path`; when `create` and the file is missing, writes
    /// a fresh random key there (mode 0600) first. Returns whether it was created.
    pub fn from_file(path: &Path, create: bool) -> Result<(Self, bool), SecretError> {
        let file_err = |source| SecretError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_text(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut key = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| SecretError::Rng)?;
                write_private(path, &hex::encode(key)).map_err(file_err)?;
                Ok((Self::from_bytes(&key)?, true))
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// Encrypts `plaintext` bound to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SecretError::Rng)?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Rng)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts what [`SecretBox::seal`] produced for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SecretError::Open);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SecretError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The secret key that seals private keys: `PDM_SECRET_KEY`, else
/// `dnssec.secret_key_file` (created when missing), else — for the demo
/// only — `./pdm.secret`. Returns `None` when no key is configured.
pub fn load_secret(config: &Config) -> Result<Option<SecretBox>, SecretError> {
    if let Ok(text) = std::env::var("PDM_SECRET_KEY") {
        return Ok(Some(
            SecretBox::from_text(&text).map_err(|e| SecretError::Env(Box::new(e)))?,
        ));
    }
    let path = match (&config.dnssec.secret_key_file, config.demo) {
        (Some(p), _) => p.clone(),
        (None, true) => std::path::PathBuf::from("pdm.secret"),
        (None, false) => return Ok(None),
    };
    let (secret, created) = SecretBox::from_file(&path, true)?;
    if created {
        tracing::warn!(file = %path.display(), "created a new secret key for DNSSEC private keys; back it up with the database");
    }
    Ok(Some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let b = SecretBox::from_text(&"11".repeat(32)).unwrap();
        let sealed = b.seal("zone a", b"private").unwrap();
        assert_eq!(b.open("zone a", &sealed).unwrap(), b"private");
        assert!(b.open("zone b", &sealed).is_err());
        let other = SecretBox::from_text(&"22".repeat(32)).unwrap();
        assert!(other.open("zone a", &sealed).is_err());
        assert!(!sealed.windows(7).any(|w| w == b"private"));
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(SecretBox::from_text("short").is_err());
        assert!(SecretBox::from_text(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let (a, created) = SecretBox::from_file(&p, true).unwrap();
        assert!(created);
        let (b, created) = SecretBox::from_file(&p, true).unwrap();
        assert!(!created);
        let s = a.seal("c", b"x").unwrap();
        assert_eq!(b.open("c", &s).unwrap(), b"x");
    }
}
