//! Key or password: how this client gets in.
//!
//! A profile logs in with the password once, which enrols its key on the server (the profile
//! then remembers that, `Profile::mark_enrolled`); from then on it logs in with the key alone
//! and never asks for the password or sends it. Two refusals change that:
//! - `KeyNotEnrolled`: the server does not know the key (its data was reset, or the memory of
//!   enrolment is wrong): the password is asked for, as at the first login, and enrols it
//!   again.
//! - `KeyRevoked`: the server's owner revoked this profile's key. That is final: the password
//!   is not tried (the server would refuse it too); the user is told how to start a new
//!   profile.
//!
//! The password comes from `BREEZE_PASSWORD`, else the terminal (without echo).

use breeze_core::secure::PublicKey;
use breeze_core::wire::UserName;
use breeze_smol::Client;

/// Where the password comes from when not asked on the terminal.
pub const PASSWORD_ENV: &str = "BREEZE_PASSWORD";

/// `BREEZE_PASSWORD`, or asked on the terminal without echo.
pub fn password(user: &UserName) -> Result<String, String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    rpassword::prompt_password(format!("Password for {user}: ")).map_err(|e| {
        format!("cannot read the password from the terminal ({e}); set {PASSWORD_ENV}")
    })
}

/// What the user is told when the server does not know this profile's key, before the
/// password is asked for.
pub fn not_enrolled(user: &UserName) -> String {
    format!(
        "the server does not know this profile's key (was its data reset?): logging in as \
         {user} with the password to enrol it again"
    )
}

/// What the user is told when this profile's key was revoked: why, and how to get in again.
pub fn revoked(user: &UserName, mine: &PublicKey) -> String {
    format!(
        "login refused: the server's owner revoked this profile's key ({}) for {user}. It \
         cannot log in again, not even with the password. To use {user} here, enrol a new \
         profile with your password: start breeze with --profile NEW_DIR (the owner lists \
         the account's keys with `breeze-server account keys {user}`)",
        mine.fingerprint()
    )
}

/// After `KeyNotEnrolled`: gets the password (off the async thread: it may prompt) and logs
/// in with it. The error is fatal for the session.
pub async fn enrol_again(client: &Client, register: bool) -> Result<(), String> {
    let user = client.user().clone();
    let password = smol::unblock(move || password(&user)).await?;
    client.log_in_with_password(password, register).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revocation_message_names_the_key_and_the_way_back() {
        let alice = UserName::new("alice").unwrap();
        let key = PublicKey([4; 32]);
        let text = revoked(&alice, &key);
        assert!(text.contains(&key.fingerprint().to_string()), "{text}");
        assert!(text.contains("--profile NEW_DIR"), "{text}");
        assert!(text.contains("not even with the password"), "{text}");
    }
}
