//! The docker engine for tests: whether one answers here, its command line,
//! and our images built from the binaries under test.

use std::path::Path;
use std::process::Command;

/// Whether a docker engine's socket is here; a test without one skips, saying so.
pub fn available() -> bool {
    Path::new("/var/run/docker.sock").exists()
}

/// `docker <args>`, which must succeed: its standard output, trimmed.
pub fn cli(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("docker runs");
    assert!(output.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `just images <names>` from the debug binaries under test (a no-op for
/// images that are current).
pub fn build_images(names: &[&str]) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit sits in the workspace");
    let target = crate::bin_dir().parent().expect("target/<profile>").to_owned();
    let images = Command::new(repo.join("scripts/images.sh"))
        .args(names)
        .env("Q2O_PROFILE", "debug")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("scripts/images.sh runs");
    assert!(images.status.success(), "just images: {}", String::from_utf8_lossy(&images.stderr));
}
