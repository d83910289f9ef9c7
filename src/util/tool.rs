//! The platform's own tools (`cgpt`, `systemd-bless-boot`) run bounded: no stdin, killed
//! when the wait ends, and each way one can fail said in one sentence that names the
//! command as it was run.

use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::text::one_line;
use super::time::spelled;

/// Why a tool did not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot run `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("`{command}` did not finish within {within}")]
    Timeout { command: String, within: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: ExitStatus, stderr: String },
}

/// Runs `cmd` (shown as `shown` in every message) to completion within `limit`; only a
/// zero exit is `Ok`.
pub async fn run(mut cmd: Command, shown: String, limit: Duration) -> Result<Output, ToolError> {
    prepare(&mut cmd);
    match cmd.spawn() {
        Ok(child) => wait(child, shown, limit).await,
        Err(source) => Err(ToolError::Spawn { command: shown, source }),
    }
}

/// What every run of a tool has: no stdin, its output captured, killed when the wait ends.
pub fn prepare(cmd: &mut Command) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
}

/// Waits for `child` (spawned from a [`prepare`]d command) within `limit`; only a zero
/// exit is `Ok`.
pub async fn wait(child: Child, shown: String, limit: Duration) -> Result<Output, ToolError> {
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(source)) => return Err(ToolError::Spawn { command: shown, source }),
        Err(_) => return Err(ToolError::Timeout { command: shown, within: spelled(limit).to_string() }),
    };
    if !out.status.success() {
        let stderr = one_line(String::from_utf8_lossy(&out.stderr).trim());
        return Err(ToolError::Failed { command: shown, status: out.status, stderr });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> (Command, String) {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        (cmd, format!("sh -c {script}"))
    }

    #[tokio::test]
    async fn each_failure_names_the_command_and_why() {
        let (cmd, shown) = sh("echo done");
        assert_eq!(run(cmd, shown, Duration::from_secs(10)).await.unwrap().stdout, b"done\n");
        let (cmd, shown) = sh("echo 'no such\n partition' >&2; exit 3");
        let err = run(cmd, shown, Duration::from_secs(10)).await.unwrap_err().to_string();
        assert_eq!(err, "`sh -c echo 'no such\n partition' >&2; exit 3` failed (exit status: 3): no such partition");
        let (cmd, shown) = sh("sleep 30");
        let err = run(cmd, shown, Duration::from_millis(200)).await.unwrap_err().to_string();
        assert_eq!(err, "`sh -c sleep 30` did not finish within 200ms");
        let err = run(Command::new("/nonexistent/tool"), "tool".into(), Duration::from_secs(1)).await.unwrap_err();
        assert!(err.to_string().starts_with("cannot run `tool`: "), "{err}");
    }
}
