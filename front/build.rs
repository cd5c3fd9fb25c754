//! Checks the vendored browser assets (front/assets/swagger-ui from the npm package
//! swagger-ui-dist, front/assets/chartjs from chart.js; both refreshed by front/assets/update.sh)
//! against their SHA256SUMS before they are embedded with include_bytes!: a corrupted or
//! hand-edited bundle fails the build.
use sha2::{Digest, Sha256};
use std::path::Path;

fn main() {
    for dir in ["assets/swagger-ui", "assets/chartjs"] {
        check(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir));
    }
}

fn check(dir: &Path) {
    let sums_path = dir.join("SHA256SUMS");
    println!("cargo:rerun-if-changed={}", sums_path.display());
    let sums = std::fs::read_to_string(&sums_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run front/assets/update.sh)", sums_path.display()));
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (expected, name) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("bad SHA256SUMS line: {line}"));
        let path = dir.join(name.trim());
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run front/assets/update.sh)", path.display()));
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            actual,
            expected.trim(),
            "{} does not match its sha256 in SHA256SUMS (run front/assets/update.sh)",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 2, "SHA256SUMS lists no files");
}
