#if canImport(Glibc)
import Glibc
#endif

/// Forks the process, runs `probe` in the child and ends the child at once with the
/// status `probe` returns (`_exit`: no exit handlers, no flushing of buffers the parent
/// owns); the parent waits for the child. Returns the child's exit status, or `nil`
/// when it died of a signal or was still running at `timeout` (then it is killed).
///
/// The child of a multithreaded process has one thread, and locks other threads held
/// stay held in it: `probe` may only make async-signal-safe calls and read memory.
///
/// Forking makes every private page of the process copy-on-write, so a page that a
/// test device tracks moves to a new frame at the parent's next write: run tests that
/// fork inside an exit test (`#expect(processExitsWith:)`), a process of their own,
/// so that they leave other tests' tracked regions alone.
public func statusOfForkedChild(timeout: Duration = .seconds(10), _ probe: () -> Int32) -> Int32? {
    let child = fork()
    precondition(child >= 0, "fork failed (errno \(errno))")
    if child == 0 { _exit(probe()) }
    var status: Int32 = 0
    let deadline = ContinuousClock.now + timeout
    while waitpid(child, &status, WNOHANG) == 0 {
        guard ContinuousClock.now < deadline else {
            kill(child, SIGKILL)
            _ = waitpid(child, &status, 0)
            return nil
        }
        usleep(1000)
    }
    // WIFEXITED and WEXITSTATUS, which Swift does not import (they are macros).
    return status & 0x7F == 0 ? (status >> 8) & 0xFF : nil
}

/// Whether a child forked now has every page of `length` bytes at `address` mapped:
/// `false` for memory marked `MADV_DONTFORK` (the child has no mapping there). The
/// child asks `msync(2)`, which fails with `ENOMEM` for unmapped pages, and exits.
public func childOfForkMaps(address: UInt, length: Int) -> Bool {
    let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
    let first = address & ~(pageSize - 1)
    let status = statusOfForkedChild {
        msync(UnsafeMutableRawPointer(bitPattern: first), Int(address - first) + length, MS_ASYNC) == 0 ? 0 : 1
    }
    precondition(status != nil, "the child of fork died or hung")
    return status == 0
}
