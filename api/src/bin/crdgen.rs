//! Writes the HSN CRDs (`crds/*.yaml`) from the Rust types.
//!
//! `hsn-crdgen [DIR]` writes into DIR (default: the crds/ folder of this source tree and the
//! Helm chart's crds/); `hsn-crdgen --stdout` prints every CRD as one multi-document stream.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1);
    let files = hsn_api::crdgen::files()?;
    if arg.as_deref() == Some("--stdout") {
        let docs: Vec<_> = files.into_iter().map(|(_, yaml)| yaml).collect();
        print!("{}", docs.join("---\n"));
        return Ok(());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dirs: Vec<PathBuf> = match arg {
        Some(dir) => vec![PathBuf::from(dir)],
        None => hsn_api::crdgen::OUTPUT_DIRS
            .iter()
            .map(|d| root.join(d))
            .collect(),
    };
    for dir in dirs {
        std::fs::create_dir_all(&dir)?;
        for (name, yaml) in &files {
            let path = dir.join(name);
            std::fs::write(&path, yaml)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
