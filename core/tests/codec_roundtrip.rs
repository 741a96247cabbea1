//! Codec properties (docs/ARCHITECTURE.md §8 Testing; the format is §3 Wire format): every
//! message of every family survives any chunking of the byte stream; arbitrary bytes never
//! panic the decoder nor make it buffer past the frame limit; an oversized frame is refused
//! from its prefix alone; whatever decodes re-encodes to the same value.
//!
//! The generators live here too. Each enum generator is a `match` over a random index that names
//! every variant; a test at the bottom fails when a variant is added to `breeze_core::wire`
//! without being added to its generator.

use breeze_core::codec::{encode_frame, DecodeError, FrameDecoder, DEFAULT_MAX_FRAME, PREFIX_LEN};
use breeze_core::secure::PublicKey;
use breeze_core::transmit::Payload;
use breeze_core::wire::{
    Ack, Chat, ClientFrame, ClosingReason, ErrorCode, FileHint, FileMessage, FileName, GroupError,
    GroupId, GroupInfo, GroupMessage, GroupRequest, KeyEnvelope, KeyLookup, KickReason,
    LoginRefusal, MessageId, OrderedGroupMessage, PeerFrame, PeerIntro, SealedAck, SealedChat,
    SealedFile, ServerFrame, TransferId, Undeliverable, UserName, PROTOCOL_VERSION,
};
use quickcheck::{Arbitrary, Gen, QuickCheck, Testable};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// Cases per property: quickcheck's default of 100 leaves whole variants of a 14-variant family,
/// and most chunkings, untried.
const CASES: u64 = 1500;

/// Size handed to the generator: the longest strings and lists. Big enough for multi-byte
/// varints and multi-frame streams, small enough to keep the whole file under a few seconds.
const GEN_SIZE: usize = 40;

fn check<A: Testable>(property: A) {
    QuickCheck::new()
        .tests(CASES)
        .max_tests(CASES * 10)
        .rng(Gen::new(GEN_SIZE))
        .quickcheck(property);
}

// ---- generators -----------------------------------------------------------------------------

/// A random index below `n`.
fn pick(g: &mut Gen, n: usize) -> usize {
    (u64::arbitrary(g) % n as u64) as usize
}

/// A random length in `0..=max`, biased towards the edges.
fn length(g: &mut Gen, max: usize) -> usize {
    match pick(g, 8) {
        0 => 0,
        1 => max,
        _ => pick(g, max + 1),
    }
}

fn bytes32(g: &mut Gen) -> [u8; 32] {
    std::array::from_fn(|_| u8::arbitrary(g))
}

fn text(g: &mut Gen) -> String {
    match pick(g, 3) {
        // Any Unicode scalar values, multi-byte ones included.
        0 => String::arbitrary(g),
        // Plain ASCII, up to a few hundred bytes (two-byte length varints).
        1 => (0..length(g, 4 * g.size()))
            .map(|_| (b' ' + pick(g, 95) as u8) as char)
            .collect(),
        _ => String::new(),
    }
}

/// A generated value of a wire type. `quickcheck::Arbitrary` cannot be implemented for the
/// foreign wire types themselves, so every generator is written for this wrapper.
#[derive(Clone, Debug, PartialEq)]
struct Arb<T>(T);

fn arb<T>(g: &mut Gen) -> T
where
    Arb<T>: Arbitrary,
{
    Arb::<T>::arbitrary(g).0
}

const NAME_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

impl Arbitrary for Arb<UserName> {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = 1 + length(g, 31);
        let name: String = (0..len)
            .map(|_| NAME_CHARS[pick(g, NAME_CHARS.len())] as char)
            .collect();
        Arb(UserName::new(name).expect("generated names are valid"))
    }
}

impl Arbitrary for Arb<SocketAddr> {
    fn arbitrary(g: &mut Gen) -> Self {
        let port = u16::arbitrary(g);
        Arb(match pick(g, 2) {
            0 => SocketAddr::new(Ipv4Addr::arbitrary(g).into(), port),
            // The wire carries only address and port: flow info and scope id are not part of
            // an endpoint a peer can dial, so they are generated as zero.
            _ => SocketAddrV6::new(Ipv6Addr::arbitrary(g), port, 0, 0).into(),
        })
    }
}

impl Arbitrary for Arb<Chat> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(Chat {
            id: MessageId(u64::arbitrary(g)),
            epoch: u64::arbitrary(g),
            seq: u64::arbitrary(g),
            first_unacked: u64::arbitrary(g),
            text: text(g),
        })
    }
}

