//! Hosts: the machines that run sessions for a session manager. The
//! session manager is one for its own machine (its embedded host), and
//! `ao-host` makes any other machine one. Both are [`agent::serve`]: they
//! register, beat, follow the feed of the runs given to them, and start
//! each through the runner's own program ([`spawn`]), in the folders
//! their own allow-list lets through ([`allow`]).

pub mod agent;
pub mod allow;
pub mod cli;
pub mod spawn;
