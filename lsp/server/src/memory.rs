//! How the server holds memory: mimalloc as its allocator, transparent huge pages off,
//! and what an open freed given back to the system at once.

/// The syntax trees and indexes are many small allocations, made and freed on every
/// keystroke: mimalloc does that markedly faster than the system allocator here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for this process: the allocator's memory then comes in 4 KiB
/// pages, where a 2 MiB huge page counts whole in resident memory however little of it is
/// used (with them, 10,000 resources opened kept about a third more resident;
/// `bench/lsp-latency.sh` reports the memory).
pub fn without_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes nothing but how
    // this process's memory is backed; a kernel without it returns an error, ignored.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Gives the memory freed so far back to the system. Parsing a whole file makes
/// temporaries several times its size; mimalloc would keep their pages until later
/// allocations find them unused (after opening 10,000 resources, 107 MiB resident instead
/// of 66). Called after an open, not after each keystroke: it visits every page.
pub fn return_freed() {
    // SAFETY: mi_collect only frees what the allocator holds unused; no pointer is passed.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
