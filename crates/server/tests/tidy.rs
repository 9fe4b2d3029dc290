//! Tidy checks of the whole workspace, as one ordinary test: every `.rs` file opens with a
//! `//!` doc saying what it owns, every library denies missing docs, and no test is marked
//! should-panic or ignored (STYLE.md rules 4 and 17).
// Helpers outside `#[test]` functions are test code too; clippy.toml exempts only the latter.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn workspace_sources_are_tidy() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut crate_dirs: Vec<PathBuf> = fs::read_dir(workspace.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    crate_dirs.push(workspace.join("benches"));
    let mut files = Vec::new();
    for dir in &crate_dirs {
        for sub in ["src", "tests", "benches", "examples"] {
            rust_files(&dir.join(sub), &mut files);
        }
        let lib = dir.join("src/lib.rs");
        if lib.exists() {
            let text = fs::read_to_string(&lib).unwrap();
            assert!(
                text.contains("#![deny(missing_docs)]"),
                "{} must deny missing docs",
                lib.display()
            );
        }
    }
    assert!(files.len() >= 50, "found only {} files", files.len());
    let banned = [concat!("#[should", "_panic"), concat!("#[ig", "nore]")];
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with("//! "),
            "{} must open with a //! doc",
            file.display()
        );
        for pattern in banned {
            assert!(!text.contains(pattern), "{} uses {pattern}", file.display());
        }
    }
}
