//! A named network namespace and what runs inside it.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::{Error, LinkStats};
use hsn_core::MacAddr;

/// Where `ip netns` keeps its namespaces.
const NETNS_RUN_DIR: &str = "/run/netns";
/// Prefix of the names [`Netns::unique`] makes: `hsn-<pid>-<seq>-<tag>`.
const UNIQUE_PREFIX: &str = "hsn-";

/// True when running as root, which every function here needs.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A named network namespace (`/run/netns/<name>`), deleted on drop.
///
/// Created quiet: loopback up; IPv6 without router advertisements, router solicitations,
/// DAD or link-local addresses on new interfaces; no ICMP redirects sent or accepted; no
/// reverse-path filter; forwarding off. See [`Netns::set_router`] for a forwarding hop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A namespace named `hsn-<pid>-<seq>-<tag>`, unique to this process and call, so
    /// parallel tests never collide. Also deletes namespaces of this form left behind by
    /// test processes that no longer exist (killed before their destructors ran).
    pub fn unique(tag: &str) -> Result<Self, Error> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_stale);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        Self::create(&format!(
            "{UNIQUE_PREFIX}{}-{seq}-{tag}",
            std::process::id()
        ))
    }

    /// Creates the namespace `name` (`ip netns add`); fails if it exists.
    pub fn create(name: &str) -> Result<Self, Error> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(Error::Invalid {
                what: "namespace name",
                input: name.to_owned(),
            });
        }
        run_ip(&["netns", "add", name])?;
        // From here on, drop deletes it.
        let ns = Self {
            name: name.to_owned(),
        };
        ns.quiet()?;
        ns.ip(&["link", "set", "dev", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, the bind mount that keeps the namespace alive.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_RUN_DIR).join(&self.name)
    }

    /// `ip -n <name> <args>`; returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, Error> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ip(&all)
    }

    /// A [`Command`] that runs `program` inside the namespace (`ip netns exec`), with
    /// SIGKILL as its parent-death signal (`setpriv --pdeathsig`). Add arguments, then
    /// `output()` it or hand it to [`NsChild::spawn`](super::NsChild::spawn).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--", "ip", "netns", "exec"])
            .arg(&self.name)
            .arg(program);
        cmd
    }

    /// Runs `program args` inside the namespace to completion; returns stdout, or an error
    /// with stderr when it fails.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, Error> {
        let mut cmd = self.command(program);
        cmd.args(args);
        output(&mut cmd, &format!("{program} {}", args.join(" ")))
    }

    /// Runs `f` on a new thread that has entered the namespace and returns its result.
    /// Sockets opened, interfaces looked up and processes forked inside `f` belong to the
    /// namespace. A panic in `f` is resumed on the caller.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, Error> {
        let file = self.open()?;
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name(format!("netns {}", self.name))
                .spawn_scoped(scope, move || {
                    self.enter_with(&file)?;
                    Ok(f())
                })
                .map_err(Error::Thread)?;
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts `f` on a new thread inside the namespace, for work that outlives the call (a
    /// server loop, a traffic generator). Returns once the thread has entered the namespace.
    pub fn spawn_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<JoinHandle<R>, Error> {
        let file = self.open()?;
        let name = self.name.clone();
        let (entered_tx, entered_rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn(move || {
                let entered = enter(&name, &file);
                let ok = entered.is_ok();
                let _ = entered_tx.send(entered);
                if !ok {
                    // The caller gets the error; this thread's result is never looked at.
                    std::panic::panic_any("could not enter the network namespace");
                }
                f()
            })
            .map_err(Error::Thread)?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Enter {
                name: self.name.clone(),
                source: std::io::Error::other("thread exited before entering"),
            }),
        }
    }

    /// Moves the *calling thread* into the namespace for good. Only for threads the caller
    /// owns (never a test harness or async runtime thread it does not control).
    pub fn enter(&self) -> Result<(), Error> {
        self.enter_with(&self.open()?)
    }

    /// Writes a sysctl inside the namespace; `key` is dotted (`net.ipv4.ip_forward`,
    /// `net.ipv6.conf.eth0.accept_ra`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), Error> {
        self.run(|| write_sysctl(&self.name, key, value))?
    }

    /// Makes the namespace a router: IPv4 and IPv6 forwarding on, ICMP redirects off.
    ///
    /// Call it before creating the namespace's links: IPv6 forwarding is switched on for the
    /// namespace (`all`) but off on interfaces created later (`default`), which still
    /// forward (the kernel looks at `all`) but do not join the all-routers groups and so
    /// send no MLD reports. Interfaces that exist already do join them.
    pub fn set_router(&self) -> Result<(), Error> {
        let settings = [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            // After `all`, which overwrites `default`.
            ("net.ipv6.conf.default.forwarding", "0"),
            ("net.ipv4.conf.all.send_redirects", "0"),
            ("net.ipv4.conf.default.send_redirects", "0"),
        ];
        self.run(|| {
            settings
                .iter()
                .try_for_each(|(key, value)| write_sysctl(&self.name, key, value))
        })?
    }

    /// A permanent neighbour entry (ARP or ND): `ip` is reached at `mac` out of `ifname`
    /// without any resolution traffic on the wire.
    pub fn neigh(&self, ifname: &str, ip: &str, mac: MacAddr) -> Result<(), Error> {
        let mac = mac.to_string();
        self.ip(&[
            "neigh",
            "replace",
            ip,
            "lladdr",
            &mac,
            "dev",
            ifname,
            "nud",
            "permanent",
        ])
        .map(drop)
    }

    /// The interface's own counters (`ip -j -s link show dev <ifname>`).
    pub fn link_stats(&self, ifname: &str) -> Result<LinkStats, Error> {
        let json = self.ip(&["-j", "-s", "link", "show", "dev", ifname])?;
        LinkStats::from_ip_json(&json).map_err(|reason| Error::Output {
            cmd: format!("ip -n {} -j -s link show dev {ifname}", self.name),
            reason,
        })
    }

    /// The interface's MAC address.
    pub fn mac(&self, ifname: &str) -> Result<MacAddr, Error> {
        let json = self.ip(&["-j", "link", "show", "dev", ifname])?;
        let cmd = || format!("ip -n {} -j link show dev {ifname}", self.name);
        let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| Error::Output {
            cmd: cmd(),
            reason: e.to_string(),
        })?;
        let address = value[0]["address"].as_str().ok_or_else(|| Error::Output {
            cmd: cmd(),
            reason: "no address".into(),
        })?;
        address
            .parse()
            .map_err(|e: hsn_core::ParseMacError| Error::Invalid {
                what: "MAC address",
                input: e.0,
            })
    }

    fn quiet(&self) -> Result<(), Error> {
        let mut settings = vec![
            ("net.ipv6.conf.default.addr_gen_mode".to_owned(), "1"),
            ("net.ipv4.conf.all.send_redirects".to_owned(), "0"),
            ("net.ipv4.conf.default.send_redirects".to_owned(), "0"),
        ];
        for scope in ["all", "default"] {
            for key in [
                "accept_ra",
                "router_solicitations",
                "accept_dad",
                "dad_transmits",
                "accept_redirects",
            ] {
                settings.push((format!("net.ipv6.conf.{scope}.{key}"), "0"));
            }
            settings.push((format!("net.ipv4.conf.{scope}.accept_redirects"), "0"));
            // Test topologies route asymmetrically (uplink and downlink via different hops).
            settings.push((format!("net.ipv4.conf.{scope}.rp_filter"), "0"));
        }
        // One thread for all of them rather than one per key.
        self.run(|| {
            settings
                .iter()
                .try_for_each(|(key, value)| write_sysctl(&self.name, key, value))
        })?
    }

    fn open(&self) -> Result<File, Error> {
        File::open(self.path()).map_err(|source| Error::Enter {
            name: self.name.clone(),
            source,
        })
    }

    fn enter_with(&self, file: &File) -> Result<(), Error> {
        enter(&self.name, file)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Interfaces inside go with it; processes still inside keep it alive until they exit.
        let _ = run_ip(&["netns", "del", &self.name]);
    }
}

fn enter(name: &str, file: &File) -> Result<(), Error> {
    setns(file, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Enter {
        name: name.to_owned(),
        source: e.into(),
    })
}

/// Writes `/proc/sys/<key>`, which resolves against the calling thread's namespace.
fn write_sysctl(name: &str, key: &str, value: &str) -> Result<(), Error> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    fs::write(&path, value).map_err(|source| Error::Sysctl {
        name: name.to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// Deletes `hsn-<pid>-...` namespaces whose process is gone.
fn remove_stale() {
    let Ok(entries) = fs::read_dir(NETNS_RUN_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(UNIQUE_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
            let _ = run_ip(&["netns", "del", &name]);
        }
    }
}

pub(crate) fn run_ip(args: &[&str]) -> Result<String, Error> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    output(&mut cmd, &format!("ip {}", args.join(" ")))
}

fn output(cmd: &mut Command, line: &str) -> Result<String, Error> {
    let out = cmd.output().map_err(|source| Error::Spawn {
        cmd: line.to_owned(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: line.to_owned(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    String::from_utf8(out.stdout).map_err(|e| Error::Output {
        cmd: line.to_owned(),
        reason: e.to_string(),
    })
}
