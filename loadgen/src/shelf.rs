//! `--serve-results`: a finished run's files served over HTTP until they
//! were fetched. The pods of a Kubernetes Indexed Job run on whichever
//! nodes the scheduler picks, so a volume they all write to would have to be
//! ReadWriteMany, which many clusters lack, and our images hold no shell or
//! `tar` for `kubectl cp`. Each pod instead keeps its `results.json` and
//! interval log on the port Prometheus already scrapes, until the runner has
//! fetched both (or the linger time is over), and only then completes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

/// The files a run leaves, by name.
pub const FILES: [&str; 2] = ["results.json", "latency.hlog"];

/// A run's results folder, shut until the run is over.
#[derive(Debug)]
pub struct Shelf {
    dir: PathBuf,
    ready: AtomicBool,
    fetched: Mutex<[bool; FILES.len()]>,
    all_fetched: watch::Sender<bool>,
}

impl Shelf {
    /// A shelf for the files the run will write into `dir`.
    pub fn new(dir: PathBuf) -> Shelf {
        Shelf {
            dir,
            ready: AtomicBool::new(false),
            fetched: Mutex::new([false; FILES.len()]),
            all_fetched: watch::Sender::new(false),
        }
    }

    /// The run is over and its files are written: serve them.
    pub fn open(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Resolves once every one of [`FILES`] has been fetched whole.
    pub async fn fetched(&self) {
        let mut all = self.all_fetched.subscribe();
        let _ = all.wait_for(|done| *done).await;
    }

    fn mark(&self, index: usize) {
        let mut fetched = self.fetched.lock().expect("no panics while held");
        fetched[index] = true;
        if fetched.iter().all(|f| *f) {
            self.all_fetched.send_replace(true);
        }
    }
}

/// `GET /results/{file}`: 503 with `Retry-After` while the run goes on, the
/// file once it is over, 404 for any other name.
pub async fn get(State(shelf): State<std::sync::Arc<Shelf>>, Path(file): Path<String>) -> Response {
    let Some(index) = FILES.iter().position(|f| *f == file) else {
        return (StatusCode::NOT_FOUND, format!("no file {file}: there are {}", FILES.join(", "))).into_response();
    };
    if !shelf.ready.load(Ordering::Acquire) {
        let retry = [(header::RETRY_AFTER, "5")];
        return (StatusCode::SERVICE_UNAVAILABLE, retry, "the run is not over yet").into_response();
    }
    match tokio::fs::read(shelf.dir.join(&file)).await {
        Ok(bytes) => {
            shelf.mark(index);
            let kind = if file.ends_with(".json") { "application/json" } else { "text/plain" };
            ([(header::CONTENT_TYPE, kind)], bytes).into_response()
        }
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{file}: {err}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn files_are_served_once_the_run_is_over_until_both_were_fetched() {
        let dir = q2o_testkit::ScratchDir::new("shelf").unwrap();
        std::fs::write(dir.path().join("results.json"), "{}").unwrap();
        std::fs::write(dir.path().join("latency.hlog"), "#log").unwrap();
        let shelf = Arc::new(Shelf::new(dir.path().to_owned()));
        let registry = prometheus::Registry::new();
        let (addr, server) =
            crate::metrics::serve(([127, 0, 0, 1], 0).into(), registry, Some(Arc::clone(&shelf))).await.unwrap();
        let get = async |file: &str| {
            let response = reqwest::get(format!("http://{addr}/results/{file}")).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        };
        assert_eq!(get("results.json").await.0, 503, "not before the run is over");
        assert_eq!(get("../Cargo.toml").await.0, 404);
        shelf.open();
        assert_eq!(get("results.json").await, (200, "{}".to_owned()));
        let fetched = tokio::spawn({
            let shelf = Arc::clone(&shelf);
            async move { shelf.fetched().await }
        });
        tokio::task::yield_now().await;
        assert!(!fetched.is_finished(), "one file is still to be fetched");
        assert_eq!(get("latency.hlog").await, (200, "#log".to_owned()));
        tokio::time::timeout(std::time::Duration::from_secs(5), fetched).await.unwrap().unwrap();
        server.abort();
    }
}
