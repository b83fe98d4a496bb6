/// Reads numbers out of the fuzzer's bytes; past the end it yields zeros, so every
/// input decodes to something.
struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isExhausted: Bool { position >= bytes.count }

    mutating func byte() -> Int {
        defer { position += 1 }
        return position < bytes.count ? Int(bytes[position]) : 0
    }

    /// The next `count` bytes (zeros past the end).
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(byte()) }
    }

    /// A number in `0..<bound` from two bytes.
    mutating func number(below bound: Int) -> Int {
        precondition(bound > 0)
        return (byte() << 8 | byte()) % bound
    }
}
