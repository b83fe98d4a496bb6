#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Records SMB Direct messages to a file, each as a little-endian 32-bit length and
/// the message's bytes: what `Fuzz/seeds-from-capture` reads to make fuzzer seeds
/// from a real server's traffic.
final class MessageCapture {
    private let file: UnsafeMutablePointer<FILE>

    /// Creates (or truncates) the file at `path`.
    init(path: String) throws {
        guard let file = fopen(path, "wb") else {
            throw CaptureError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        self.file = file
    }

    /// Appends one message.
    func record(_ message: UnsafeRawBufferPointer) {
        var length = UInt32(message.count).littleEndian
        _ = withUnsafeBytes(of: &length) { fwrite($0.baseAddress, 1, 4, file) }
        if message.count > 0 { _ = fwrite(message.baseAddress, 1, message.count, file) }
    }

    deinit { fclose(file) }
}

/// A capture file that cannot be written.
struct CaptureError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
