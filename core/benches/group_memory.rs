//! Memory the server core keeps per group member: 100 groups of 500 members (the default
//! limits) restored as a host hands them over at start, counted by a counting allocator.
//! Run with `cargo bench -p breeze-core --bench group_memory`; prints bytes per member.

mod counting;
use breeze_core::secure::IdentityKey;
use breeze_core::server::{GroupRecord, SavedGroups, Server, ServerConfig};
use breeze_core::wire::{GroupId, GroupInfo, UserName};

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const GROUPS: u64 = if cfg!(debug_assertions) { 4 } else { 100 };
const MEMBERS: u64 = if cfg!(debug_assertions) { 20 } else { 500 };

fn main() {
    let mut server = Server::new(
        ServerConfig::default(),
        IdentityKey::from_secret([1; 32]),
        [1; 32],
    );
    let base = counting::live();
    let records = records();
    server.restore_groups(SavedGroups {
        records,
        highest_id: None,
    });
    // Everything the records held is the server's now, or freed.
    let kept = counting::live().saturating_sub(base);
    let memberships = (GROUPS * MEMBERS) as usize;
    assert_eq!(server.stats().group_members, memberships);
    println!(
        "group_memory: {GROUPS} groups of {MEMBERS} members: {kept} bytes, {:.0} per member",
        kept as f64 / memberships as f64
    );
}

/// `GROUPS` groups of `MEMBERS` members each, overlapping, as a host hands them over.
fn records() -> Vec<GroupRecord> {
    let users: Vec<UserName> = (0..MEMBERS * 2)
        .map(|i| UserName::new(format!("user.{i:04}")).unwrap())
        .collect();
    (0..GROUPS)
        .map(|g| {
            let start = (g * 7) as usize % MEMBERS as usize;
            let mut members: Vec<UserName> = users[start..start + MEMBERS as usize].to_vec();
            members.sort();
            GroupRecord {
                info: GroupInfo {
                    id: GroupId(g),
                    name: format!("group{g}"),
                    owner: members[0].clone(),
                    members,
                    version: 3,
                },
                next_order: 1000,
                last_taken: Vec::new(),
            }
        })
        .collect()
}
