//! The accept loop shared by the server's client port and the client's P2P port.

use smol::net::{TcpListener, TcpStream};
use std::net::SocketAddr;
use std::time::Duration;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until the owner goes away, handing each to it as `E`.
pub(crate) async fn accept_loop<E>(
    listener: TcpListener,
    owner: async_channel::Sender<E>,
    wrap: impl Fn(TcpStream, SocketAddr) -> E,
) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                if owner.send(wrap(stream, remote)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                async_io::Timer::after(ACCEPT_BACKOFF).await;
            }
        }
    }
}
