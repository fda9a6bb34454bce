//! Passwords encrypted at rest: the catalog never stores a source or
//! destination password in clear text.
//!
//! XChaCha20-Poly1305 with a 256-bit key from `SLUICE_SECRET_KEY` (64 hex
//! digits) or, by default, `secret.key` in the data dir (created on first use,
//! mode 0600). Stored form: `enc:v1:<hex nonce><hex ciphertext>`.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::path::Path;

const PREFIX: &str = "enc:v1:";

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// Loads the key from the environment or the data dir, creating the key file if needed.
    pub fn load(data_dir: &Path) -> Result<Self, String> {
        let key: Vec<u8> = if let Ok(hexkey) = std::env::var("SLUICE_SECRET_KEY") {
            hex::decode(hexkey.trim()).map_err(|_| "SLUICE_SECRET_KEY must be 64 hex digits".to_string())?
        } else {
            let path = data_dir.join("secret.key");
            if path.exists() {
                let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if text.trim().is_empty() {
                    return Err(format!(
                        "{} is empty: the key that encrypts the stored passwords is lost. Restore the file from a backup, \
                         or set SLUICE_SECRET_KEY; a data dir without pipes can simply have the file deleted",
                        path.display()
                    ));
                }
                hex::decode(text.trim()).map_err(|_| format!("{} must hold 64 hex digits", path.display()))?
            } else {
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                write_private(&path, &hex::encode(key))?;
                key.to_vec()
            }
        };
        if key.len() != 32 {
            return Err("the secret key must be 32 bytes (64 hex digits)".into());
        }
        Ok(Self { cipher: XChaCha20Poly1305::new_from_slice(&key).expect("32-byte key") })
    }

    pub fn seal(&self, plain: &str) -> String {
        if plain.is_empty() {
            return String::new();
        }
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self.cipher.encrypt(&XNonce::from(nonce), plain.as_bytes()).expect("encryption cannot fail");
        format!("{PREFIX}{}{}", hex::encode(nonce), hex::encode(ct))
    }

    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(body) = stored.strip_prefix(PREFIX) else {
            return if stored.is_empty() { Ok(String::new()) } else { Err("a stored password is not encrypted".into()) };
        };
        let bytes = hex::decode(body).map_err(|_| "corrupt encrypted password".to_string())?;
        if bytes.len() < 24 {
            return Err("corrupt encrypted password".into());
        }
        let nonce: [u8; 24] = bytes[..24].try_into().expect("checked length");
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), &bytes[24..])
            .map_err(|_| "cannot decrypt a stored password: wrong secret key (SLUICE_SECRET_KEY / secret.key)?".to_string())?;
        String::from_utf8(plain).map_err(|_| "corrupt encrypted password".into())
    }
}

/// Writes a file readable only by its owner, atomically: the content goes to
/// a temporary file in the same directory, is flushed to disk, and is then
/// renamed over `path`, so a crash leaves either no file or the whole file
/// (never an empty or partial key, which would make every stored password
/// unreadable). Refuses to replace an existing file.
pub fn write_private(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    if path.exists() {
        return Err(format!("{} already exists", path.display()));
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            // The rename itself is durable once the directory is.
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<_, std::io::Error>(())
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot create {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = SecretBox::load(a.path()).unwrap();
        let sealed = sa.seal("hunter2");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("hunter2"));
        assert_eq!(sa.open(&sealed).unwrap(), "hunter2");
        assert_eq!(SecretBox::load(a.path()).unwrap().open(&sealed).unwrap(), "hunter2");
        assert!(SecretBox::load(b.path()).unwrap().open(&sealed).is_err());
        assert_eq!(sa.open("").unwrap(), "");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.path().join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_empty_key_file_is_refused_naming_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("secret.key"), "").unwrap();
        let err = SecretBox::load(d.path()).err().expect("an empty key must be refused");
        assert!(err.contains("secret.key is empty") && err.contains("backup"), "{err}");
        // No temporary file is left next to a written key.
        let e = tempfile::tempdir().unwrap();
        SecretBox::load(e.path()).unwrap();
        let names: Vec<_> = std::fs::read_dir(e.path()).unwrap().map(|f| f.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, ["secret.key"]);
    }
}
