#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress of a long transfer on standard error, a ``TransferProgressBar`` redrawn in
/// place at most four times a second, for the example programs. A transfer shorter
/// than ``threshold`` prints nothing, so that short runs and scripts see only the summary.
public final class ProgressLine {
    /// How long a transfer runs before its progress shows.
    public static var threshold: Duration { .seconds(1) }

    private let start = ContinuousClock.now
    private var lastDrawn: ContinuousClock.Instant?
    private let bar = TransferProgressBar()

    /// A line for a transfer that starts now.
    public init() {}

    /// Shows `done` of `total` bytes; the line ends once `done` reaches `total`.
    public func update(done: Int, total: Int) {
        let now = ContinuousClock.now
        let elapsed = now - start
        let finished = done >= total
        guard elapsed >= Self.threshold else { return }
        guard finished ? lastDrawn != nil : lastDrawn.map({ now - $0 >= .milliseconds(250) }) ?? true else { return }
        lastDrawn = now
        writeToStandardError("\r" + bar.render(done: done, total: total, elapsed: elapsed) + (finished ? "\n" : ""))
    }
}

/// Writes `text` to standard error, unbuffered.
public func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}
