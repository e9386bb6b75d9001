//! The operator's signing keystore: one secp256k1 key in an encrypted Web3 Secret Storage file
//! (scrypt + AES-128-CTR, via alloy's local signer), and the password it is sealed with.
//!
//! The password comes from, in this order: a file (`--password-file`), the environment variable
//! [`PASSWORD_ENV`], or an interactive prompt. It is held in [`Password`], whose `Debug` prints
//! `***`, so it can never end up in a log line by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use alloy::signers::local::{LocalSignerError, PrivateKeySigner};

/// Environment variable holding the keystore password.
pub const PASSWORD_ENV: &str = "ATTESTA_KEYSTORE_PASSWORD";
/// File name of the signing key inside a keystore directory.
pub const KEY_FILE: &str = "signing-key.json";

/// A keystore password. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a keystore could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No keystore file at the path.
    #[error(
        "no signing key at {path}: create one with `attesta-node keys new` or pass --keystore DIR"
    )]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `keys new` would overwrite an existing key.
    #[error(
        "a signing key already exists at {path}: refusing to overwrite it; pass another --keystore DIR"
    )]
    Exists {
        /// The existing key.
        path: PathBuf,
    },
    /// The password does not open the keystore.
    #[error("wrong password for the keystore {path}: check --password-file or ${PASSWORD_ENV}")]
    WrongPassword {
        /// The keystore.
        path: PathBuf,
    },
    /// The keystore file is not a Web3 Secret Storage file this node can read.
    #[error("the keystore {path} is unreadable or corrupt ({reason}): restore it from a backup")]
    Corrupt {
        /// The keystore.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The two entries at the prompt differ.
    #[error(
        "the two passwords entered differ: run the command again and type the same password twice"
    )]
    PasswordMismatch,
    /// No password source is available.
    #[error(
        "no keystore password: pass --password-file FILE, set ${PASSWORD_ENV}, or run in a terminal to be prompted"
    )]
    NoPassword,
    /// The password is empty.
    #[error("the keystore password is empty: choose a non-empty password")]
    EmptyPassword,
    /// The password file cannot be read.
    #[error("cannot read the password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A private key file cannot be used.
    #[error("the private key file {path} {reason}: it must hold one 32-byte key in hex")]
    PrivateKeyFile {
        /// The file.
        path: PathBuf,
        /// Why (never the key).
        reason: String,
    },
    /// Filesystem trouble while creating or reading a keystore.
    #[error("keystore {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads the password: from `file` if given, else from [`PASSWORD_ENV`], else by prompting on the
/// terminal (`confirm` asks twice, for new keystores).
pub fn read_password(file: Option<&Path>, confirm: bool) -> Result<Password, KeyError> {
    let password = if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| KeyError::PasswordFile { path: path.to_path_buf(), source })?;
        // One trailing newline is the file's line ending, not part of the password.
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        Password::new(text)
    } else if let Ok(env) = std::env::var(PASSWORD_ENV) {
        Password::new(env)
    } else {
        prompt(confirm)?
    };
    if password.0.is_empty() {
        return Err(KeyError::EmptyPassword);
    }
    Ok(password)
}

fn prompt(confirm: bool) -> Result<Password, KeyError> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(KeyError::NoPassword);
    }
    let first =
        rpassword::prompt_password("Keystore password: ").map_err(|_| KeyError::NoPassword)?;
    if confirm {
        let again = rpassword::prompt_password("Repeat the password: ")
            .map_err(|_| KeyError::NoPassword)?;
        if again != first {
            return Err(KeyError::PasswordMismatch);
        }
    }
    Ok(Password::new(first))
}

/// The signing key file of keystore directory `dir`.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// The default keystore directory: `$HOME/.attesta/keystore`.
pub fn default_keystore_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".attesta/keystore")
}

/// Creates a new random signing key in keystore directory `dir` (created with mode 0700 if
/// missing). Refuses to overwrite an existing key.
pub fn create(dir: &Path, password: &Password) -> Result<PrivateKeySigner, KeyError> {
    seal(dir, None, password)
}

/// Seals an existing key into keystore directory `dir` (local devnets and migrations from
/// another key store). Refuses to overwrite an existing key.
pub fn import(
    dir: &Path,
    key: &PrivateKeySigner,
    password: &Password,
) -> Result<PrivateKeySigner, KeyError> {
    seal(dir, Some(key), password)
}

fn seal(
    dir: &Path,
    key: Option<&PrivateKeySigner>,
    password: &Password,
) -> Result<PrivateKeySigner, KeyError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let path = key_path(dir);
    if path.exists() {
        return Err(KeyError::Exists { path });
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyError::Io { path: dir.to_path_buf(), source })?;
    let mut rng = rand::thread_rng();
    let corrupt =
        |e: LocalSignerError| KeyError::Corrupt { path: path.clone(), reason: e.to_string() };
    let (signer, _uuid) = match key {
        None => PrivateKeySigner::new_keystore(dir, &mut rng, password.bytes(), Some(KEY_FILE)),
        Some(key) => PrivateKeySigner::encrypt_keystore(
            dir,
            &mut rng,
            key.to_bytes(),
            password.bytes(),
            Some(KEY_FILE),
        ),
    }
    .map_err(corrupt)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| KeyError::Io { path: path.clone(), source })?;
    tracing::info!(address = %signer.address(), path = %path.display(), "sealed signing key");
    Ok(signer)
}

/// Opens the signing key in keystore directory `dir`.
pub fn load(dir: &Path, password: &Password) -> Result<PrivateKeySigner, KeyError> {
    let path = key_path(dir);
    if !path.is_file() {
        return Err(KeyError::NotFound { path });
    }
    PrivateKeySigner::decrypt_keystore(&path, password.bytes()).map_err(|e| match e {
        // eth-keystore's error type is not re-exported by alloy; its MAC mismatch is the only
        // way a well-formed file fails to open with the wrong password.
        LocalSignerError::EthKeystoreError(ref k) if k.to_string() == "Mac Mismatch" => {
            KeyError::WrongPassword { path }
        }
        other => KeyError::Corrupt { path, reason: other.to_string() },
    })
}

/// Reads a plain hex private key from `path` (the operator account's key, for operators who keep
/// it elsewhere). Error messages never include the file's contents.
pub fn load_private_key_file(path: &Path) -> Result<PrivateKeySigner, KeyError> {
    let err =
        |reason: &str| KeyError::PrivateKeyFile { path: path.to_path_buf(), reason: reason.into() };
    let text = std::fs::read_to_string(path).map_err(|_| err("cannot be read"))?;
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    let mut bytes = [0u8; 32];
    alloy::hex::decode_to_slice(hex, &mut bytes).map_err(|_| err("is not 64 hex digits"))?;
    PrivateKeySigner::from_bytes(&bytes.into()).map_err(|_| err("is not a valid secp256k1 key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_debug_is_redacted() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "***");
    }
}
