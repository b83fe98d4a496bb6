/// Renders a one-line progress bar with the rate: `[#####-----]  50%  16.0/32.0 MiB  812.4 MiB/s`,
/// for the example programs' long transfers.
public struct TransferProgressBar: Sendable {
    /// The bar's width in characters.
    public var width: Int

    /// A bar of `width` characters.
    public init(width: Int = 30) {
        precondition(width > 0, "a bar has at least one character")
        self.width = width
    }

    /// The line for `done` of `total` bytes after `elapsed`.
    public func render(done: Int, total: Int, elapsed: Duration) -> String {
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let filled = min(width, Int(fraction * Double(width)))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let percent = String(Int(fraction * 100)).leftPadded(to: 3)
        return "[\(bar)] \(percent)%  \(Self.mebibytes(done))/\(Self.mebibytes(total)) MiB  "
            + "\(Self.mebibytes(Int(Self.rate(bytes: done, elapsed: elapsed)))) MiB/s"
    }

    /// Bytes per second.
    public static func rate(bytes: Int, elapsed: Duration) -> Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(bytes) / seconds : 0
    }

    /// `bytes` in MiB with one decimal.
    public static func mebibytes(_ bytes: Int) -> String {
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10)"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
