//! Issue 22 with the real Claude Code CLI and the mock model API.

use crate::support::Project;
use crate::support::real_claude::RealClaude;

#[tokio::test]
async fn a_real_probe() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    let out = env.ao("ao-new", &["s1"], Some("Please USE_TOOL now"));
    eprintln!("s1: {out:?}");
    let s = env.session("s1").await.unwrap();
    eprintln!("s1 cost {:?}", s.cost_usd);
    let budget = format!("{}", s.cost_usd.unwrap() * 0.9);
    let out = env.ao(
        "ao-resume",
        &["s1", "--max-budget-usd", &budget],
        Some("Say hi"),
    );
    eprintln!("resume with budget {budget}: {out:?}");
    for l in env
        .backup_lines("s1")
        .iter()
        .filter(|l| l["type"] == "result")
    {
        eprintln!("result: {}", l);
    }
    let out = env.ao(
        "ao-new",
        &["s2", "--max-budget-usd", &budget],
        Some("Please USE_TOOL now"),
    );
    eprintln!("new with budget {budget}: {out:?}");
    for l in env
        .backup_lines("s2")
        .iter()
        .filter(|l| l["type"] == "result")
    {
        eprintln!("result s2: {}", l);
    }
    crate::worktree::repository(&env);
    let out = env.ao("ao-new", &["w", "--worktree"], Some("first in worktree"));
    eprintln!("w: {out:?}");
    let out = env.ao("ao-fork", &["w", "w2"], Some("fork it"));
    eprintln!("w2: {out:?}");
    let out = env.ao("ao-fork", &["s1", "f1"], Some("fork plain"));
    eprintln!("f1: {out:?}");
    for l in env
        .backup_lines("f1")
        .iter()
        .filter(|l| l["type"] == "result")
    {
        eprintln!("result f1: {}", l);
    }
    eprintln!("f1 session {:?}", env.session("f1").await);
    panic!("probe");
}
