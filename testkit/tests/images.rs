//! The pause image `hack/images.sh` builds, and an import into a throwaway containerd (its
//! own root, state and socket in a temp dir; root only) under the exact reference.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hsn_testkit::images;

fn build_pause(out: &Path) -> images::BuiltImage {
    if let Some(reason) = images::missing_tools() {
        panic!("{reason}");
    }
    // The pause image holds no cargo binary; any directory will do.
    images::build("pause", out, out).unwrap()
}

#[test]
fn pause_image_sleeps_as_65535() {
    let out = tempfile::tempdir().unwrap();
    let built = build_pause(out.path());
    assert_eq!(built.reference, "localhost/hsn-pause:0.1.0");
    assert_eq!(
        built.config["Entrypoint"],
        serde_json::json!(["/bin/sleep", "infinity"])
    );
    assert_eq!(built.config["User"], "65535:65535");
    assert_eq!(built.files.get("bin/sleep"), Some(&0o755));
}

/// containerd with everything under one temp dir, CRI off; killed on drop.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().display();
        let config = format!(
            "version = 2\nroot = \"{p}/root\"\nstate = \"{p}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{p}/sock\"\n[ttrpc]\n  address = \"{p}/sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd (make deps installs it)");
        let me = Self { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Err(e) = me.ctr(&["version"]) {
            assert!(
                Instant::now() < deadline,
                "containerd not serving in 20 s: {e}"
            );
            std::thread::sleep(hsn_testkit::POLL_INTERVAL);
        }
        me
    }

    fn ctr(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["-n", "k8s.io"])
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Unpacked snapshots are overlay mounts only while a container runs; none does here,
        // but unmount whatever is left under the root before the temp dir goes.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("root"))
            .status();
    }
}

#[test]
fn import_into_containerd_under_the_exact_name() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: containerd needs root (run as root, as make test does on the project's machines)"
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let built = build_pause(out.path());
    let containerd = Containerd::start();
    containerd
        .ctr(&["images", "import", built.archive.to_str().unwrap()])
        .unwrap();
    let names = containerd.ctr(&["images", "ls", "-q"]).unwrap();
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [built.reference.as_str()]
    );
}
