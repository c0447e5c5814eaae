//! Generates `OUT_DIR/hsn_types.rs`, the Rust side of `include/hsn_types.h` (`src/abi.rs`
//! includes it), and compiles `src/*.bpf.c` with clang into `OUT_DIR/<name>.bpf.o`: `edge`
//! and `super` are embedded by `src/edge.rs` and `src/super_node.rs`, each also built a
//! second time with `-DHSN_TC` as a TC classifier (`edge_tc`, `super_tc`: one source, two
//! hooks, see `include/hsn_ctx.h`); `bench` only by `benches/datapath/object.rs` (and
//! `tests/common/routed.rs`, which borrows its XDP_PASS).
//!
//! `CLANG` overrides the compiler. `HSN_EBPF_SKIP_BPF_BUILD=1` writes empty objects instead,
//! so `cargo check`/clippy work on a machine without clang and libbpf (the ABI is still
//! generated, with libclang); loading then fails with `Error::ObjectNotBuilt`.

use std::env;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Each object: its name (`OUT_DIR/<name>.bpf.o`), its source (`src/<source>.bpf.c`) and the
/// defines it is built with.
const OBJECTS: &[(&str, &str, &[&str])] = &[
    ("edge", "edge", &[]),
    ("super", "super", &[]),
    ("edge_tc", "edge", &["-DHSN_TC"]),
    ("super_tc", "super", &["-DHSN_TC"]),
    ("bench", "bench", &[]),
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=include");
    println!("cargo::rerun-if-env-changed=CLANG");
    println!("cargo::rerun-if-env-changed=HSN_EBPF_SKIP_BPF_BUILD");

    generate_abi(&manifest, &out);
    if env::var_os("HSN_EBPF_SKIP_BPF_BUILD").is_some_and(|v| v == "1") {
        println!("cargo::warning=HSN_EBPF_SKIP_BPF_BUILD=1: eBPF objects are empty stubs");
        for (name, _, _) in OBJECTS {
            fs::write(out.join(format!("{name}.bpf.o")), b"").expect("write stub object");
        }
        return;
    }

    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    check_clang(&clang);
    check_libbpf_headers(&clang);
    for (name, source, defines) in OBJECTS {
        compile(&clang, &manifest, &out, name, source, defines);
    }
}

/// The structs of `hsn_types.h` with the layout clang gives them for the BPF target (bindgen
/// adds compile-time size, alignment and offset assertions, so a Rust build whose layout
/// differs fails), and its `#define`d and `enum` constants.
fn generate_abi(manifest: &Path, out: &Path) {
    let header = manifest.join("include").join("hsn_types.h");
    let mut builder = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_args(["-target", "bpf", "-fparse-all-comments"])
        .allowlist_type("hsn_.*")
        .allowlist_var("HSN_.*")
        .prepend_enum_name(false)
        // Hash keys are compared bytewise: padding would be bytes nobody initialises.
        .explicit_padding(true)
        .derive_default(true)
        .derive_hash(true)
        .derive_eq(true)
        .derive_ord(true);
    if let Some(dir) = multiarch_include() {
        builder = builder.clang_arg(format!("-idirafter{}", dir.display()));
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        fail(&format!(
            "generating the Rust side of {}: {e}\nhint: bindgen needs libclang (Debian: \
             apt-get install clang, which brings libclang1; or set LIBCLANG_PATH)",
            header.display()
        ))
    });
    let code = bindings.to_string();
    if let Some(at) = code.find("__bindgen_padding") {
        let item = code[..at].rsplit("pub struct ").next().unwrap_or_default();
        let name = item.split_whitespace().next().unwrap_or("?");
        fail(&format!(
            "struct {name} in {} has implicit padding: map keys are compared bytewise, \
             add an explicit pad field",
            header.display()
        ));
    }
    fs::write(out.join("hsn_types.rs"), code).expect("write hsn_types.rs");
}

fn check_clang(clang: &str) {
    match Command::new(clang).arg("--version").output() {
        Ok(output) if output.status.success() => {}
        _ => fail(&format!(
            "`{clang}` not found or not working: the eBPF programs need clang with the BPF \
             target. On Debian/Ubuntu: apt-get install clang libbpf-dev (or set CLANG=...)"
        )),
    }
}

/// Preprocesses one include up front: a clear "install libbpf-dev" beats a wall of errors.
fn check_libbpf_headers(clang: &str) {
    let mut cmd = bpf_clang(clang);
    cmd.args(["-E", "-x", "c", "-o", "/dev/null", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let ok = cmd.spawn().is_ok_and(|mut child| {
        let wrote = child
            .stdin
            .take()
            .is_some_and(|mut stdin| stdin.write_all(b"#include <bpf/bpf_helpers.h>\n").is_ok());
        child.wait().is_ok_and(|status| status.success()) && wrote
    });
    if !ok {
        fail(
            "libbpf headers (<bpf/bpf_helpers.h>) not found: the eBPF programs need them. \
             On Debian/Ubuntu: apt-get install libbpf-dev",
        );
    }
}

/// clang with the flags every compilation here shares.
fn bpf_clang(clang: &str) -> Command {
    let mut cmd = Command::new(clang);
    cmd.args(["-O2", "-g", "-target", "bpf"]);
    // <asm/types.h> lives under the multiarch include directory on Debian.
    if let Some(dir) = multiarch_include() {
        cmd.arg("-idirafter").arg(dir);
    }
    cmd
}

fn compile(clang: &str, manifest: &Path, out: &Path, name: &str, source: &str, defines: &[&str]) {
    let src = manifest.join("src").join(format!("{source}.bpf.c"));
    let obj = out.join(format!("{name}.bpf.o"));
    let mut cmd = bpf_clang(clang);
    cmd.args(["-Wall", "-Werror"])
        .args(defines)
        .arg("-I")
        .arg(manifest.join("include"));
    cmd.arg("-c").arg(&src).arg("-o").arg(&obj);
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("running {clang}: {e}")));
    if !output.status.success() {
        fail(&format!("{name}.bpf.o: {}", explain(&src, &output)));
    }
}

fn multiarch_include() -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let dir = PathBuf::from(format!("/usr/include/{arch}-linux-gnu"));
    dir.is_dir().then_some(dir)
}

fn explain(src: &Path, output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hint = if stderr.contains("bpf/bpf_helpers.h") || stderr.contains("bpf/bpf_endian.h") {
        "\nhint: libbpf headers are missing: apt-get install libbpf-dev"
    } else if stderr.contains("asm/types.h") || stderr.contains("linux/bpf.h") {
        "\nhint: kernel UAPI headers are missing: apt-get install linux-libc-dev"
    } else {
        ""
    };
    format!("compiling {} failed:\n{stderr}{hint}", src.display())
}

fn fail(message: &str) -> ! {
    // cargo shows a build script's stderr when it fails; keep it one readable block.
    eprintln!("error: {message}");
    std::process::exit(1);
}
