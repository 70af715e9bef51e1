//! Rebuilds the crate when the built web UI changes, so a release binary never embeds a stale
//! UI. (The UI itself is built by `make`, never from here.)
fn main() {
    println!("cargo:rerun-if-changed=../../web/dist");
}
