//! Child processes (build, server, hello), their memory, and where the binaries are.

use anyhow::{bail, Context as _};
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// A child process that is killed (SIGKILL) and reaped when the guard is dropped, on every
/// exit path: success, error, panic unwinding or an interrupted run.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: &'static str,
    log: Option<PathBuf>,
    /// Stop with SIGTERM first (and wait up to `GRACE`), so a wrapper such as valgrind can write
    /// its output; SIGKILL only if that does not end it.
    graceful: bool,
}

/// How long a graceful stop may take before SIGKILL.
const GRACE: std::time::Duration = std::time::Duration::from_secs(60);

impl ChildGuard {
    /// Spawns `cmd`; its stderr goes to `log` when given (else nowhere), stdout nowhere.
    pub fn spawn(
        name: &'static str,
        cmd: &mut Command,
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let stderr = match log {
            Some(p) => Stdio::from(File::create(p).with_context(|| format!("creating {p:?}"))?),
            None => Stdio::null(),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            child,
            name,
            log: log.map(Path::to_path_buf),
            graceful: false,
        })
    }

    /// Makes the guard stop the process with SIGTERM before resorting to SIGKILL.
    pub fn stop_gracefully(mut self) -> Self {
        self.graceful = true;
        self
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Fails with the exit status and the end of its log when the process is gone.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited unexpectedly ({status}){}",
                self.name,
                self.log_tail()
            ),
        }
    }

    /// The last lines of the process's stderr, formatted for an error message.
    pub fn log_tail(&self) -> String {
        self.log
            .as_deref()
            .and_then(|p| tail(p, 2000).ok())
            .filter(|t| !t.trim().is_empty())
            .map(|t| format!("; its stderr ends with:\n{t}"))
            .unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.graceful && self.child.try_wait().ok().flatten().is_none() {
            // No libc here (unsafe is forbidden): kill(1) sends the signal.
            let sent = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            let start = std::time::Instant::now();
            while sent && start.elapsed() < GRACE {
                if self.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The last `max` bytes of a file, as text.
fn tail(path: &Path, max: u64) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The workspace root: two levels above this crate's manifest.
pub fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    dir.canonicalize().unwrap_or(dir)
}

/// `CARGO_TARGET_DIR` (relative to the workspace root when relative), else `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(v) => root.join(v),
        None => root.join("target"),
    }
}

/// Runs `cargo build --release -p PACKAGE --bin BIN` in the workspace root. Cargo's progress
/// goes to our stderr; its stdout (nothing, normally) is dropped so `--json` stays clean.
pub fn cargo_build(root: &Path, package: &str, bin: &str) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", package, "--bin", bin])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {cargo:?} build"))?;
    if !status.success() {
        bail!("cargo build --release -p {package} --bin {bin} failed ({status})");
    }
    Ok(())
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: peak resident since start or the last reset, KiB.
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_status(&status).context("VmRSS/VmHWM missing from /proc/<pid>/status")
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        hwm_kib: field("VmHWM")?,
    })
}

/// Resets the peak (`VmHWM`) of `pid` to its current RSS by writing `5` to
/// `/proc/<pid>/clear_refs`. Needs permission over the process (we started it; root can).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let s = "Name:\tauthara\nVmPeak:\t  100 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            parse_status(s),
            Some(Memory {
                rss_kib: 10240,
                hwm_kib: 20480
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn our_own_memory_reads() {
        let m = memory(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }
}
