//! Who is in the cluster and who is alive: SWIM with suspicion and refutation, by the `foca`
//! crate. Foca does no I/O: it is fed bytes and timer events and answers with bytes to send,
//! timers to set and notifications, which [`Membership::drain`] collects for the cluster task.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use foca::{
    AccumulatingRuntime, Foca, Member, NoCustomBroadcast, OwnedNotification, PostcardCodec, State,
    Timer,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

use super::NodeId;

/// How a node is known to SWIM: its cluster address (what SWIM keys members by), its id, and
/// a counter bumped each time it rejoins after being declared down.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The address its cluster port is reached at.
    pub addr: SocketAddr,
    /// Its stable id.
    pub id: NodeId,
    /// Bumped on every rejoin; the higher one wins an address conflict.
    pub bump: u64,
}

impl foca::Identity for NodeIdentity {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(NodeIdentity {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// A member's state as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Answering probes.
    Alive,
    /// Missed probes; declared down unless it refutes in time.
    Suspect,
    /// Declared down.
    Down,
}

impl MemberState {
    /// Lower-case name, for metrics labels and the status page.
    pub fn label(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Down => "down",
        }
    }
}

/// One member, as the status page and the metrics show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// Its id.
    pub id: NodeId,
    /// Its cluster address.
    pub addr: SocketAddr,
    /// Its state.
    pub state: MemberState,
}

/// What foca asked for while handling input.
#[derive(Debug, Default)]
pub struct Outputs {
    /// SWIM bytes to send to a member's cluster address.
    pub sends: Vec<(SocketAddr, Vec<u8>)>,
    /// Timer events to feed back after a delay.
    pub timers: Vec<(Duration, Timer<NodeIdentity>)>,
    /// Members that came up or went down, and this node's own state changes.
    pub notifications: Vec<OwnedNotification<NodeIdentity>>,
}

type Swim = Foca<NodeIdentity, PostcardCodec, SmallRng, NoCustomBroadcast>;

/// This node's SWIM state machine.
pub struct Membership {
    foca: Swim,
    runtime: AccumulatingRuntime<NodeIdentity>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("identity", self.foca.identity())
            .field("members", &self.foca.num_members())
            .finish_non_exhaustive()
    }
}

/// Membership settings: foca's LAN profile, with down members re-announced to every few
/// seconds so that a healed partition or a restarted node rejoins quickly.
fn swim_config() -> foca::Config {
    let mut config = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(7));
    config.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: Duration::from_secs(3),
        num_members: std::num::NonZeroUsize::MIN.saturating_add(2),
    });
    // Node frames carry SWIM bytes; a node frame may be far larger than a UDP datagram.
    config.max_packet_size = std::num::NonZeroUsize::MIN.saturating_add(16 * 1024);
    config
}

impl Membership {
    /// A member named `me`; `seed` seeds its random choices (probe order).
    pub fn new(me: NodeIdentity, seed: u64) -> Membership {
        Membership {
            foca: Foca::new(
                me,
                swim_config(),
                SmallRng::seed_from_u64(seed),
                PostcardCodec,
            ),
            runtime: AccumulatingRuntime::new(),
        }
    }

    /// Asks a node known only by address to let this one in (its reply names it).
    pub fn announce(&mut self, seed: SocketAddr) {
        let placeholder = NodeIdentity {
            addr: seed,
            id: NodeId(0),
            bump: 0,
        };
        if let Err(error) = self.foca.announce(placeholder, &mut self.runtime) {
            tracing::debug!(%error, %seed, "announcing to a seed failed");
        }
    }

    /// SWIM bytes from another node. `Err` if they do not decode (counted by the caller).
    pub fn handle_data(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.foca
            .handle_data(bytes, &mut self.runtime)
            .map_err(|error| error.to_string())
    }

    /// A timer set earlier fired.
    pub fn handle_timer(&mut self, timer: Timer<NodeIdentity>) {
        if let Err(error) = self.foca.handle_timer(timer, &mut self.runtime) {
            tracing::debug!(%error, "SWIM timer failed");
        }
    }

    /// Tells the others this node leaves (a clean shutdown: no suspicion period).
    pub fn leave(&mut self) {
        if let Err(error) = self.foca.leave_cluster(&mut self.runtime) {
            tracing::debug!(%error, "leaving the cluster failed");
        }
    }

    /// Takes what foca asked for since the last call.
    pub fn drain(&mut self) -> Outputs {
        let mut outputs = Outputs::default();
        while let Some((to, bytes)) = self.runtime.to_send() {
            outputs.sends.push((to.addr, bytes.to_vec()));
        }
        while let Some(timer) = self.runtime.to_schedule() {
            outputs.timers.push(timer);
        }
        while let Some(notification) = self.runtime.to_notify() {
            outputs.notifications.push(notification);
        }
        outputs
    }

    /// Every member this node knows of, with its state (this node not included).
    pub fn members(&self) -> Vec<MemberView> {
        let view = |member: &Member<NodeIdentity>| MemberView {
            id: member.id().id,
            addr: member.id().addr,
            state: match member.state() {
                State::Alive => MemberState::Alive,
                State::Suspect => MemberState::Suspect,
                State::Down => MemberState::Down,
            },
        };
        let mut members: Vec<MemberView> = self.foca.iter_membership_state().map(view).collect();
        members.sort_by_key(|member| member.addr);
        members
    }
}
