//! `promtool check metrics` (Debian package `prometheus`, which `make test` installs) over a
//! component's `/metrics` text: names, types, help and units as Prometheus lints them.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Runs `promtool check metrics` on `text`; `Err` carries promtool's findings, or says how
/// to install it.
pub fn check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "running promtool: {e} (it comes with the Debian package prometheus: \
                 hack/install-deps.sh installs it)"
            )
        })?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .map_err(|e| format!("writing to promtool: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for promtool: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "promtool check metrics: {}{}\n--- the metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[cfg(test)]
mod tests {
    use super::check_metrics;

    #[test]
    fn promtool_passes_clean_text_and_names_what_is_wrong() {
        let clean =
            "# HELP a_things_total Things done.\n# TYPE a_things_total counter\na_things_total 3\n";
        check_metrics(clean).unwrap();
        let no_help = "# TYPE a_things_total counter\na_things_total 3\n";
        let err = check_metrics(no_help).unwrap_err();
        assert!(err.contains("no help text"), "{err}");
    }
}