/// Opaque sealed bytes: the codec carries them as they are.
fn sealed_bytes(g: &mut Gen) -> Vec<u8> {
    (0..length(g, 200)).map(|_| u8::arbitrary(g)).collect()
}

impl Arbitrary for Arb<SealedChat> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(SealedChat {
            id: MessageId(u64::arbitrary(g)),
            epoch: u64::arbitrary(g),
            seq: u64::arbitrary(g),
            first_unacked: u64::arbitrary(g),
            sealed: sealed_bytes(g),
        })
    }
}

impl Arbitrary for Arb<SealedAck> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(SealedAck {
            ack: arb(g),
            seal: sealed_bytes(g),
        })
    }
}

impl Arbitrary for Arb<SealedFile> {
    fn arbitrary(g: &mut Gen) -> Self {
        let hint = match pick(g, 3) {
            0 => FileHint::Offer,
            1 => FileHint::Chunk {
                offset: u64::arbitrary(g),
                len: u32::arbitrary(g),
            },
            _ => FileHint::Control,
        };
        Arb(SealedFile {
            id: TransferId(u64::arbitrary(g)),
            hint,
            sealed: sealed_bytes(g).into(),
        })
    }
}

impl Arbitrary for Arb<Ack> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(Ack {
            epoch: u64::arbitrary(g),
            through: u64::arbitrary(g),
        })
    }
}

impl Arbitrary for Arb<PeerIntro> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(PeerIntro {
            user: arb(g),
            endpoint: arb(g),
            key: PublicKey(bytes32(g)),
        })
    }
}

