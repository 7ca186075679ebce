//! What a conversation has spent, kept beside the fake's session files
//! (`FAKE_CLAUDE_STATE_DIR`), so that the result line of a resumed run
//! reports what the release it imitates reports: from 2.1.277 on,
//! `total_cost_usd` and `modelUsage` sum the whole conversation; before
//! 2.0.30, `num_turns` does; `usage` and the durations always count the run.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

/// The release the fake imitates: `FAKE_CLAUDE_VERSION`, else 2.1.329.
pub fn release() -> String {
    std::env::var("FAKE_CLAUDE_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| super::proto::VERSION.to_owned())
}

pub fn release_at_least(at_least: (u32, u32, u32)) -> bool {
    let release = release();
    let mut parts = release.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v >= at_least
}

/// Whether the init line names the release (not before about 2.0.20).
pub fn names_release() -> bool {
    release_at_least((2, 0, 20))
}

/// The spending of one conversation, read from and written to its file.
pub struct Ledger {
    /// The conversation's file before this run (another id's, when a
    /// resume gets a new id, as before 1.0.124).
    from: Option<PathBuf>,
    to: Option<PathBuf>,
}

impl Ledger {
    /// The ledger of the conversation `resumed` (if any) continued as `session_id`.
    pub fn new(dir: Option<&PathBuf>, resumed: Option<&str>, session_id: &str) -> Ledger {
        let file = |id: &str| dir.map(|d| d.join(format!("{id}.spent")));
        Ledger {
            from: resumed.and_then(file),
            to: file(session_id),
        }
    }

    fn before(&self) -> Value {
        self.from
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({"cost": 0.0, "turns": 0, "models": {}}))
    }

    /// Turns a result line with the run's own figures into what the release
    /// reports, after `adjust` (FAKE_CLAUDE_RESULT) had its say, and keeps
    /// the conversation's new sums.
    pub fn report(&self, result: &mut Value, adjust: impl FnOnce(&mut Value)) {
        let before = self.before();
        let cost_sums = release_at_least((2, 1, 277));
        let turn_sums = !release_at_least((2, 0, 30));
        if cost_sums {
            let own = result["total_cost_usd"].as_f64().unwrap_or(0.0);
            result["total_cost_usd"] = json!(before["cost"].as_f64().unwrap_or(0.0) + own);
            if let (Some(models), Some(prior)) = (
                result["modelUsage"].as_object_mut(),
                before["models"].as_object(),
            ) {
                add_models(models, prior);
            }
        }
        if turn_sums {
            let own = result["num_turns"].as_u64().unwrap_or(0);
            result["num_turns"] = json!(before["turns"].as_u64().unwrap_or(0) + own);
        }
        adjust(result);
        let Some(to) = &self.to else { return };
        let reported = |key: &str| result[key].clone();
        let mut after = before.clone();
        let cost = result["total_cost_usd"].as_f64().unwrap_or(0.0);
        after["cost"] = json!(if cost_sums {
            cost
        } else {
            before["cost"].as_f64().unwrap_or(0.0) + cost
        });
        let turns = result["num_turns"].as_u64().unwrap_or(0);
        after["turns"] = json!(if turn_sums {
            turns
        } else {
            before["turns"].as_u64().unwrap_or(0) + turns
        });
        after["models"] = match (cost_sums, reported("modelUsage")) {
            (true, models @ Value::Object(_)) => models,
            (false, Value::Object(mut models)) => {
                if let Some(prior) = before["models"].as_object() {
                    add_models(&mut models, prior);
                }
                Value::Object(models)
            }
            (_, _) => before["models"].clone(),
        };
        let _ = std::fs::write(to, after.to_string());
    }
}

/// Adds `prior`'s numbers to `models`, model by model.
fn add_models(models: &mut Map<String, Value>, prior: &Map<String, Value>) {
    for (model, entry) in prior {
        let Some(target) = models.get_mut(model).and_then(Value::as_object_mut) else {
            models.insert(model.clone(), entry.clone());
            continue;
        };
        for key in ["inputTokens", "outputTokens", "costUSD"] {
            if let (Some(a), Some(b)) =
                (target.get(key).and_then(Value::as_f64), entry[key].as_f64())
            {
                target.insert(
                    key.to_owned(),
                    if key == "costUSD" {
                        json!(a + b)
                    } else {
                        json!((a + b) as u64)
                    },
                );
            }
        }
    }
}
