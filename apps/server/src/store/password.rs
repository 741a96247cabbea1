//! Password hashing: argon2id into PHC strings, and a check that costs the same whether or not
//! the account exists.
//!
//! A login for a name with no account still runs one full argon2 verification, against a dummy
//! hash made at startup with the same parameters as real ones. Otherwise "unknown user" would
//! answer in microseconds and "wrong password" in tens of milliseconds, and anyone could probe
//! which accounts exist by timing failed logins.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::StoreError;

/// Hashes new passwords and checks given ones against stored PHC strings.
pub(super) struct PasswordHashing {
    argon2: Argon2<'static>,
    /// A hash of a random password, checked when the account does not exist.
    dummy_hash: String,
}

impl PasswordHashing {
    /// Argon2id with the crate's default (OWASP-recommended) parameters, or the cheapest
    /// allowed parameters when `fast_for_tests`.
    pub(super) fn new(fast_for_tests: bool) -> Result<PasswordHashing, StoreError> {
        let params = if fast_for_tests {
            Params::new(
                Params::MIN_M_COST,
                Params::MIN_T_COST,
                Params::MIN_P_COST,
                None,
            )
            .map_err(argon2::password_hash::Error::from)?
        } else {
            Params::default()
        };
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_password = SaltString::generate(&mut OsRng);
        let dummy_hash = hash_with(&argon2, dummy_password.as_str())?;
        Ok(PasswordHashing { argon2, dummy_hash })
    }

    /// A PHC string (`$argon2id$v=19$m=…`) for `password`, with a fresh random salt.
    pub(super) fn hash(&self, password: &str) -> Result<String, StoreError> {
        hash_with(&self.argon2, password)
    }

    /// Whether `password` matches `stored` (a PHC string); `None` means the account does not
    /// exist, and then the dummy hash is checked so the call takes as long as a real one.
    ///
    /// The parameters are read from the PHC string, so hashes made with older parameters still
    /// verify.
    pub(super) fn matches(&self, stored: Option<&str>, password: &str) -> Result<bool, StoreError> {
        let phc = PasswordHash::new(stored.unwrap_or(&self.dummy_hash))?;
        let matched = match self.argon2.verify_password(password.as_bytes(), &phc) {
            Ok(()) => true,
            Err(argon2::password_hash::Error::Password) => false,
            Err(e) => return Err(e.into()),
        };
        Ok(matched && stored.is_some())
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_phc_strings() {
        let hashing = PasswordHashing::new(true).unwrap();
        let a = hashing.hash("secret").unwrap();
        let b = hashing.hash("secret").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "same password, different salt");
        assert!(!a.contains("secret"));
        assert!(hashing.matches(Some(&a), "secret").unwrap());
        assert!(!hashing.matches(Some(&a), "Secret").unwrap());
    }

    #[test]
    fn production_parameters_are_the_argon2id_defaults() {
        let hashing = PasswordHashing::new(false).unwrap();
        let default = Params::default();
        let expected = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            default.m_cost(),
            default.t_cost(),
            default.p_cost()
        );
        assert!(
            hashing.dummy_hash.starts_with(&expected),
            "{}",
            hashing.dummy_hash
        );
    }

    #[test]
    fn an_unknown_account_never_matches_even_the_dummy_password() {
        let hashing = PasswordHashing::new(true).unwrap();
        assert!(!hashing.matches(None, "").unwrap());
        assert!(!hashing.matches(None, "anything").unwrap());
    }

    #[test]
    fn a_corrupt_stored_hash_is_an_error_not_a_mismatch() {
        let hashing = PasswordHashing::new(true).unwrap();
        let err = hashing.matches(Some("not a phc string"), "x").unwrap_err();
        assert!(matches!(err, StoreError::Hash(_)));
    }
}
