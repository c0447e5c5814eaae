//! Container images built without a daemon (`hack/images.sh`), read back and checked against
//! their Dockerfiles.
//!
//! [`check_equivalent`] is what each component's `tests/image.rs` runs: it builds the image
//! from the binary cargo built for the test, parses the Dockerfile's final stage here (a
//! second reading, independent of the script's) and compares what a pod sees: the
//! reference, entrypoint, user, ENV lines, the component's files and their modes, and the
//! apt packages the Dockerfile installs against the host files standing in for them.
//! Not compared: the base image (distroless or debian-slim there; here only the shared
//! libraries `ldd` names, `/etc/passwd`, `/etc/group`, `/tmp`), the binary's bytes (release
//! there, the test's profile here), timestamps, history and the base image's own ENV.
//! Errors are `anyhow`'s: every caller is a test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

/// The repository root (where `hack/images.sh` and the Dockerfiles are).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Skips (returns a reason) when the tools the local builder needs are missing.
pub fn missing_tools() -> Option<String> {
    let missing: Vec<_> = ["umoci", "jq", "tar"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    (!missing.is_empty())
        .then(|| format!("missing {} (make deps installs them)", missing.join(", ")))
}

/// An image's build description, `hack/images/<image>.conf`.
#[derive(Debug, Default)]
pub struct Conf {
    /// The repository part of the reference.
    pub repository: String,
    /// The Dockerfile, relative to the repository root; empty for the pause image.
    pub dockerfile: String,
    /// What the Dockerfile's final stage apt-installs.
    pub apt_packages: Vec<String>,
    /// Host files (`src` or `src:dest`) standing in for those packages.
    pub host_files: Vec<String>,
}

impl Conf {
    /// Reads `hack/images/<image>.conf` (`key=value` and `key=(a b)` lines).
    pub fn read(image: &str) -> anyhow::Result<Self> {
        let path = repo_root().join(format!("hack/images/{image}.conf"));
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let mut conf = Self::default();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (key, value) = line.split_once('=').context("a line without '='")?;
            let list = || -> Vec<String> {
                let inner = value.trim_start_matches('(').trim_end_matches(')');
                inner.split_whitespace().map(str::to_owned).collect()
            };
            match key {
                "repository" => conf.repository = value.to_owned(),
                "dockerfile" => conf.dockerfile = value.to_owned(),
                "apt_packages" => conf.apt_packages = list(),
                "host_files" => conf.host_files = list(),
                _ => {}
            }
        }
        Ok(conf)
    }

    /// Where each host file lands in the image.
    pub fn host_file_dests(&self) -> Vec<String> {
        let dest = |f: &String| f.split_once(':').map_or(f.clone(), |(_, d)| d.to_owned());
        self.host_files.iter().map(dest).collect()
    }
}

/// What a Dockerfile's final stage says a container gets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FinalStage {
    /// `FROM`.
    pub base: String,
    /// `ENTRYPOINT`, exec form.
    pub entrypoint: Vec<String>,
    /// `USER`; none means root.
    pub user: Option<String>,
    /// `COPY --from=build` destinations.
    pub copies: Vec<String>,
    /// `ENV` lines, `KEY=value`.
    pub env: Vec<String>,
    /// Packages `RUN apt-get install` names, sorted.
    pub apt_packages: Vec<String>,
}

impl FinalStage {
    /// Parses the last stage of a Dockerfile.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let joined = text.replace("\\\n", " ");
        let lines: Vec<&str> = joined
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let from = lines
            .iter()
            .rposition(|l| l.starts_with("FROM "))
            .context("no FROM")?;
        let mut stage = Self::default();
        for line in &lines[from..] {
            let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match word {
                "FROM" => stage.base = rest.to_owned(),
                "COPY" => stage.copies.push(
                    rest.rsplit_once(' ')
                        .context("COPY without a destination")?
                        .1
                        .to_owned(),
                ),
                "USER" => stage.user = Some(rest.to_owned()),
                "ENTRYPOINT" => {
                    stage.entrypoint = serde_json::from_str(rest)
                        .with_context(|| format!("ENTRYPOINT not in exec form: {rest}"))?;
                }
                "ENV" => stage.env.push(rest.to_owned()),
                "RUN" => {
                    let install = rest
                        .split_once("apt-get install")
                        .context("RUN other than apt-get install")?
                        .1;
                    let words = install.split("&&").next().unwrap_or_default();
                    let packages = words.split_whitespace().filter(|w| !w.starts_with('-'));
                    stage.apt_packages.extend(packages.map(str::to_owned));
                }
                other => bail!("{other} in the final stage: the check does not know it"),
            }
        }
        stage.apt_packages.sort();
        Ok(stage)
    }
}

