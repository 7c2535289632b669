//! Process-level setup for a provider: logging to stderr, and protocol streams that
//! nothing else in the process (or its children) can write to by accident.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use tracing_subscriber::filter::LevelFilter;

/// Logs go to stderr, where NixOps4 collects them; `NIXOPS4_PROVIDER_LOG` sets the level.
pub(crate) fn init_logging() {
    let level = std::env::var("NIXOPS4_PROVIDER_LOG")
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Takes private, close-on-exec copies of stdin and stdout for the protocol, then points
/// file descriptor 0 at /dev/null and 1 at stderr. Child processes and stray prints can
/// then neither eat requests nor write into the response stream.
pub(crate) fn take_protocol_streams() -> io::Result<(File, File)> {
    let input: OwnedFd = io::stdin().as_fd().try_clone_to_owned()?;
    let output: OwnedFd = io::stdout().as_fd().try_clone_to_owned()?;
    let null = File::open("/dev/null")?;
    // SAFETY: dup2 on descriptors this process owns; 0 and 1 stay open throughout.
    unsafe {
        if libc::dup2(null.as_raw_fd(), 0) < 0 || libc::dup2(2, 1) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((File::from(input), File::from(output)))
}
