//! Authentication by signed tokens (HS256 JWTs) that list the documents a client may read and
//! write.
//!
//! Claims: `exp` (required, seconds since the epoch), `sub` (optional, for logs), `read` and
//! `write`: lists of document patterns, each an exact id, a prefix ending in `*` (`"team-1/*"`),
//! or `"*"` for every document. Write access implies read access.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sync_protocol::Access;

/// What a token grants.
///
/// ```
/// use sync_protocol::Access;
/// use sync_server::auth::Grant;
///
/// let grant = Grant { subject: "ana".into(), read: vec!["*".into()],
///                     write: vec!["team/*".into()], expires_at: None };
/// assert_eq!(grant.access("team/notes"), Some(Access::ReadWrite));
/// assert_eq!(grant.access("other"), Some(Access::ReadOnly));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Who the token was issued to (for logs).
    pub subject: String,
    /// Patterns of documents the holder may read.
    pub read: Vec<String>,
    /// Patterns of documents the holder may write (and read).
    pub write: Vec<String>,
    /// Expiry in seconds since the Unix epoch; `None` for the open (no secret) mode.
    pub expires_at: Option<u64>,
}

impl Grant {
    /// Everything, for servers without a secret (loopback only).
    pub fn open() -> Grant {
        Grant {
            subject: "anonymous".into(),
            read: vec!["*".into()],
            write: vec!["*".into()],
            expires_at: None,
        }
    }

    /// The access this grant gives to `doc`, if any.
    pub fn access(&self, doc: &str) -> Option<Access> {
        let matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => doc.starts_with(prefix),
            None => pattern == doc,
        };
        if self.write.iter().any(matches) {
            Some(Access::ReadWrite)
        } else if self.read.iter().any(matches) {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }

    /// Whether the grant has expired at `now` (seconds since the epoch).
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|exp| exp <= now)
    }
}

/// The claims inside a token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
}

/// Verifies tokens, or grants everything when the server runs open.
#[derive(Clone)]
pub struct Authenticator {
    key: Option<DecodingKey>,
    validation: Validation,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("open", &self.key.is_none())
            .finish()
    }
}

impl Authenticator {
    /// Verifies HS256 tokens signed with `secret`; `None` runs open.
    pub fn new(secret: Option<&str>) -> Authenticator {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_exp = true;
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        Authenticator {
            key: secret.map(|s| DecodingKey::from_secret(s.as_bytes())),
            validation,
        }
    }

    /// Whether anyone is let in.
    pub fn is_open(&self) -> bool {
        self.key.is_none()
    }

    /// What `token` grants, or why it grants nothing.
    ///
    /// ```
    /// use sync_server::auth::{Authenticator, AuthError, issue_token};
    ///
    /// let auth = Authenticator::new(Some("a long enough test secret"));
    /// let token = issue_token("a long enough test secret", "ana", &["*"], &[], 3600).unwrap();
    /// assert_eq!(auth.verify(Some(&token)).unwrap().subject, "ana");
    /// assert_eq!(auth.verify(None), Err(AuthError::Missing));
    /// assert!(matches!(auth.verify(Some("x.y.z")), Err(AuthError::Invalid(_))));
    /// ```
    pub fn verify(&self, token: Option<&str>) -> Result<Grant, AuthError> {
        let Some(key) = &self.key else {
            return Ok(Grant::open());
        };
        let token = token.ok_or(AuthError::Missing)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid(e.to_string()),
                }
            })?;
        Ok(Grant {
            subject: data.claims.sub,
            read: data.claims.read,
            write: data.claims.write,
            expires_at: Some(data.claims.exp),
        })
    }
}

/// Signs a token (for tests, tools, and apps whose backend issues tokens in Rust).
pub fn issue_token(
    secret: &str,
    subject: &str,
    read: &[&str],
    write: &[&str],
    valid_for_secs: u64,
) -> Result<String, AuthError> {
    let claims = Claims {
        exp: unix_now().saturating_add(valid_for_secs),
        sub: subject.to_owned(),
        read: read.iter().map(|s| s.to_string()).collect(),
        write: write.iter().map(|s| s.to_string()).collect(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a token grants nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The server needs a token and the client sent none.
    Missing,
    /// The token's `exp` has passed.
    Expired,
    /// The token is malformed or its signature does not verify.
    Invalid(String),
}

impl AuthError {
    /// What the client is told: the kind of failure and nothing more. The full error (which
    /// can quote the token library's internals: decoder positions, algorithm names) is for the
    /// server's log only.
    ///
    /// ```
    /// use sync_server::auth::{AuthError, Authenticator};
    /// let auth = Authenticator::new(Some("a long enough test secret"));
    /// let error = auth.verify(Some("not.a.token")).unwrap_err();
    /// assert_eq!(error.client_message(), "invalid token");
    /// ```
    pub fn client_message(&self) -> &'static str {
        match self {
            AuthError::Missing => "this server needs a token in the Hello frame",
            AuthError::Expired => "the token has expired",
            AuthError::Invalid(_) => "invalid token",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str("this server needs a token in the Hello frame"),
            AuthError::Expired => f.write_str("the token has expired"),
            AuthError::Invalid(why) => write!(f, "the token is not valid: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a long enough test secret";

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let auth = Authenticator::new(Some(SECRET));
        let mut claims = Claims {
            exp: unix_now() - 60,
            sub: "x".into(),
            read: vec!["*".into()],
            write: vec![],
        };
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(auth.verify(Some(&expired)), Err(AuthError::Expired));
        claims.exp = unix_now() + 60;
        let foreign = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"another secret entirely"),
        )
        .unwrap();
        assert!(matches!(
            auth.verify(Some(&foreign)),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let grant = Grant {
            subject: String::new(),
            read: vec!["a".into(), "docs/*".into()],
            write: vec![],
            expires_at: None,
        };
        assert_eq!(grant.access("a"), Some(Access::ReadOnly));
        assert_eq!(grant.access("ab"), None);
        assert_eq!(grant.access("docs/1"), Some(Access::ReadOnly));
        assert_eq!(grant.access("doc"), None);
    }
}
