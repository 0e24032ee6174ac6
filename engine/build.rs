//! Embeds the web UI's bundle (`engine/ui/dist/`, built by `make ui` from the
//! TypeScript in `engine/ui/src/`) into the binary. Without a bundle the engine
//! still builds; its `/` then says how to build the UI.

use std::fmt::Write;
use std::path::Path;

const FILES: [&str; 3] = ["index.html", "app.js", "app.css"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // CARGO_MANIFEST_DIR is read when the script runs, not compiled in with env!(): cargo
    // reuses a compiled build script across checkouts at other paths (its fingerprint is
    // relative to the workspace), and a compiled-in path would look for another tree's dist/.
    let dist = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("ui").join("dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut code = String::from(
        "/// The web UI's files, by name (empty when the bundle was not built).\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    if FILES.iter().all(|f| dist.join(f).is_file()) {
        for f in FILES {
            let path = dist.join(f);
            println!("cargo:rerun-if-changed={}", path.display());
            let _ = writeln!(code, "    ({f:?}, include_bytes!({:?})),", path.display().to_string());
        }
    } else {
        println!("cargo:warning=engine/ui/dist is not built: the engine's web UI will say how to build it (make ui)");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR")?).join("ui_assets.rs");
    std::fs::write(&out, code)?;
    Ok(())
}
