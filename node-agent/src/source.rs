//! Where routes tables come from: the routes ConfigMap (watched) or a file (standalone).
//! Sources only read; the index decides what a table means.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt as _;
use hsn_api::routes::ROUTES_KEY;
use hsn_runtime::signals::Hangups;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::mpsc;

use crate::index::RoutesInput;

/// How often a routes file is checked for changes.
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// Watches ConfigMap `name` and sends its table on every change, until `tx` closes.
pub async fn watch_configmap(api: Api<ConfigMap>, name: String, tx: mpsc::Sender<RoutesInput>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut seen_in_init = false;
    while let Some(event) = stream.next().await {
        let input = match event {
            Ok(watcher::Event::Init) => {
                seen_in_init = false;
                continue;
            }
            Ok(watcher::Event::InitApply(cm) | watcher::Event::Apply(cm)) => {
                seen_in_init = true;
                table_of(&cm, &name)
            }
            Ok(watcher::Event::InitDone) if !seen_in_init => {
                Err(format!("ConfigMap {name} not found"))
            }
            Ok(watcher::Event::InitDone) => continue,
            Ok(watcher::Event::Delete(_)) => Err(format!("ConfigMap {name} was deleted")),
            Err(error) => {
                // Transient (API down, watch expired): the backoff retries; state is unchanged.
                tracing::warn!(%error, "watching the routes ConfigMap");
                continue;
            }
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}

fn table_of(cm: &ConfigMap, name: &str) -> RoutesInput {
    cm.data
        .as_ref()
        .and_then(|d| d.get(ROUTES_KEY))
        .cloned()
        .ok_or_else(|| format!("ConfigMap {name} has no key {ROUTES_KEY}"))
}

/// Reads `path` at start, when its content changes and on SIGHUP, until `tx` closes.
pub async fn watch_file(path: PathBuf, tx: mpsc::Sender<RoutesInput>) {
    let mut hangups = Hangups::new();
    let mut last: Option<RoutesInput> = None;
    loop {
        let input = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| format!("reading {}: {e}", path.display()));
        let forced = last.is_none();
        if forced || last.as_ref() != Some(&input) {
            last = Some(input.clone());
            if tx.send(input).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(FILE_POLL) => {}
            () = hangups.recv() => {
                tracing::info!(path = %path.display(), "SIGHUP: re-reading routes");
                last = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_is_sent_at_start_and_on_change_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        std::fs::write(&path, "one").unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let task = tokio::spawn(watch_file(path.clone(), tx));
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(first, Some(Ok("one".into())));
        std::fs::write(&path, "two").unwrap();
        let second = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(second, Some(Ok("two".into())));
        std::fs::remove_file(&path).unwrap();
        let third = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert!(matches!(third, Some(Err(e)) if e.contains("reading")));
        assert!(rx.try_recv().is_err(), "no repeat without a change");
        task.abort();
    }
}
