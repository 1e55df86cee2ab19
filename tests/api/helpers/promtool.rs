//! promtool, Prometheus' own checker, run from the repository root.

use std::process::Command;

/// Runs promtool with `args` from the repository root; answers whether it
/// succeeded and its report (standard output, then error).
pub fn run_promtool<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("promtool is needed (Debian package `prometheus`; scripts/test installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}
