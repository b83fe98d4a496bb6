#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure the program reports in one line of its own words (ArgumentParser prints
/// the description after "Error:" and exits with status 1).
struct CommandError: Error, CustomStringConvertible {
    let description: String
}

/// The bytes of the regular file at `path`, of at most `maxSize` bytes.
///
/// - Throws: ``CommandError`` naming the file and what is wrong: the reason `errno`
///   gives, not a regular file (a FIFO or a device is not read: it may never end),
///   or more than `maxSize` bytes.
func fileContents(_ path: String, maxSize: Int) throws(CommandError) -> [UInt8] {
    // Non-blocking, so that opening a FIFO does not wait for a writer.
    let descriptor = open(path, O_RDONLY | O_NONBLOCK)
    guard descriptor >= 0 else { throw unreadable(path) }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { throw unreadable(path) }
    guard status.st_mode & S_IFMT == S_IFREG else { throw CommandError(description: "\(path) is not a regular file") }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count >= 0 else { throw unreadable(path) }
        if count == 0 { return bytes }
        guard count <= maxSize - bytes.count else {
            throw CommandError(description: "\(path) is larger than \(maxSize) bytes, the most this demo reads")
        }
        bytes += chunk[..<count]
    }
}

/// The failure to read `path`, with the reason `errno` gives.
private func unreadable(_ path: String) -> CommandError {
    CommandError(description: "cannot read \(path): \(String(cString: strerror(errno)))")
}
