//! HTTP clients: each benchmark "client" is its own `reqwest::Client` that
//! keeps one keep-alive connection and has one request in flight at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// A client that keeps one connection alive.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// Posts a JSON body; the time until the whole answer was read, or what went wrong.
pub async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<Duration, String> {
    let start = Instant::now();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let answer = resp.bytes().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&answer)));
    }
    Ok(start.elapsed())
}

/// Gets a URL; the time until the whole answer was read, and the answer.
pub async fn get(client: &reqwest::Client, url: &str) -> Result<(Duration, Bytes), String> {
    let start = Instant::now();
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let answer = resp.bytes().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&answer)));
    }
    Ok((start.elapsed(), answer))
}

/// Runs `job(client, i)` for every `i` in `0..count` on `workers` clients
/// at once; panics on the first failure (this is setup, not measurement).
pub async fn for_each<F, Fut>(count: u64, workers: usize, job: F)
where
    F: Fn(reqwest::Client, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let job = Arc::new(job);
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let next = Arc::clone(&next);
            let job = Arc::clone(&job);
            tokio::spawn(async move {
                let client = client();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    if let Err(e) = job(client.clone(), i).await {
                        panic!("setup request {i} failed: {e}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("setup worker");
    }
}
