//! The workspace's structural rules, checked over the sources (STYLE.md 1, 11):
//!
//! * no import cycle between sibling modules of a crate: at every level of a crate's module
//!   tree, the modules that share a parent are layered (`a` may use `b` or `b` use `a`,
//!   not both, also through a longer loop). A module and its own parent or children may
//!   refer to each other (a `mod.rs` holds what its submodules share);
//! * no source file over 600 lines (a longer file is usually two concepts).
//!
//! Test code is left out: `tests.rs`, `*_tests.rs` and what follows `#[cfg(test)]` in a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file, in lines.
const MAX_LINES: usize = 600;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ is in the workspace")
        .to_owned()
}

/// Every workspace crate's `src/` directory (a folder with `Cargo.toml` and `src/lib.rs` or
/// `src/main.rs`, one or two levels down).
fn crate_sources(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    for depth in 0..2 {
        let mut next = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !path.is_dir() || name.starts_with('.') || name == "target" || name == "bin" {
                    continue;
                }
                let src = path.join("src");
                if path.join("Cargo.toml").is_file() && src.is_dir() {
                    out.push(src);
                } else if depth == 0 {
                    next.push(path);
                }
            }
        }
        dirs = next;
    }
    out.sort();
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(path: &Path) -> bool {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    stem == "tests" || stem.ends_with("_tests")
}

/// The module path of a source file: `src/network/fetch.rs` → `[network, fetch]`,
/// `src/network/mod.rs` → `[network]`, `src/lib.rs` → `[]`; binaries are left out.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    Some(parts)
}

/// The non-test part of a file, without comments (doc links name modules too).
fn production_code(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |i| &text[..i]);
    code.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths a file refers to: `crate::a::b` and `super::x` (relative to `module`).
fn references(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (keyword, relative) in [("crate::", false), ("super::", true)] {
        let mut from = 0;
        while let Some(i) = code[from..].find(keyword) {
            let start = from + i;
            from = start + keyword.len();
            // A whole word: not `hsn_crate::`, `xsuper::` or a macro's `$crate::`.
            if start > 0
                && (bytes[start - 1].is_ascii_alphanumeric()
                    || matches!(bytes[start - 1], b'_' | b'$'))
            {
                continue;
            }
            let mut path: Vec<String> = if relative {
                // `super` of `a/b.rs` and of `a/b/mod.rs` (both module a::b) is `a`.
                module[..module.len().saturating_sub(1)].to_vec()
            } else {
                Vec::new()
            };
            let mut rest = &code[from..];
            // Further `super::` segments.
            while relative && rest.starts_with("super::") {
                path.pop();
                rest = &rest["super::".len()..];
            }
            // Segments: identifiers separated by `::`; a `{` group names several.
            let ident_end = |s: &str| {
                s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(s.len())
            };
            loop {
                let n = ident_end(rest);
                if n == 0 {
                    if let Some(group) = rest.strip_prefix('{') {
                        let close = group.find('}').unwrap_or(group.len());
                        for item in group[..close].split(',') {
                            let item = item.trim();
                            let n = ident_end(item);
                            if n > 0 {
                                let mut p = path.clone();
                                p.push(item[..n].to_owned());
                                out.push(p);
                            }
                        }
                    }
                    break;
                }
                path.push(rest[..n].to_owned());
                rest = &rest[n..];
                match rest.strip_prefix("::") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            out.push(path);
        }
    }
    out
}

/// Cycles among siblings: for each reference from module `m` to a path `t`, the siblings
/// are the children of their deepest common ancestor on the way to `m` and to `t`.
fn sibling_edges(
    modules: &BTreeSet<Vec<String>>,
    refs: &BTreeMap<Vec<String>, Vec<Vec<String>>>,
) -> BTreeSet<(Vec<String>, Vec<String>)> {
    let mut edges = BTreeSet::new();
    for (from, targets) in refs {
        for target in targets {
            // The module the reference lands in: the longest known module prefix.
            let Some(to) = (0..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|p| modules.contains(p))
            else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // One is the other's ancestor: parent and child may refer to each other.
            if common == from.len() || common == to.len() {
                continue;
            }
            edges.insert((from[..=common].to_vec(), to[..=common].to_vec()));
        }
    }
    edges
}

/// A cycle in `edges`, if any, as the list of modules on it.
fn find_cycle(edges: &BTreeSet<(Vec<String>, Vec<String>)>) -> Option<Vec<String>> {
    let mut graph: BTreeMap<&Vec<String>, Vec<&Vec<String>>> = BTreeMap::new();
    for (a, b) in edges {
        graph.entry(a).or_default().push(b);
    }
    // Depth-first search with colours: 1 on the stack, 2 done.
    fn visit<'a>(
        node: &'a Vec<String>,
        graph: &BTreeMap<&'a Vec<String>, Vec<&'a Vec<String>>>,
        colour: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        colour.insert(node, 1);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match colour.get(next) {
                Some(1) => {
                    let at = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[at..].iter().map(|m| m.join("::")).collect();
                    cycle.push(next.join("::"));
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, colour, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        colour.insert(node, 2);
        None
    }
    let mut colour = BTreeMap::new();
    for node in graph.keys() {
        if !colour.contains_key(node)
            && let Some(c) = visit(node, &graph, &mut colour, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// Cycles of one crate's `src/`.
fn crate_cycle(src: &Path) -> Option<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules = BTreeSet::new();
    let mut refs = BTreeMap::new();
    for file in files.iter().filter(|f| !is_test_file(f)) {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        refs.insert(module.clone(), references(&production_code(&text), &module));
        modules.insert(module);
    }
    find_cycle(&sibling_edges(&modules, &refs))
}

#[test]
fn no_module_cycles_in_any_crate() {
    let sources = crate_sources(&workspace());
    assert!(sources.len() >= 8, "found only {sources:?}");
    let cycles: Vec<String> = sources
        .iter()
        .filter_map(|src| {
            let cycle = crate_cycle(src)?;
            Some(format!("{}: {}", src.display(), cycle.join(" -> ")))
        })
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn no_source_file_is_over_600_lines() {
    let root = workspace();
    let mut files = Vec::new();
    for src in crate_sources(&root) {
        // The crate's src/, tests/ and benches/.
        let krate = src.parent().expect("src/ has a parent");
        for dir in ["src", "tests", "benches"] {
            rust_files(&krate.join(dir), &mut files);
        }
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concept (at most {MAX_LINES} lines):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_ignores_parents() {
    let m = |s: &str| -> Vec<String> { s.split("::").map(str::to_owned).collect() };
    let modules: BTreeSet<_> = [m("a"), m("b"), m("a::x"), m("c")].into_iter().collect();
    // a::x -> b, b -> a: a cycle between siblings a and b.
    let refs = BTreeMap::from([
        (m("a::x"), references("use crate::b::Thing;", &m("a::x"))),
        (m("b"), references("use crate::{a, c};", &m("b"))),
        (m("a"), references("use self::x; use super::c;", &m("a"))),
    ]);
    let cycle = find_cycle(&sibling_edges(&modules, &refs)).expect("a cycle");
    assert!(cycle.contains(&"a".to_owned()) && cycle.contains(&"b".to_owned()));
    // Child and parent referring to each other is no cycle.
    let refs = BTreeMap::from([
        (m("a::x"), references("use super::Shared;", &m("a::x"))),
        (m("a"), references("pub use crate::a::x::Thing;", &m("a"))),
    ]);
    assert_eq!(find_cycle(&sibling_edges(&modules, &refs)), None);
}
