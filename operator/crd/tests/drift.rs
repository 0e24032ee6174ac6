#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `crds/` and the Helm chart's copy are generated from the Rust types; this
//! fails when they drift (regenerate with `make crds`).

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_crds_match_the_rust_types() {
    // At run time, not compile time: a cached build may come from a clone elsewhere.
    let repo = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_crdgen"))
        .current_dir(&repo)
        .args(["--check", "crds", "charts/sluice/files/crds"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the CRDs differ from the Rust types; run `make crds`:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
