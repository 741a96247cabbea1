//! Seeds for the cores' random number generators.

use std::io;

/// 32 bytes from the operating system's CSPRNG.
///
/// The server core draws the per-pair secrets that authenticate direct channels from its seed,
/// and the client core its nonces and message epochs, so the seed must be unpredictable: a
/// hash of the time and the process id (e.g. std's `RandomState`) is not good enough.
pub fn os_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(io::Error::from)?;
    Ok(seed)
}
