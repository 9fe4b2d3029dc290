//! Tidy checks of this crate's sources: every `.rs` file opens with a `//!` doc saying what
//! it owns, `lib.rs` denies missing docs, and no test is marked should-panic or ignored.
// Helpers outside `#[test]` functions are test code too; clippy.toml exempts only the latter.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn sources_are_tidy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    assert!(files.len() >= 4, "found {files:?}");
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
    let lib = fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#![deny(missing_docs)]"));
}
