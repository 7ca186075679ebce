//! Issue 22 with the real Claude Code CLI and the mock model API.