/// An image archive as `hack/images.sh` wrote it, read back.
#[derive(Debug)]
pub struct BuiltImage {
    /// The reference its index names (`org.opencontainers.image.ref.name`).
    pub reference: String,
    /// The image config's `config` object (Entrypoint, User, Env, ...).
    pub config: Value,
    /// Every regular file and symlink in its layers, path without a leading `/` → mode.
    pub files: BTreeMap<String, u32>,
    /// The archive.
    pub archive: PathBuf,
}

/// Builds `image` with `hack/images.sh` into `out`, binaries from `bin_dir`.
pub fn build(image: &str, bin_dir: &Path, out: &Path) -> anyhow::Result<BuiltImage> {
    let status = Command::new(repo_root().join("hack/images.sh"))
        .args(["build".as_ref(), out.as_os_str(), image.as_ref()])
        .env("BIN_DIR", bin_dir)
        .env_remove("IMAGE_TAG")
        .status()
        .context("running hack/images.sh")?;
    ensure!(status.success(), "hack/images.sh build {image}: {status}");
    read(&out.join(format!("{image}.tar")))
}

/// Reads an OCI archive: index → manifest → config and layers.
pub fn read(archive: &Path) -> anyhow::Result<BuiltImage> {
    let dir = tempfile::tempdir()?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir.path()))?;
    let json = |digest: &str| -> anyhow::Result<Value> {
        let path = blob(dir.path(), digest);
        Ok(serde_json::from_slice(
            &std::fs::read(&path).with_context(|| path.display().to_string())?,
        )?)
    };
    let index: Value = serde_json::from_slice(&std::fs::read(dir.path().join("index.json"))?)?;
    let entry = &index["manifests"][0];
    ensure!(
        index["manifests"].as_array().map(Vec::len) == Some(1),
        "one manifest expected: {index}"
    );
    let reference = entry["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .context("no ref.name annotation")?
        .to_owned();
    let manifest = json(entry["digest"].as_str().context("manifest digest")?)?;
    let config = json(
        manifest["config"]["digest"]
            .as_str()
            .context("config digest")?,
    )?;
    let mut files = BTreeMap::new();
    for layer in manifest["layers"].as_array().context("layers")? {
        let digest = layer["digest"].as_str().context("layer digest")?;
        let listing = run(Command::new("tar")
            .args(["--numeric-owner", "-tvzf"])
            .arg(blob(dir.path(), digest)))?;
        for line in listing.lines() {
            let mut cols = line.split_whitespace();
            let perms = cols.next().unwrap_or_default();
            let path = cols.nth(4).unwrap_or_default().trim_start_matches("./");
            if perms.starts_with(['-', 'l']) {
                files.insert(path.to_owned(), mode_bits(perms));
            }
        }
    }
    Ok(BuiltImage {
        reference,
        config: config["config"].clone(),
        files,
        archive: archive.to_owned(),
    })
}

