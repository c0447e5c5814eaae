//! Process signals: shutdown (SIGTERM, SIGINT) and reload (SIGHUP).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves on SIGTERM or SIGINT (Ctrl-C). When the handlers cannot be installed (no Tokio
/// runtime with signals), it says so and never resolves: the process is stopped by SIGKILL.
pub async fn shutdown() {
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "cannot watch SIGTERM/SIGINT; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

/// SIGHUPs, for "re-read your configuration".
#[derive(Debug)]
pub struct Hangups(Option<Signal>);

impl Hangups {
    /// Starts listening; when the handler cannot be installed it says so, and
    /// [`Hangups::recv`] never resolves.
    pub fn new() -> Self {
        match signal(SignalKind::hangup()) {
            Ok(s) => Self(Some(s)),
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGHUP; reload by restarting");
                Self(None)
            }
        }
    }

    /// Resolves at the next SIGHUP.
    pub async fn recv(&mut self) {
        let delivered = match self.0.as_mut() {
            Some(s) => s.recv().await.is_some(),
            None => false,
        };
        if !delivered {
            std::future::pending::<()>().await;
        }
    }
}

impl Default for Hangups {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_hangup_is_received() {
        let mut hangups = Hangups::new();
        // The handler is installed: SIGHUP to ourselves no longer terminates the process.
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(10), hangups.recv())
            .await
            .expect("SIGHUP delivered");
    }
}
