//! Transparent huge pages off for a process on mimalloc.
//!
//! mimalloc asks the kernel for huge pages on its arenas (`MADV_HUGEPAGE`)
//! and hands freed memory back in 64 KiB pieces a second later. The next
//! allocation there faults in a whole 2 MiB page again, which the kernel
//! zeroes first. Profiled in the overload scenario while 31,500 users
//! arrived, the loadgen spent 22 % of its CPU in the kernel's
//! `clear_page_erms` that way; with huge pages off, 1.4 %. Small pages also
//! keep RSS to what is touched: phase2's users took 19.9 KiB each instead
//! of 23.6 (`just measure-cost`, two interleaved runs each).

/// [`disable`], for a process's `main` once tracing is up: a kernel that
/// refuses only costs CPU, so it is a warning, not a failure.
pub fn disable_or_warn() {
    if let Err(err) = disable() {
        tracing::warn!(%err, "cannot turn transparent huge pages off; allocations may cost more CPU");
    }
}

/// Turns transparent huge pages off for every mapping of this process, those
/// made before included (the kernel checks at each page fault).
#[cfg(target_os = "linux")]
fn disable() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    match unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Other systems have no transparent huge pages to turn off.
#[cfg(not(target_os = "linux"))]
fn disable() -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn after_disable_the_kernel_reports_huge_pages_off_for_the_process() {
        super::disable().expect("prctl succeeds");
        // SAFETY: as above; PR_GET_THP_DISABLE returns the flag.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
    }
}
