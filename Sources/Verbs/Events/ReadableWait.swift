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
    try sleepUntilReadable(descriptor, or: nil, until: deadline, call: call) != nil
}

/// Sleeps in `poll(2)` until `descriptor` or `other` (when given) is readable, and
/// returns the first of them that is (`descriptor` when both are), or `nil` when
/// `deadline` passes first; a signal that interrupts the sleep resumes it.
/// - Throws: `call` with `poll(2)`'s errno when the wait itself fails.
package func sleepUntilReadable(
    _ descriptor: Int32, or other: Int32?, until deadline: ContinuousClock.Instant?, call: VerbsCall
) throws(VerbsError) -> Int32? {
    var entries = (pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: other ?? -1, events: Int16(POLLIN), revents: 0))
    while true {
        var milliseconds: Int32 = -1
        if let deadline {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return nil }
            let (seconds, attoseconds) = left.components
            milliseconds = Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        }
        let ready = withUnsafeMutableBytes(of: &entries) { raw in
            poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), other == nil ? 1 : 2, milliseconds)
        }
        if ready > 0 { return entries.0.revents != 0 ? descriptor : other }
        if ready < 0, errno != EINTR {
            throw VerbsError(call, errno: errno, "poll(2) on descriptor \(descriptor) failed")
        }
    }
}
