//! A password as the cores carry it: compared, sent sealed, checked by the host, never shown.
//!
//! Configurations, frames and actions derive `Debug`, and a `Debug` print is how values end
//! up in logs; this type prints as `Password(..)` whatever it holds, so no log line can carry
//! a password by accident. On the wire it is a plain string.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A password; its `Debug` form never shows it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps `password`.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password itself, for the one place that needs it: the host's check.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// No password (a key login needs none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Password(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Password(password.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let shown = format!("{:?}", Password::new("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        let frame = crate::wire::ClientFrame::Login {
            user: crate::wire::UserName::new("alice").unwrap(),
            password: "hunter2".into(),
            p2p_port: 1,
            register: false,
        };
        assert!(!format!("{frame:?}").contains("hunter2"));
    }
}
