//! The load clients' profile keys, derived from their names.
//!
//! A real client keeps its key in its profile; a load client keeps none, so it derives it:
//! the same name gets the same key in every run. That is what lets `idle` enrol its clients
//! once (their keys bound by a password login) and bring them back as returning clients,
//! after a server restart or in a later run on the same `--data` directory, logging in with
//! the key alone. The keys are for benchmarks only: anyone can derive them.

use breeze_core::secure::IdentityKey;
use breeze_core::wire::UserName;

/// The profile key of the load client `name`.
pub fn key_of(name: &UserName) -> IdentityKey {
    IdentityKey::from_secret(blake3::derive_key(
        "breeze-bench load client profile key v1",
        name.as_str().as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_always_gets_the_same_key_and_names_differ() {
        let (a, b) = (
            UserName::new("idle.000001").unwrap(),
            UserName::new("idle.000002").unwrap(),
        );
        assert_eq!(key_of(&a).public(), key_of(&a).public());
        assert_ne!(key_of(&a).public(), key_of(&b).public());
    }
}
