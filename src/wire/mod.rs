//! The JSON shapes that cross the session manager's HTTP API, shared by the
//! server, the client library and every command, so the two ends cannot drift.

mod access;
mod callbacks;
mod diff;
mod draft;
mod event;
mod live;
pub mod money;
mod request;
mod runs;
mod search;
mod session;
mod timestamp;
mod usage;

pub use access::{AccessAnswer, AgentInfo, AgentsAnswer};
pub use callbacks::{Callback, CallbackAnswer, CallbackCreate, CallbacksAnswer, callback_message};
pub use diff::BranchDiffAnswer;
pub use draft::{Draft, DraftAnswer, LiveAnswer, LiveInput, MAX_DELTA_TEXT, TextDelta};
pub use event::{
    ChangedFile, ContentBlock, Event, EventType, MAX_DIFF, MAX_ID_LEN, Role, RunEndReason,
    StoredEvent, check_id, check_text,
};
pub use live::LiveMessage;
pub use request::{
    Answers, DecidedBy, Decision, DecisionAnswer, DecisionBody, PendingRequest, RequestAnswer,
    RequestKind, RequestRecord, RequestStatus, RequestsAnswer,
};
pub use runs::{
    Host, HostAnswer, HostBeat, HostRegister, HostsAnswer, LaunchSettings, MAX_HOST_NAME, Run,
    RunAnswer, RunClaim, RunCreate, RunExited, RunStatus, RunsAnswer, check_host_name,
};
pub use search::{SearchAnswer, SearchHit};
pub use session::{
    AddEventAnswer, DeleteAnswer, DeletedCounts, ErrorAnswer, EventsAnswer, HealthAnswer,
    ResultAnswer, Session, SessionAnswer, SessionCreate, SessionPatch, SessionStatus,
    SessionsAnswer, StatusAnswer, StatusValue, StopAnswer,
};
pub use timestamp::{now_rfc3339, parse_timestamp};
pub use usage::{
    Budget, BudgetAnswer, LastRunSummary, RunFigures, Usage, UsageAnswer, UsageFigures, UsageGroup,
    round_usd,
};
