//! Polling with deadlines: tests wait on conditions, never on plain sleeps.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::Error;

/// How often conditions are re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Polls `f` every [`POLL_INTERVAL`] until it yields `Some`, or fails naming `what` at `timeout`.
pub async fn wait_for<F, Fut, T>(what: &str, timeout: Duration, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_ok(what, timeout, || {
        let attempt = f();
        async move { attempt.await.ok_or(NotYet) }
    })
    .await
    .map_err(|e| match e {
        // "not yet" carries no information; drop it from the timeout message.
        Error::Timeout { what, timeout, .. } => Error::Timeout {
            what,
            timeout,
            last: None,
        },
        other => other,
    })
}

/// Polls `f` until it returns `Ok`; on timeout the error names `what` and the last `Err`.
pub async fn wait_for_ok<F, Fut, T, E>(what: &str, timeout: Duration, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    poll(
        what,
        timeout,
        || Ok(()),
        || {
            let attempt = f();
            async move { attempt.await.map_err(|e| e.to_string()) }
        },
    )
    .await
}

/// The polling loop: each round runs `check` (whose `Err` aborts at once, e.g. "a process
/// died") and then `probe`; gives up at `timeout` with the last probe error.
pub(crate) async fn poll<T, C, P, Fut>(
    what: &str,
    timeout: Duration,
    mut check: C,
    mut probe: P,
) -> Result<T, Error>
where
    C: FnMut() -> Result<(), Error>,
    P: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        check()?;
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => last = Some(e),
            // Keep the previous, more telling error if the deadline cut this attempt short.
            Err(_) => {
                last.get_or_insert_with(|| "no attempt finished before the deadline".into());
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                timeout,
                last,
            });
        }
        // The last attempt lands on the deadline rather than up to an interval before it.
        tokio::time::sleep_until((now + POLL_INTERVAL).min(deadline)).await;
    }
}

/// The placeholder error of [`wait_for`]'s conditions that are not met yet.
struct NotYet;

impl Display for NotYet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("condition not met yet")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timeout_names_what_and_last_error() {
        let err = wait_for_ok("the moon", Duration::from_millis(300), || async {
            Err::<(), _>("still night")
        })
        .await
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("the moon") && message.contains("still night"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn returns_the_first_value() {
        let mut calls = 0;
        let value = wait_for("third call", Duration::from_secs(5), || {
            calls += 1;
            let done = calls == 3;
            async move { done.then_some(42) }
        })
        .await
        .unwrap();
        assert_eq!((value, calls), (42, 3));
    }
}
