//! `portprobe rules`: the firewall rules that allow exactly the ports a
//! report found blocked (or that products need), to the addresses probed,
//! in a firewall's own language. The model ([`Rules`]) comes from a
//! report's JSON ([`report`]) or from a catalog plan ([`plan`]); each
//! format is a pure function from the model to text. Words from outside
//! (service and product names) pass through [`text::safe`] first, and
//! each format quotes by its own rules on top; addresses and ports are
//! parsed values, never copied text.

pub mod aerleon;
pub mod cisco;
pub mod hint;
pub mod iptables;
pub mod model;
pub mod nftables;
pub mod pf;
pub mod plan;
pub mod report;
pub mod text;
pub mod windows;

pub use model::{Hook, Rule, Rules, Sources, Wanted, parse_source};
