#if canImport(Glibc)
import Glibc
#endif
import TestKit

/// Progress of a long transfer on standard error, a ``TransferProgressBar`` redrawn in
/// place at most four times a second. Transfers shorter than half a second print nothing.
final class ProgressLine {
    private let start = ContinuousClock.now
    private var lastDrawn: ContinuousClock.Instant?
    private let bar = TransferProgressBar()

    /// Shows `done` of `total` bytes; the line ends once `done` reaches `total`.
    func update(done: Int, total: Int) {
        let now = ContinuousClock.now
        let elapsed = now - start
        let finished = done >= total
        guard elapsed >= .milliseconds(500) else { return }
        guard finished ? lastDrawn != nil : lastDrawn.map({ now - $0 >= .milliseconds(250) }) ?? true else { return }
        lastDrawn = now
        writeToStandardError("\r" + bar.render(done: done, total: total, elapsed: elapsed) + (finished ? "\n" : ""))
    }
}
