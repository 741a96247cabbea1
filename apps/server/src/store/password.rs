//! Password hashing: argon2id into PHC strings, and a check that costs the same whether or not
//! the account exists.
//!
//! A login for a name with no account still runs one full argon2 verification, against a dummy
//! hash made at startup with the same parameters as real ones. Otherwise "unknown user" would
//! answer in microseconds and "wrong password" in tens of milliseconds, and anyone could probe
//! which accounts exist by timing failed logins.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::password_memory::PasswordMemory;
use super::StoreError;

/// Hashes new passwords and checks given ones against stored PHC strings.
///
/// Shared (behind an `Arc`) by whoever checks passwords, and needing no store lock: a check
/// reads the stored hash under the store's lock, then hashes here without it. Every run
/// borrows its argon2 memory (19 MiB with the default parameters) from a pool that lends at
/// most one block per core at once (see `password_memory.rs`), so checks on as many threads
/// as cores run side by side and memory stays at cores × 19 MiB, whoever calls.
pub struct PasswordHashing {
    params: Params,
    /// A hash of a random password, checked when the account does not exist.
    dummy_hash: String,
    memory: PasswordMemory,
}

impl PasswordHashing {
    /// Argon2id with the crate's default (OWASP-recommended) parameters, or the cheapest
    /// allowed parameters when `fast_for_tests`; at most one run per core at once.
    pub(super) fn new(fast_for_tests: bool) -> Result<PasswordHashing, StoreError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordHashing::with_parallelism(fast_for_tests, cores)
    }

    /// As `new`, with at most `parallel` runs at once.
    pub(super) fn with_parallelism(
        fast_for_tests: bool,
        parallel: usize,
    ) -> Result<PasswordHashing, StoreError> {
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
        let mut hashing = PasswordHashing {
            params,
            dummy_hash: String::new(),
            memory: PasswordMemory::new(parallel),
        };
        let dummy_password = SaltString::generate(&mut OsRng);
        hashing.dummy_hash = hashing.hash(dummy_password.as_str())?;
        Ok(hashing)
    }

    /// The hash a new account's `password` is stored as: refused if empty, else
    /// [`hash`](PasswordHashing::hash). Both ways an account is made (the administrator's
    /// `add_user`, a client's registration) go through here.
    pub fn hash_new(&self, password: &str) -> Result<String, StoreError> {
        if password.is_empty() {
            return Err(StoreError::EmptyPassword);
        }
        self.hash(password)
    }

    /// A PHC string (`$argon2id$v=19$m=…`) for `password`, with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, StoreError> {
        let salt = SaltString::generate(&mut OsRng);
        let output_len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
        let output = self.run(
            algorithm,
            version,
            &self.params,
            password,
            &salt,
            output_len,
        )?;
        let phc = PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&self.params)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches `stored` (a PHC string); `None` means the account does not
    /// exist, and then the dummy hash is checked so the call takes as long as a real one.
    ///
    /// The parameters are read from the PHC string, so hashes made with older parameters still
    /// verify.
    pub fn matches(&self, stored: Option<&str>, password: &str) -> Result<bool, StoreError> {
        use argon2::password_hash::Error;
        let phc = PasswordHash::new(stored.unwrap_or(&self.dummy_hash))?;
        let algorithm = Algorithm::try_from(phc.algorithm)?;
        let version = phc
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(Error::from)?
            .unwrap_or_default();
        let params = Params::try_from(&phc)?;
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
            return Err(Error::PhcStringField.into());
        };
        let output = self.run(algorithm, version, &params, password, salt, expected.len())?;
        // `Output`'s equality is constant-time.
        Ok(output == expected && stored.is_some())
    }

    /// Argon2 of `password` and `salt` into `output_len` bytes, in the reused memory.
    fn run<'s>(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: &Params,
        password: &str,
        salt: impl Into<argon2::password_hash::Salt<'s>>,
        output_len: usize,
    ) -> Result<Output, StoreError> {
        let mut salt_bytes = [0u8; 64];
        let salt = salt.into().decode_b64(&mut salt_bytes)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let mut memory = self.memory.lend();
        let blocks = memory.blocks(params.block_count())?;
        let output = Output::init_with(output_len, |out| {
            argon2
                .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *blocks)
                .map_err(Into::into)
        })?;
        Ok(output)
    }
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
    fn hashes_interoperate_with_the_argon2_crates_own_hasher_and_verifier() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hashing = PasswordHashing::new(true).unwrap();
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, hashing.params.clone());
        // A hash stored by an earlier version of the server (the crate's own hasher) verifies.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = standard
            .hash_password(b"secret", &salt)
            .unwrap()
            .to_string();
        assert!(hashing.matches(Some(&theirs), "secret").unwrap());
        assert!(!hashing.matches(Some(&theirs), "secreT").unwrap());
        // And a hash made here verifies with the crate's own verifier.
        let ours = hashing.hash("secret").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(standard.verify_password(b"secret", &parsed).is_ok());
        assert!(standard.verify_password(b"other", &parsed).is_err());
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
