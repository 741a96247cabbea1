//! Model-based property test for groups (see `breeze_sim::group_model`): random sends,
//! membership changes, crashes and partitions; one order for every member, each message once.
//!
//! Cases: 64 by default; set `BREEZE_MODEL_CASES` for more.

use breeze_sim::group_model::{run, Op, USERS};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let pair = (0..USERS.len(), 1..USERS.len()).prop_map(|(a, step)| (a, (a + step) % USERS.len()));
    prop_oneof![
        8 => (user.clone(), 1u8..5).prop_map(|(u, n)| Op::Send(u, n)),
        2 => user.clone().prop_map(Op::Add),
        2 => user.clone().prop_map(Op::Remove),
        1 => user.clone().prop_map(Op::Leave),
        2 => user.clone().prop_map(Op::CrashClient),
        2 => user.prop_map(Op::StartClient),
        1 => Just(Op::CrashServer),
        2 => Just(Op::RestartServer),
        1 => pair.prop_map(|(a, b)| Op::Cut(a, b)),
        6 => prop_oneof![1u64..50, 1u64..15_000].prop_map(Op::Advance),
    ]
}

fn cases() -> u32 {
    std::env::var("BREEZE_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 1000, ..ProptestConfig::default() })]

    #[test]
    fn every_member_gets_every_message_once_in_one_order(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..40)) {
        run(seed, &ops).map_err(TestCaseError::fail)?;
    }
}

/// Found by the model: a client's run crashed after the server asked it to rekey; its next run
/// started a new epoch, and the server kept waiting for the old run's message, dropping every
/// message of the new one.
#[test]
fn regression_a_new_run_is_not_held_behind_a_rekey_asked_of_the_old_one() {
    use Op::*;
    let ops = [
        Leave(0),
        Send(2, 2),
        CrashClient(2),
        Add(0),
        StartClient(2),
        Advance(12),
        Send(2, 1),
    ];
    run(4006202288076897407, &ops).unwrap();
}

/// Found by the model: bob was offline when alice's message was taken for him; alice then
/// removed carol and bob and left, which ended the group, and ending deleted what was still
/// stored for bob, who never got it.
#[test]
fn regression_a_message_owed_when_the_group_ends_is_still_delivered() {
    use Op::*;
    let ops = [CrashClient(1), Send(0, 1), Remove(2), Remove(1), Leave(0)];
    run(0, &ops).unwrap();
}
