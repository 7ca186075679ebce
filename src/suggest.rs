//! "Did you mean": the session of the project whose name is nearest to a
//! name nobody knows, so that a typo costs one reading of one line.

use std::path::Path;

use crate::backup::list_metas;
use crate::client::SessionClient;

/// The name among `known` nearest to `name`: the same but for case, or
/// within one edit in three characters (a swap of two counts one), and
/// never all of it.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    let limit = (len.max(3) / 3).min(len.saturating_sub(1));
    known
        .into_iter()
        .filter(|k| *k != name)
        .map(|k| {
            let distance = if k.eq_ignore_ascii_case(name) {
                0
            } else {
                strsim::osa_distance(name, k)
            };
            (distance, k)
        })
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, k)| k)
}

/// The session of `project` (known to the API, when `ask_api`, or to the
/// backups of `sessions_dir`) nearest to `name`, if one is near.
pub async fn near_session(
    client: &SessionClient,
    project: &str,
    sessions_dir: &Path,
    name: &str,
    ask_api: bool,
) -> Option<String> {
    let mut known: Vec<String> = Vec::new();
    if ask_api && let Ok(sessions) = client.list_project_sessions(project).await {
        known.extend(sessions.into_iter().map(|s| s.session_name));
    }
    if let Ok(metas) = list_metas(sessions_dir) {
        known.extend(
            metas
                .into_iter()
                .flatten()
                .filter(|m| m.project_dir == project)
                .map(|m| m.session_name),
        );
    }
    closest(name, known.iter().map(String::as_str)).map(str::to_owned)
}

/// ` (did you mean 'NAME'?)`, or nothing.
pub fn did_you_mean(near: &Option<String>) -> String {
    near.as_ref()
        .map(|n| format!(" (did you mean '{n}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn near_names_and_only_near_ones() {
        let known = ["reviewer-1", "reviewer-2", "builder", "x"];
        let near = |name| closest(name, known);
        assert_eq!(near("revewer-1"), Some("reviewer-1"));
        assert_eq!(near("reveiwer-2"), Some("reviewer-2"));
        assert_eq!(near("Reviewer-1"), Some("reviewer-1"));
        assert_eq!(near("bilder"), Some("builder"));
        assert_eq!(
            near("reviewer-1"),
            Some("reviewer-2"),
            "not the name itself"
        );
        assert_eq!(near("y"), None, "all of it changed");
        assert_eq!(near("X"), Some("x"));
        assert_eq!(near("zzz"), None);
        assert_eq!(near("planner"), None);
        assert_eq!(closest("a", []), None);
    }
}
