//! exsweep: an agentless scanner that reads Exchange servers over SMB2/3 (and later WinRM),
//! and judges what it read against role baselines and a bulletin catalog.
//!
//! Layers (see ARCHITECTURE.md): [`inventory`] and [`credentials`] resolve what to scan and
//! how to log on; [`transport`] holds one session per host; [`collect`] turns the facts the
//! loaded checks need into calls and answers into [`facts::HostFacts`]; [`rules`] evaluates
//! those facts purely; [`report`] writes findings; [`scan`] runs a sweep.

pub mod builds;
pub mod collect;
pub mod credentials;
pub mod facts;
pub mod inventory;
pub mod lockout;
pub mod report;
pub mod rules;
pub mod scan;
pub mod secret;
pub mod timefmt;
pub mod transport;