impl Arbitrary for Arb<ErrorCode> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of ErrorCode must be added here (`generators_cover_every_wire_variant` checks).
        Arb(match pick(g, 12) {
            0 => ErrorCode::UnsupportedVersion,
            1 => ErrorCode::Malformed,
            2 => ErrorCode::FrameTooLarge,
            3 => ErrorCode::UnexpectedFrame,
            4 => ErrorCode::NotLoggedIn,
            5 => ErrorCode::HelloTimeout,
            6 => ErrorCode::SetupFailed,
            7 => ErrorCode::UnknownPeer,
            8 => ErrorCode::SlowConsumer,
            9 => ErrorCode::TextTooLong,
            10 => ErrorCode::Idle,
            11 => ErrorCode::TooManyConnections,
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<LoginRefusal> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of LoginRefusal must be added here.
        Arb(match pick(g, 7) {
            0 => LoginRefusal::BadCredentials,
            1 => LoginRefusal::NameTaken,
            2 => LoginRefusal::RegistrationClosed,
            3 => LoginRefusal::TooManyAttempts,
            4 => LoginRefusal::ServerBusy,
            5 => LoginRefusal::KeyNotEnrolled,
            6 => LoginRefusal::KeyRevoked,
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<KickReason> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of KickReason must be added here.
        Arb(match pick(g, 2) {
            0 => KickReason::LoggedInElsewhere,
            1 => KickReason::AccountRemoved,
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<Undeliverable> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of Undeliverable must be added here.
        Arb(match pick(g, 2) {
            0 => Undeliverable::NoSuchUser,
            1 => Undeliverable::RecipientFull,
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<GroupInfo> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(GroupInfo {
            id: GroupId(u64::arbitrary(g)),
            name: text(g),
            owner: arb(g),
            members: (0..length(g, 8)).map(|_| arb(g)).collect(),
            version: u64::arbitrary(g),
        })
    }
}

fn users(g: &mut Gen) -> Vec<UserName> {
    (0..length(g, 8)).map(|_| arb(g)).collect()
}

impl Arbitrary for Arb<GroupRequest> {
    fn arbitrary(g: &mut Gen) -> Self {
        let group = GroupId(u64::arbitrary(g));
        Arb(match pick(g, 5) {
            0 => GroupRequest::Create {
                name: text(g),
                members: users(g),
            },
            1 => GroupRequest::Add {
                group,
                users: users(g),
            },
            2 => GroupRequest::Remove {
                group,
                users: users(g),
            },
            3 => GroupRequest::Leave { group },
            _ => GroupRequest::Rename {
                group,
                name: text(g),
            },
        })
    }
}

impl Arbitrary for Arb<GroupError> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of GroupError must be added here.
        Arb(match pick(g, 12) {
            0 => GroupError::UnknownGroup,
            1 => GroupError::NotMember,
            2 => GroupError::NotOwner,
            3 => GroupError::BadName,
            4 => GroupError::NameTaken,
            5 => GroupError::NoSuchUser(arb(g)),
            6 => GroupError::NotInGroup(arb(g)),
            7 => GroupError::TooManyMembers {
                limit: u32::arbitrary(g),
            },
            8 => GroupError::TooManyGroups(arb(g)),
            9 => GroupError::Busy,
            10 => GroupError::StorageFailed,
            11 => GroupError::TooLong,
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<GroupMessage> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(GroupMessage {
            id: MessageId(u64::arbitrary(g)),
            epoch: u64::arbitrary(g),
            seq: u64::arbitrary(g),
            generation: u64::arbitrary(g),
            version: u64::arbitrary(g),
            keys: (0..length(g, 4))
                .map(|_| KeyEnvelope {
                    to: arb(g),
                    sealed: sealed_bytes(g),
                })
                .collect(),
            sealed: sealed_bytes(g),
        })
    }
}

impl Arbitrary for Arb<OrderedGroupMessage> {
    fn arbitrary(g: &mut Gen) -> Self {
        Arb(OrderedGroupMessage {
            group: GroupId(u64::arbitrary(g)),
            order: u64::arbitrary(g),
            from: arb(g),
            key: PublicKey(bytes32(g)),
            message: arb(g),
        })
    }
}

fn version(g: &mut Gen) -> u16 {
    match pick(g, 2) {
        0 => PROTOCOL_VERSION,
        _ => u16::arbitrary(g),
    }
}

impl Arbitrary for Arb<ClientFrame> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of ClientFrame must be added here.
        Arb(match pick(g, 13) {
            0 => ClientFrame::Hello {
                version: version(g),
            },
            1 => ClientFrame::Login {
                user: arb(g),
                password: text(g).into(),
                p2p_port: u16::arbitrary(g),
                register: bool::arbitrary(g),
            },
            2 => ClientFrame::Logout,
            3 => ClientFrame::Relay {
                to: arb(g),
                chat: arb(g),
            },
            4 => ClientFrame::RelayAck {
                to: arb(g),
                ack: arb(g),
            },
            5 => ClientFrame::Ping,
            6 => ClientFrame::RelayFile {
                to: arb(g),
                message: arb(g),
            },
            7 => ClientFrame::KeyRequest { user: arb(g) },
            8 => ClientFrame::Group {
                request_id: u64::arbitrary(g),
                request: arb(g),
            },
            9 => ClientFrame::GroupSend {
                group: GroupId(u64::arbitrary(g)),
                message: arb(g),
            },
            10 => ClientFrame::GroupAck {
                group: GroupId(u64::arbitrary(g)),
                through: u64::arbitrary(g),
            },
            11 => ClientFrame::Watch {
                users: (0..length(g, g.size())).map(|_| arb(g)).collect(),
            },
            12 => ClientFrame::KeyLogin {
                user: arb(g),
                p2p_port: u16::arbitrary(g),
            },
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<ServerFrame> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of ServerFrame must be added here.
        Arb(match pick(g, 27) {
            0 => ServerFrame::Hello {
                version: version(g),
            },
            1 => ServerFrame::LoginOk { user: arb(g) },
            2 => ServerFrame::LoginRefused { reason: arb(g) },
            3 => ServerFrame::Presence {
                peers: (0..length(g, g.size())).map(|_| arb(g)).collect(),
                last: bool::arbitrary(g),
                everyone: bool::arbitrary(g),
            },
            4 => ServerFrame::PresenceChanged {
                online: (0..length(g, g.size())).map(|_| arb(g)).collect(),
                offline: Vec::new(),
            },
            5 => ServerFrame::PresenceChanged {
                online: Vec::new(),
                offline: (0..length(g, g.size())).map(|_| arb(g)).collect(),
            },
            6 => ServerFrame::Relayed {
                from: arb(g),
                key: PublicKey(bytes32(g)),
                chat: arb(g),
            },
            7 => ServerFrame::RelayedAck {
                from: arb(g),
                ack: arb(g),
            },
            8 => ServerFrame::Stored {
                to: arb(g),
                epoch: u64::arbitrary(g),
                seq: u64::arbitrary(g),
            },
            9 => ServerFrame::Undeliverable {
                to: arb(g),
                epoch: u64::arbitrary(g),
                seq: u64::arbitrary(g),
                reason: arb(g),
            },
            10 => ServerFrame::Kicked { reason: arb(g) },
            11 => ServerFrame::ShuttingDown,
            12 => ServerFrame::Error { code: arb(g) },
            13 => ServerFrame::Ping,
            14 => ServerFrame::RelayedFile {
                from: arb(g),
                key: PublicKey(bytes32(g)),
                message: arb(g),
            },
            15 => ServerFrame::FileUndeliverable {
                to: arb(g),
                id: TransferId(u64::arbitrary(g)),
            },
            16 => ServerFrame::FileThrottled {
                to: arb(g),
                id: TransferId(u64::arbitrary(g)),
                offset: u64::arbitrary(g),
                retry_after_ms: u32::arbitrary(g),
            },
            17 => ServerFrame::UserKey {
                user: arb(g),
                key: match pick(g, 3) {
                    0 => KeyLookup::Key(PublicKey(bytes32(g))),
                    1 => KeyLookup::NotYet,
                    _ => KeyLookup::NoSuchUser,
                },
            },
            18 => ServerFrame::Group {
                info: arb(g),
                by: bool::arbitrary(g).then(|| arb(g)),
            },
            19 => ServerFrame::GroupsListed,
            20 => ServerFrame::GroupGone {
                group: GroupId(u64::arbitrary(g)),
                name: text(g),
                by: arb(g),
            },
            21 => ServerFrame::GroupMessage(arb(g)),
            22 => ServerFrame::GroupAccepted {
                group: GroupId(u64::arbitrary(g)),
                epoch: u64::arbitrary(g),
                through: u64::arbitrary(g),
            },
            23 => ServerFrame::GroupRekey {
                group: GroupId(u64::arbitrary(g)),
                epoch: u64::arbitrary(g),
                from_seq: u64::arbitrary(g),
                version: u64::arbitrary(g),
            },
            24 => ServerFrame::GroupSendRefused {
                group: GroupId(u64::arbitrary(g)),
                epoch: u64::arbitrary(g),
                from_seq: u64::arbitrary(g),
                error: arb(g),
            },
            25 => ServerFrame::GroupDelivered {
                group: GroupId(u64::arbitrary(g)),
                id: MessageId(u64::arbitrary(g)),
                delivered: u32::arbitrary(g),
                members: u32::arbitrary(g),
            },
            26 => ServerFrame::GroupRefused {
                request_id: u64::arbitrary(g),
                error: arb(g),
            },
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<PeerFrame> {
    fn arbitrary(g: &mut Gen) -> Self {
        // A new variant of PeerFrame must be added here.
        Arb(match pick(g, 7) {
            0 => PeerFrame::Chat(arb(g)),
            1 => PeerFrame::Ack(arb(g)),
            2 => PeerFrame::Ping,
            3 => PeerFrame::Bye,
            4 => PeerFrame::Error { code: arb(g) },
            5 => PeerFrame::File(arb(g)),
            6 => PeerFrame::Closing(if bool::arbitrary(g) {
                ClosingReason::Idle
            } else {
                ClosingReason::Evicted
            }),
            _ => unreachable!(),
        })
    }
}

impl Arbitrary for Arb<FileName> {
    fn arbitrary(g: &mut Gen) -> Self {
        // Valid names only: letters, digits and a few safe characters, never all dots.
        let alphabet: Vec<char> = "abcXYZ019 _-.é漢".chars().collect();
        let len = 1 + length(g, 40);
        let name: String = (0..len).map(|_| *g.choose(&alphabet).unwrap()).collect();
        Arb(FileName::new(format!("f{name}x"))
            .unwrap_or_else(|_| FileName::new("file.bin").unwrap()))
    }
}

impl Arbitrary for Arb<FileMessage> {
    fn arbitrary(g: &mut Gen) -> Self {
        let id = TransferId(u64::arbitrary(g));
        // A new variant of FileMessage must be added here.
        Arb(match pick(g, 7) {
            0 => FileMessage::Offer {
                id,
                name: arb(g),
                size: u64::arbitrary(g),
                hash: bytes32(g),
                repeat: bool::arbitrary(g),
            },
            1 => FileMessage::Accept {
                id,
                offset: u64::arbitrary(g),
                window: u64::arbitrary(g),
            },
            2 => FileMessage::Decline { id },
            3 => FileMessage::Cancel {
                id,
                by_sender: bool::arbitrary(g),
            },
            4 => FileMessage::Chunk {
                id,
                offset: u64::arbitrary(g),
                data: Payload::from(
                    (0..length(g, 4 * g.size()))
                        .map(|_| u8::arbitrary(g))
                        .collect::<Vec<u8>>(),
                ),
            },
            5 => FileMessage::Progress {
                id,
                accepted: u64::arbitrary(g),
                credit_end: u64::arbitrary(g),
                resync: bool::arbitrary(g),
            },
            6 => FileMessage::Done {
                id,
                verified: bool::arbitrary(g),
            },
            _ => unreachable!(),
        })
    }
}

/// A message family: what one end of a connection decodes.
trait Family: Serialize + DeserializeOwned + Clone + PartialEq + Debug + 'static {}
impl Family for ClientFrame {}
impl Family for ServerFrame {}
impl Family for PeerFrame {}

/// A sequence of frames of one family, mixed variants.
#[derive(Clone, Debug)]
struct Frames<F>(Vec<F>);

impl<F: Family> Arbitrary for Frames<F>
where
    Arb<F>: Arbitrary,
{
    fn arbitrary(g: &mut Gen) -> Self {
        Frames((0..length(g, g.size())).map(|_| arb(g)).collect())
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        // Fewer frames; each frame itself is not shrunk.
        let frames = self.0.clone();
        Box::new((0..frames.len()).rev().map(move |skip| {
            let mut fewer = frames.clone();
            fewer.remove(skip);
            Frames(fewer)
        }))
    }
}

fn encode_all<F: Family>(frames: &[F], max_frame: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames {
        encode_frame(frame, max_frame, &mut bytes).expect("generated frames fit the limit");
    }
    bytes
}

/// How a byte stream is cut into reads: a seed for a small deterministic generator of chunk
/// sizes mixing empty reads, single bytes, small reads and reads up to `largest`.
#[derive(Clone, Debug)]
struct Chunking {
    seed: u64,
    largest: usize,
}

impl Arbitrary for Chunking {
    fn arbitrary(g: &mut Gen) -> Self {
        Chunking {
            seed: u64::arbitrary(g),
            largest: *g.choose(&[1, 2, 5, 64, 1000, 70_000]).unwrap(),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let (seed, current) = (self.seed, self.largest);
        Box::new(
            [1, 2, 5, 64, 1000]
                .into_iter()
                .filter(move |&l| l < current)
                .map(move |largest| Chunking { seed, largest }),
        )
    }
}

impl Chunking {
    /// Cuts `bytes` into chunks, empty ones included. Always makes progress: every eighth
    /// chunk on average is empty, the others hold at least one byte.
    fn split<'a>(&self, mut bytes: &'a [u8]) -> Vec<&'a [u8]> {
        let mut state = self.seed | 1;
        let mut next = move || {
            // xorshift64: deterministic from the seed, so a failing case replays.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let mut chunks = Vec::new();
        while !bytes.is_empty() {
            let size = match next() % 8 {
                0 => 0,
                1 | 2 => 1,
                3 | 4 => 1 + next() % 16,
                _ => 1 + next() % self.largest,
            }
            .min(self.largest)
            .min(bytes.len());
            let (chunk, rest) = bytes.split_at(size);
            chunks.push(chunk);
            bytes = rest;
        }
        // A trailing empty read, as after a wake-up with nothing to read.
        chunks.push(&[]);
        chunks
    }
}

/// A frame limit for the decoder under test: tiny, default, or larger.
#[derive(Clone, Debug)]
struct Limit(usize);

impl Arbitrary for Limit {
    fn arbitrary(g: &mut Gen) -> Self {
        Limit(match pick(g, 4) {
            0 => 64,
            1 => pick(g, 200),
            2 => DEFAULT_MAX_FRAME,
            _ => 1 << 20,
        })
    }
}

/// A byte stream that is mostly not a valid frame sequence of family `F`: valid frames,
/// frames with bytes flipped, prefixes announcing lengths around the limits with random payloads,
/// and raw noise, concatenated.
#[derive(Clone)]
struct Noise<F> {
    bytes: Vec<u8>,
    family: PhantomData<F>,
}

impl<F> Debug for Noise<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Noise({} bytes: {:02x?})", self.bytes.len(), self.bytes)
    }
}

fn random_bytes(g: &mut Gen, n: usize, out: &mut Vec<u8>) {
    out.extend((0..n).map(|_| u8::arbitrary(g)));
}

impl<F: Family> Arbitrary for Noise<F>
where
    Arb<F>: Arbitrary,
{
    fn arbitrary(g: &mut Gen) -> Self {
        let mut bytes = Vec::new();
        // Mostly frames (valid or damaged) first, so that something decodes before the noise
        // derails the stream; then anything.
        let (framed, any) = (pick(g, 7), pick(g, 4));
        for step in 0..framed + any {
            let kind = if step < framed {
                pick(g, 6)
            } else {
                pick(g, 10)
            };
            match kind {
                // A valid frame.
                0..=2 => encode_frame(&arb::<F>(g), DEFAULT_MAX_FRAME, &mut bytes).unwrap(),
                // A valid frame with a few payload bytes changed: often still decodes, to
                // something else, which is what the decode→encode→decode property wants.
                3..=5 => {
                    let start = bytes.len();
                    encode_frame(&arb::<F>(g), DEFAULT_MAX_FRAME, &mut bytes).unwrap();
                    let payload = start + PREFIX_LEN..bytes.len();
                    if !payload.is_empty() {
                        for _ in 0..1 + pick(g, 3) {
                            let at = payload.start + pick(g, payload.len());
                            bytes[at] = match pick(g, 3) {
                                0 => bytes[at] ^ (1 << pick(g, 8)),
                                1 => bytes[at].wrapping_add(1),
                                _ => u8::arbitrary(g),
                            };
                        }
                    }
                }
                // A prefix announcing a length around the limits, with a payload of random bytes
                // of about that length (sometimes exact, sometimes cut short).
                6 | 7 => {
                    let len = match pick(g, 5) {
                        0 => pick(g, 70),
                        1 => 60 + pick(g, 10),
                        2 => pick(g, 300),
                        3 => DEFAULT_MAX_FRAME - 2 + pick(g, 4),
                        _ => u32::arbitrary(g) as usize,
                    };
                    bytes.extend_from_slice(&(len as u32).to_be_bytes());
                    let body = if len <= 300 || pick(g, 20) == 0 {
                        len.min(DEFAULT_MAX_FRAME + 2)
                    } else {
                        pick(g, 300)
                    };
                    random_bytes(g, body, &mut bytes);
                }
                // Raw noise.
                _ => {
                    let n = pick(g, 16);
                    random_bytes(g, n, &mut bytes);
                }
            }
        }
        Noise {
            bytes,
            family: PhantomData,
        }
    }
}

// ---- drivers --------------------------------------------------------------------------------

/// Feeds `chunks` to a fresh decoder the way a connection does (decode until `Ok(None)`, per
/// read) and returns the frames, asserting that every read is consumed entirely.
fn decode_chunks<F: Family>(chunks: &[&[u8]], max_frame: usize) -> Result<Vec<F>, DecodeError> {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    let mut fed = 0;
    for chunk in chunks {
        let mut input = *chunk;
        fed += chunk.len();
        while let Some(frame) = decoder.decode::<F>(&mut input)? {
            frames.push(frame);
            assert!(frames.len() * PREFIX_LEN <= fed, "more frames than bytes");
        }
        assert!(
            input.is_empty(),
            "Ok(None) left {} bytes unread",
            input.len()
        );
        assert!(decoder.buffered() <= PREFIX_LEN + max_frame);
    }
    assert_eq!(
        decoder.buffered(),
        0,
        "a whole stream leaves nothing buffered"
    );
    Ok(frames)
}

/// What a decoder made of a stream: the frames in order, then maybe the error that ended it.
struct Outcome<F> {
    frames: Vec<F>,
    error: Option<DecodeError>,
}

/// Feeds arbitrary chunks, checking on every call that the buffer stays within the limit, that
/// `Ok(None)` means the read was used up, and that an error, once returned, always is.
fn decode_noise<F: Family>(chunks: &[&[u8]], max_frame: usize) -> Outcome<F> {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut outcome = Outcome {
        frames: Vec::new(),
        error: None,
    };
    let mut fed = 0;
    for chunk in chunks {
        let mut input = *chunk;
        fed += chunk.len();
        loop {
            let result = decoder.decode::<F>(&mut input);
            assert!(
                decoder.buffered() <= PREFIX_LEN + max_frame,
                "buffered {} with a limit of {max_frame}",
                decoder.buffered()
            );
            match (result, &outcome.error) {
                (Err(err), None) => {
                    outcome.error = Some(err);
                    break;
                }
                (Err(err), Some(first)) => {
                    assert_eq!(&err, first, "the error changed");
                    break;
                }
                (Ok(_), Some(first)) => panic!("decoded again after {first:?}"),
                (Ok(Some(frame)), None) => {
                    outcome.frames.push(frame);
                    let frames = outcome.frames.len();
                    assert!(frames * PREFIX_LEN <= fed, "more frames than bytes");
                }
                (Ok(None), None) => {
                    assert!(input.is_empty(), "Ok(None) left bytes unread");
                    break;
                }
            }
        }
    }
    if let Some(first) = &outcome.error {
        // Still failed for fresh input, however well-framed.
        let mut empty_frame = Vec::new();
        encode_frame(&(), 16, &mut empty_frame).unwrap();
        assert_eq!(
            decoder.decode::<F>(&mut &empty_frame[..]).as_ref(),
            Err(first)
        );
        assert_eq!(decoder.decode::<F>(&mut &[][..]).as_ref(), Err(first));
    }
    outcome
}

// ---- properties -----------------------------------------------------------------------------

/// Frames encoded back to back decode to the same frames, in order, however the stream is cut.
/// With `tight`, the limit is exactly the largest payload, so a frame at the limit must pass.
fn frames_survive_any_chunking<F: Family>(frames: Frames<F>, cuts: Chunking, tight: bool) {
    let frames = frames.0;
    let max_frame = if tight {
        frames
            .iter()
            .map(|f| encode_all(std::slice::from_ref(f), DEFAULT_MAX_FRAME).len() - PREFIX_LEN)
            .max()
            .unwrap_or(0)
    } else {
        DEFAULT_MAX_FRAME
    };
    let bytes = encode_all(&frames, max_frame);
    let decoded = decode_chunks::<F>(&cuts.split(&bytes), max_frame);
    assert_eq!(decoded, Ok(frames));
}

/// Arbitrary bytes: no panic, bounded buffer, sticky errors (checked inside `decode_noise`).
fn noise_is_contained<F: Family>(noise: Noise<F>, cuts: Chunking, limit: Limit) {
    decode_noise::<F>(&cuts.split(&noise.bytes), limit.0);
}

/// Whatever decodes from arbitrary bytes re-encodes (within the same limit) to a frame that
/// decodes to the same value, and encoding is canonical from then on.
fn decoded_noise_round_trips<F: Family>(noise: Noise<F>, cuts: Chunking, limit: Limit) {
    let max_frame = limit.0;
    for frame in decode_noise::<F>(&cuts.split(&noise.bytes), max_frame).frames {
        let once = encode_all(std::slice::from_ref(&frame), max_frame);
        let again = decode_chunks::<F>(&[&once], max_frame).expect("re-encoded frame decodes");
        assert_eq!(again, vec![frame]);
        assert_eq!(
            encode_all(&again, max_frame),
            once,
            "encoding is not canonical"
        );
    }
}

/// A prefix announcing more than the limit (after some valid frames, followed by arbitrary
/// bytes) is refused with `FrameTooLarge` by the very call that completes the prefix, and no
/// payload byte is ever buffered.
fn oversized_prefix_is_refused<F: Family>(
    before: Frames<F>,
    slack: u16,
    announced: u32,
    after: Vec<u8>,
    cuts: Chunking,
) {
    let before = before.0;
    let fitting = encode_all(&before, DEFAULT_MAX_FRAME);
    let largest = before
        .iter()
        .map(|f| encode_all(std::slice::from_ref(f), DEFAULT_MAX_FRAME).len() - PREFIX_LEN)
        .max()
        .unwrap_or(0);
    let max_frame = largest + slack as usize % 1000;
    let above = u32::MAX as u64 - max_frame as u64;
    let len = match announced % 4 {
        0 => max_frame as u64 + 1,
        1 => u32::MAX as u64,
        _ => max_frame as u64 + 1 + announced as u64 % above,
    } as usize;
    let mut bytes = fitting.clone();
    bytes.extend_from_slice(&(len as u32).to_be_bytes());
    bytes.extend_from_slice(&after);
    let prefix_end = fitting.len() + PREFIX_LEN;

    let mut decoder = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    let mut fed = 0;
    let mut refused = false;
    for chunk in cuts.split(&bytes) {
        let mut input = chunk;
        fed += chunk.len();
        loop {
            match decoder.decode::<F>(&mut input) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => {
                    assert!(fed < prefix_end, "prefix complete yet not refused");
                    break;
                }
                Err(err) => {
                    assert_eq!(
                        err,
                        DecodeError::FrameTooLarge {
                            len,
                            max: max_frame
                        }
                    );
                    assert!(fed >= prefix_end, "refused before the prefix was complete");
                    if !refused {
                        assert!(fed - chunk.len() < prefix_end, "refused a read late");
                    }
                    refused = true;
                    break;
                }
            }
            assert!(decoder.buffered() <= PREFIX_LEN + largest);
        }
        if fed > fitting.len() {
            assert!(
                decoder.buffered() <= PREFIX_LEN,
                "payload bytes were buffered"
            );
        }
    }
    assert!(refused);
    assert_eq!(frames, before);
}

/// A frame whose payload carries bytes past the end of its message is refused as malformed:
/// the two ends disagree on the layout, and framing cannot be trusted any more.
fn padded_frame_is_malformed<F: Family>(frame: Arb<F>, padding: Vec<u8>, cuts: Chunking) {
    let mut payload = postcard::to_allocvec(&frame.0).unwrap();
    payload.extend_from_slice(&padding);
    payload.push(0);
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    let outcome = decode_noise::<F>(&cuts.split(&bytes), DEFAULT_MAX_FRAME);
    assert!(outcome.frames.is_empty());
    assert_eq!(outcome.error, Some(DecodeError::Malformed));
}

/// The properties, for one family.
macro_rules! family_properties {
    ($module:ident, $family:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn frames_survive_any_chunking() {
                check(super::frames_survive_any_chunking::<$family> as fn(_, _, _));
            }

            #[test]
            fn noise_is_contained() {
                check(super::noise_is_contained::<$family> as fn(_, _, _));
            }

            #[test]
            fn decoded_noise_round_trips() {
                check(super::decoded_noise_round_trips::<$family> as fn(_, _, _));
            }

            #[test]
            fn padded_frame_is_malformed() {
                check(super::padded_frame_is_malformed::<$family> as fn(_, _, _));
            }

            #[test]
            fn oversized_prefix_is_refused() {
                check(super::oversized_prefix_is_refused::<$family> as fn(_, _, _, _, _));
            }
        }
    };
}

family_properties!(client_frames, ClientFrame);
family_properties!(server_frames, ServerFrame);
family_properties!(peer_frames, PeerFrame);

// ---- generator coverage ---------------------------------------------------------------------

/// The variant name of a value, from its `Debug` form.
fn variant<T: Debug>(value: &T) -> String {
    format!("{value:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// True when postcard refuses `index` as a variant index of `T` (as opposed to running out of
/// bytes while reading the fields of a variant that exists).
fn is_unknown_variant<T: DeserializeOwned>(index: usize) -> bool {
    let index = u8::try_from(index).expect("one-byte variant index");
    matches!(
        postcard::from_bytes::<T>(&[index]),
        Err(postcard::Error::SerdeDeCustom)
    )
}

/// Checks that the wire enum `T` has exactly `known` variants and that its generator produces
/// `known` distinct ones.
///
/// The enums are `#[non_exhaustive]`, so this crate cannot match on them exhaustively; instead,
/// the variant index just past the known ones must be unknown to the decoder.
fn assert_generator_covers<T>(name: &str, known: usize)
where
    T: DeserializeOwned + Debug,
    Arb<T>: Arbitrary,
{
    assert!(
        !is_unknown_variant::<T>(known - 1) && is_unknown_variant::<T>(known),
        "{name} no longer has {known} variants: add the new one to its generator (a `match` \
         above) and update the count in `generators_cover_every_wire_variant`"
    );
    let g = &mut Gen::new(GEN_SIZE);
    let produced: BTreeSet<String> = (0..100 * known).map(|_| variant(&arb::<T>(g))).collect();
    assert_eq!(
        produced.len(),
        known,
        "{name}: the generator produced only {produced:?}"
    );
}

/// Every variant of every wire enum is generated: the properties above see them all.
#[test]
fn generators_cover_every_wire_variant() {
    assert_generator_covers::<ClientFrame>("ClientFrame", 13);
    assert_generator_covers::<ServerFrame>("ServerFrame", 26);
    assert_generator_covers::<GroupError>("GroupError", 12);
    assert_generator_covers::<PeerFrame>("PeerFrame", 7);
    assert_generator_covers::<FileMessage>("FileMessage", 7);
    assert_generator_covers::<ErrorCode>("ErrorCode", 12);
    assert_generator_covers::<LoginRefusal>("LoginRefusal", 7);
    assert_generator_covers::<KickReason>("KickReason", 2);
    assert_generator_covers::<Undeliverable>("Undeliverable", 2);
}

#[test]
fn generators_cover_both_address_families() {
    let g = &mut Gen::new(GEN_SIZE);
    let addrs: Vec<SocketAddr> = (0..200).map(|_| arb(g)).collect();
    assert!(addrs.iter().any(SocketAddr::is_ipv4));
    assert!(addrs.iter().any(SocketAddr::is_ipv6));
}
