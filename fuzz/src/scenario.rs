//! `scenario`: operation sequences over the whole simulated system (one server, three clients,
//! a virtual network with faults), checked against the reference model in
//! `breeze_sim::model` after every step and after a final settle.
//!
//! Input layout: 8 bytes of seed, then up to [`MAX_OPS`] operations drawn with the weights of
//! the proptest in `tests/tests/model.rs`; `Advance` is at most 20 s. Any `Err` from
//! `model::run` is the finding: the harness panics with it, the seed and the operations.

use arbitrary::{Result, Unstructured};
use breeze_sim::model::{run as run_model, Op, USERS};

pub const MAX_OPS: usize = 40;

pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((seed, ops)) = decode(&mut u) else {
        return;
    };
    crate::trace!("scenario: seed {seed}, ops {ops:?}");
    if let Err(error) = run_model(seed, &ops) {
        panic!("model violated: {error}\nseed: {seed}\nops: {ops:?}");
    }
}

/// The seed and operations an input stands for (also used to print a crash's scenario).
pub fn decode(u: &mut Unstructured) -> Result<(u64, Vec<Op>)> {
    let seed = u.arbitrary()?;
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        ops.push(op(u)?);
    }
    Ok((seed, ops))
}

fn user(u: &mut Unstructured) -> Result<usize> {
    u.choose_index(USERS.len())
}

fn pair(u: &mut Unstructured) -> Result<(usize, usize)> {
    let a = user(u)?;
    let b = (a + u.int_in_range(1..=USERS.len() - 1)?) % USERS.len();
    Ok((a, b))
}

fn op(u: &mut Unstructured) -> Result<Op> {
    // Weights as in tests/tests/model.rs: 6 send, 2 cut, 1 one-way cut, 2 heal, 1 server
    // crash, 2 server restart, 1 logout, 2 login, 1 client crash, 1 open, 6 advance.
    Ok(match u.int_in_range(0..=24u8)? {
        0..=5 => {
            let (from, to) = pair(u)?;
            Op::Send { from, to }
        }
        6 | 7 => {
            let (a, b) = pair(u)?;
            Op::Cut { a, b }
        }
        8 => {
            let (from, to) = pair(u)?;
            Op::CutOneWay { from, to }
        }
        9 | 10 => {
            let (a, b) = pair(u)?;
            Op::Heal { a, b }
        }
        11 => Op::CrashServer,
        12 | 13 => Op::RestartServer,
        14 => Op::Logout(user(u)?),
        15 | 16 => Op::Login(user(u)?),
        17 => Op::CrashClient(user(u)?),
        18 => {
            let (at, with) = pair(u)?;
            Op::Open { at, with }
        }
        _ => Op::Advance(u.int_in_range(0..=20_000u64)?),
    })
}
