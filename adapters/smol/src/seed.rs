//! Seeds for the cores' random number generators.

use std::io;

/// 32 bytes from the operating system's CSPRNG.
///
/// The cores draw their handshakes' ephemeral keys, end-to-end nonces and message epochs from
/// their seeds, and hosts make identity keys from these bytes, so they must be unpredictable:
/// a hash of the time and the process id (e.g. std's `RandomState`) is not good enough.
pub fn os_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(io::Error::from)?;
    Ok(seed)
}
