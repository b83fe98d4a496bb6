#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sleeps in `poll(2)` until `descriptor` is readable (true) or `deadline` passes
/// (false); a signal that interrupts the sleep resumes it. Every blocking wait of the
/// library (completion channels, connection events, listeners) sleeps here.
/// - Throws: `call` with `poll(2)`'s errno when the wait itself fails.
package func sleepUntilReadable(
    _ descriptor: Int32, until deadline: ContinuousClock.Instant?, call: VerbsCall
) throws(VerbsError) -> Bool {
    while true {
        var milliseconds: Int32 = -1
        if let deadline {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return false }
            let (seconds, attoseconds) = left.components
            milliseconds = Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, milliseconds)
        if ready > 0 { return true }
        if ready < 0, errno != EINTR {
            throw VerbsError(call, errno: errno, "poll(2) on descriptor \(descriptor) failed")
        }
    }
}
