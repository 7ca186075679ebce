//! Integration tests: the real binaries, on real ports, with real files.
//! One test binary, so the project links once.

mod support;

mod agents;
mod agents_real;
mod backup_edits;
mod bounded_reads;
mod commands_clean;
mod commands_dashboard;
mod commands_fallback;
mod commands_list;
mod commands_result;
mod commands_status;
mod commands_verification;
mod dashboard;
mod dashboard_browser;
mod faults;
mod fidelity;
mod hook;
mod hosts;
mod install;
mod mcp;
mod mcp_real;
mod notify;
mod openapi;
mod orchestrate;
mod orchestration;
mod orchestration_real;
mod own_figures;
mod real_cli_protocol;
mod requests;
mod requests_real;
mod runner_autostart;
mod runner_fake;
mod runner_real;
mod runs_local;
mod security;
mod security_browser;
mod server_api;
mod server_bad_input;
mod server_durability;
mod server_live;
mod server_live_backlog;
mod sessions_spec;
mod usage;
mod worktree;