/// Builds `image` from `binary`'s directory and checks it against its Dockerfile.
pub fn check_equivalent(image: &str, binary: &Path) -> anyhow::Result<BuiltImage> {
    let conf = Conf::read(image)?;
    let dockerfile = repo_root().join(&conf.dockerfile);
    let stage = FinalStage::parse(&std::fs::read_to_string(&dockerfile)?)?;
    let out = tempfile::tempdir()?;
    let built = build(image, binary.parent().context("binary path")?, out.path())?;

    ensure!(
        built.config["Entrypoint"] == serde_json::json!(stage.entrypoint),
        "entrypoint: image {} vs {}: {:?}",
        built.config["Entrypoint"],
        conf.dockerfile,
        stage.entrypoint
    );
    let user = built.config["User"].as_str().filter(|u| !u.is_empty());
    ensure!(
        user == stage.user.as_deref(),
        "user: image {user:?} vs {}: {:?}",
        conf.dockerfile,
        stage.user
    );
    let env: BTreeSet<&str> = built.config["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for line in &stage.env {
        ensure!(
            env.contains(line.as_str()),
            "ENV {line} missing from the image: {env:?}"
        );
    }
    let mut conf_packages = conf.apt_packages.clone();
    conf_packages.sort();
    ensure!(
        conf_packages == stage.apt_packages,
        "{} apt-installs {:?}, hack/images/{image}.conf maps {:?}",
        conf.dockerfile,
        stage.apt_packages,
        conf_packages
    );

    // The component's files: exactly the COPY destinations (executable) and the host files
    // for its packages; besides them only the local base (libraries, passwd, group).
    let mut own: BTreeSet<String> = stage
        .copies
        .iter()
        .map(|d| d.trim_start_matches('/').to_owned())
        .collect();
    for dest in &stage.copies {
        let mode = built.files.get(dest.trim_start_matches('/'));
        ensure!(
            mode == Some(&0o755),
            "{dest}: mode {mode:?} in the image, 0o755 expected"
        );
    }
    own.extend(
        conf.host_file_dests()
            .iter()
            .map(|d| d.trim_start_matches('/').to_owned()),
    );
    let is_base = |path: &str| {
        ["etc/passwd", "etc/group"].contains(&path)
            || path.starts_with("lib/")
            || path.starts_with("lib64/")
    };
    let extra: Vec<_> = built
        .files
        .keys()
        .filter(|p| !own.contains(*p) && !is_base(p))
        .collect();
    ensure!(
        extra.is_empty(),
        "files in the image the Dockerfile does not put there: {extra:?}"
    );
    let missing: Vec<_> = own
        .iter()
        .filter(|p| !built.files.contains_key(*p))
        .collect();
    ensure!(
        missing.is_empty(),
        "files missing from the image: {missing:?}"
    );
    let entry = stage.entrypoint.first().context("empty ENTRYPOINT")?;
    let mode = built
        .files
        .get(entry.trim_start_matches('/'))
        .copied()
        .unwrap_or(0);
    ensure!(
        mode & 0o111 != 0,
        "entrypoint {entry} is not an executable file in the image"
    );
    Ok(built)
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs").join(digest.replacen(':', "/", 1))
}

fn mode_bits(perms: &str) -> u32 {
    perms
        .chars()
        .skip(1)
        .take(9)
        .enumerate()
        .filter(|(_, c)| !matches!(c, '-' | 'S' | 'T'))
        .fold(0, |mode, (i, _)| mode | (1 << (8 - i)))
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_stage_of_a_two_stage_dockerfile() {
        let text = "FROM rust AS build\nRUN cargo build\n# comment\nFROM debian:bookworm-slim\n\
                    RUN apt-get update && apt-get install -y --no-install-recommends b a \\\n    && rm -rf x\n\
                    COPY --from=build /src/target/release/x /usr/bin/x\nUSER 1:1\nENV A=b\n\
                    ENTRYPOINT [\"/usr/bin/x\", \"run\"]\n";
        let stage = FinalStage::parse(text).unwrap();
        assert_eq!(stage.base, "debian:bookworm-slim");
        assert_eq!(stage.entrypoint, ["/usr/bin/x", "run"]);
        assert_eq!(stage.user.as_deref(), Some("1:1"));
        assert_eq!(stage.copies, ["/usr/bin/x"]);
        assert_eq!(stage.env, ["A=b"]);
        assert_eq!(stage.apt_packages, ["a", "b"]);
    }

    #[test]
    fn unknown_instruction_in_the_final_stage_is_refused() {
        assert!(FinalStage::parse("FROM a\nVOLUME /data\n").is_err());
    }

    #[test]
    fn modes_from_a_tar_listing() {
        assert_eq!(mode_bits("-rwxr-xr-x"), 0o755);
        assert_eq!(mode_bits("-rw-r--r--"), 0o644);
        assert_eq!(mode_bits("drwxrwxrwt"), 0o777);
    }
}
