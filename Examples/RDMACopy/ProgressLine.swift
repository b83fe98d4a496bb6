#if canImport(Glibc)
import Glibc
#endif

/// Progress of a long transfer on standard error, redrawn in place at most four
/// times a second: `  12.0/16.0 MiB  75%  13.2 MB/s`. Transfers shorter than half a
/// second print nothing.
final class ProgressLine {
    private let start = ContinuousClock.now
    private var lastDrawn: ContinuousClock.Instant?

    /// Shows `done` of `total` bytes; the line ends once `done` reaches `total`.
    func update(done: Int, total: Int) {
        let now = ContinuousClock.now
        let elapsed = now - start
        let finished = done >= total
        guard elapsed >= .milliseconds(500) else { return }
        guard finished ? lastDrawn != nil : lastDrawn.map({ now - $0 >= .milliseconds(250) }) ?? true else { return }
        lastDrawn = now
        let mebibyte = Double(1 << 20)
        let rate = Double(done) / (elapsed / .seconds(1)) / mebibyte
        writeToStandardError("\r  \(fixed(Double(done) / mebibyte, 1))/\(fixed(Double(total) / mebibyte, 1)) MiB  \(done * 100 / max(total, 1))%  "
              + "\(fixed(rate, 1)) MB/s" + (finished ? "\n" : ""))
    }
}
