//! The admission rules on virtual time, with numbers for streams.

use super::{peer_gave_up, Admission};
use breeze_core::server::ConnId;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn remote() -> SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

/// Admits what `next` gives, numbering conns after the streams; returns the streams admitted.
fn admit_all(admission: &mut Admission<u32>, now: Instant) -> Vec<u32> {
    let mut admitted = Vec::new();
    while let Some((stream, _)) = admission.next(now, |_| false) {
        admission.admitted(ConnId(stream.into()));
        admitted.push(stream);
    }
    admitted
}

#[test]
fn at_most_max_pending_are_admitted_and_each_finish_frees_a_slot_in_order() {
    let now = Instant::now();
    let mut admission = Admission::new(3, 100, WAIT);
    for stream in 0..10 {
        admission.arrived(stream, remote(), now).unwrap();
    }
    assert_eq!(admit_all(&mut admission, now), [0, 1, 2]);
    assert_eq!(admission.counts(), (3, 7));
    admission.finished(ConnId(1));
    // Finishing an id twice, or one never admitted, frees nothing more.
    admission.finished(ConnId(1));
    admission.finished(ConnId(99));
    assert_eq!(admit_all(&mut admission, now), [3]);
    for conn in [0, 2, 3] {
        admission.finished(ConnId(conn));
    }
    assert_eq!(admit_all(&mut admission, now), [4, 5, 6]);
    assert_eq!(admission.counts(), (3, 3));
}

#[test]
fn a_connection_that_waited_past_max_wait_is_dropped_not_admitted() {
    let start = Instant::now();
    let mut admission = Admission::new(1, 100, WAIT);
    admission.arrived(0, remote(), start).unwrap();
    admission.arrived(1, remote(), start).unwrap();
    admission
        .arrived(2, remote(), start + Duration::from_secs(5))
        .unwrap();
    assert_eq!(admit_all(&mut admission, start), [0]);
    // The slot stays taken (a stalled handshake: the core times it out), and meanwhile the
    // wait of the second runs out: it goes even though no slot is free.
    let later = start + WAIT;
    assert_eq!(admit_all(&mut admission, later), Vec::<u32>::new());
    assert_eq!(admission.counts(), (1, 1));
    admission.finished(ConnId(0));
    assert_eq!(admit_all(&mut admission, later), [2]);
}

#[test]
fn a_connection_whose_client_gave_up_is_dropped_not_admitted() {
    let now = Instant::now();
    let mut admission = Admission::new(2, 100, WAIT);
    for stream in 0..4 {
        admission.arrived(stream, remote(), now).unwrap();
    }
    let gave_up = |stream: &u32| *stream == 1;
    assert_eq!(admission.next(now, gave_up).map(|(s, _)| s), Some(0));
    assert_eq!(admission.next(now, gave_up).map(|(s, _)| s), Some(2));
    assert_eq!(admission.counts(), (0, 1));
}

#[test]
fn a_full_waiting_room_hands_the_connection_back_to_be_closed() {
    let now = Instant::now();
    let mut admission = Admission::new(1, 2, WAIT);
    admission.arrived(0, remote(), now).unwrap();
    admission.arrived(1, remote(), now).unwrap();
    assert_eq!(admission.arrived(2, remote(), now), Err(2));
    assert_eq!(admit_all(&mut admission, now), [0]);
    // Admitting made room.
    assert_eq!(admission.arrived(3, remote(), now), Ok(()));
    admission.close_waiting();
    assert_eq!(admission.counts(), (1, 0));
}

/// A client that closes its end while its connection waits is seen as gone; one that is
/// still there is not (loopback, Linux: elsewhere nobody is seen as gone).
#[test]
fn a_closed_client_is_seen_as_gone_before_admission() {
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let staying = smol::net::TcpStream::connect(addr).await.unwrap();
        let (waiting_for_staying, _) = listener.accept().await.unwrap();
        let leaving = smol::net::TcpStream::connect(addr).await.unwrap();
        let (waiting_for_leaving, _) = listener.accept().await.unwrap();
        assert!(!peer_gave_up(&waiting_for_leaving));
        drop(leaving);
        if cfg!(target_os = "linux") {
            // The FIN crosses loopback at once, but not synchronously with the close.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !peer_gave_up(&waiting_for_leaving) {
                assert!(Instant::now() < deadline, "the close was never seen");
                async_io::Timer::after(Duration::from_millis(1)).await;
            }
        }
        assert!(!peer_gave_up(&waiting_for_staying));
        drop(staying);
    });
}
