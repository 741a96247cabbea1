//! Outgoing connections with a bounded wait: the core needs exactly one answer per attempt.

use smol::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Connects to `addr`, failing with `TimedOut` after `timeout`.
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    futures_lite::future::or(TcpStream::connect(addr), async {
        async_io::Timer::after(timeout).await;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer from {addr} within {timeout:?}"),
        ))
    })
    .await
}
