#if RDMA
import IterExtract
import RDMASGE
import TestKit

/// What `rdma-e2e pair-client` and `pair-server` say to each other: the request's
/// private data (what the client wants from a connection), the accept's (the buffers
/// the server exposes), the rejection's (why), and the control messages both send
/// over a connection. Every field is little-endian. Private data starts with a magic
/// number and carries its own lengths, so that the zeros the connection manager pads
/// it with (to 56, 196 or 148 bytes over InfiniBand and RoCE), and a rejection by
/// nothing listening, can be told from what the peer said.
enum PairProtocol {
    /// The port the server listens on (on `::`, so over IPv4 and IPv6).
    static let port: UInt16 = 20886
    /// The first four bytes of every request, offer and rejection.
    static let magic: [UInt8] = Array("IXP1".utf8)
    /// The bytes one transfer moves per operation.
    static let transferSize = 1 << 20
    /// The size of each control message slot.
    static let slotSize = 512
    /// The immediate data of each RDMA WRITE WITH IMMEDIATE.
    static let immediate: UInt32 = 0x1234_5678
}

/// A peer's buffer that RDMA WRITE or READ may reach: its address, its exact length
/// and its rkey.
struct RemoteBuffer: Equatable {
    var address: UInt64
    var length: Int
    var rkey: UInt32
}

extension RemoteBuffer {
    /// The whole of `region`.
    init<Region: MemoryRegion>(_ region: Region) {
        self.init(address: UInt64(region.address), length: region.length, rkey: region.rkey)
    }
}

/// Little-endian fields appended to bytes.
struct WireWriter {
    private(set) var bytes: [UInt8] = []

    init(magic: Bool) { if magic { bytes = PairProtocol.magic } }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func put(_ buffer: RemoteBuffer) {
        put(buffer.address)
        put(UInt32(buffer.length))
        put(buffer.rkey)
    }
}

/// Little-endian fields read from bytes; every read checks the length first.
struct WireReader {
    private let bytes: [UInt8]
    private var at = 0

    /// A reader of `bytes`; with `magic`, `nil` unless they start with ``PairProtocol/magic``.
    init?(_ bytes: [UInt8], magic: Bool) {
        if magic {
            guard bytes.starts(with: PairProtocol.magic) else { return nil }
            at = PairProtocol.magic.count
        }
        self.bytes = bytes
    }

    mutating func take<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let size = MemoryLayout<T>.size
        guard at + size <= bytes.count else { throw Failure("message of \(bytes.count) bytes ends before byte \(at + size)") }
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[at..<at + size]) }
        at += size
        return T(littleEndian: value)
    }

    mutating func take(_: RemoteBuffer.Type) throws -> RemoteBuffer {
        RemoteBuffer(address: try take(), length: Int(try take(UInt32.self)), rkey: try take())
    }
}

/// What a client asks of the server with a connection request (at most 56 bytes).
enum PairRequest: Equatable {
    /// Every operation for an iterator of `kind`: the server exposes a buffer to
    /// write and one to read, each ``PairProtocol/transferSize`` bytes.
    case transfer(kind: IOIteratorKind)
    /// RDMA WRITEs streamed into one exposed buffer of `bytes`; the server
    /// disconnects after `disconnectAfter` milliseconds (never when 0).
    case stream(bytes: Int, disconnectAfter: Int)
    /// The server rejects the request, with ``PairRejection/asked``.
    case reject
    /// The client is done: the server rejects it with ``PairRejection/done`` and exits.
    case done
    /// A 64-byte SEND ping-pong of `iterations` timed round trips (``PairEcho``), both
    /// sides waiting with events or by polling.
    case echo(iterations: Int, events: Bool)

    var privateData: [UInt8] {
        var writer = WireWriter(magic: true)
        switch self {
        case .transfer(let kind):
            writer.put(UInt8(1))
            writer.put(UInt8(WholeBuffer.kinds.firstIndex(of: kind)!))
        case .stream(let bytes, let milliseconds):
            writer.put(UInt8(2))
            writer.put(UInt32(bytes))
            writer.put(UInt32(milliseconds))
        case .reject: writer.put(UInt8(3))
        case .done: writer.put(UInt8(4))
        case .echo(let iterations, let events):
            writer.put(UInt8(5))
            writer.put(UInt32(iterations))
            writer.put(UInt8(events ? 1 : 0))
        }
        return writer.bytes
    }

    /// The request in `privateData`; throws for anything else.
    init(privateData: [UInt8]) throws {
        guard var reader = WireReader(privateData, magic: true) else { throw Failure("a request without the pair magic") }
        switch try reader.take(UInt8.self) {
        case 1:
            let index = Int(try reader.take(UInt8.self))
            guard WholeBuffer.kinds.indices.contains(index) else { throw Failure("iterator kind \(index) unknown") }
            self = .transfer(kind: WholeBuffer.kinds[index])
        case 2:
            let bytes = Int(try reader.take(UInt32.self)), milliseconds = Int(try reader.take(UInt32.self))
            guard bytes >= 64 << 10, bytes <= 64 << 20 else { throw Failure("a stream buffer of \(bytes) bytes") }
            self = .stream(bytes: bytes, disconnectAfter: milliseconds)
        case 3: self = .reject
        case 4: self = .done
        case 5:
            let iterations = Int(try reader.take(UInt32.self)), events = try reader.take(UInt8.self)
            guard (1...100_000).contains(iterations), events <= 1 else { throw Failure("an echo of \(iterations) round trips, events \(events)") }
            self = .echo(iterations: iterations, events: events == 1)
        case let command: throw Failure("command \(command) unknown")
        }
    }
}

/// What the server exposes in its accept (at most 196 bytes): a buffer the client
/// may write and, for a transfer, one it may read.
struct PairOffer: Equatable {
    var write: RemoteBuffer
    var read: RemoteBuffer?

    var privateData: [UInt8] {
        var writer = WireWriter(magic: true)
        writer.put(write)
        writer.put(read ?? RemoteBuffer(address: 0, length: 0, rkey: 0))
        return writer.bytes
    }

    init(write: RemoteBuffer, read: RemoteBuffer?) {
        self.write = write
        self.read = read
    }

    init(privateData: [UInt8]) throws {
        guard var reader = WireReader(privateData, magic: true) else { throw Failure("an accept without the pair magic") }
        write = try reader.take(RemoteBuffer.self)
        let read = try reader.take(RemoteBuffer.self)
        self.read = read.length == 0 ? nil : read
    }
}

/// Why the server rejected a request (at most 148 bytes): a text with its length.
enum PairRejection {
    static let asked = "rejected as the client asked"
    static let done = "done, bye"

    /// The private data saying `text` (cut to what fits in a rejection).
    static func privateData(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8.prefix(ConnectionParameters.maxRejectPrivateData - PairProtocol.magic.count - 1))
        var writer = WireWriter(magic: true)
        writer.put(UInt8(utf8.count))
        return writer.bytes + utf8
    }

    /// The text in a rejection's private data; `nil` for a rejection not by a pair
    /// server (nothing listening).
    static func text(_ privateData: [UInt8]) -> String? {
        guard var reader = WireReader(privateData, magic: true), let count = try? reader.take(UInt8.self),
              privateData.count >= PairProtocol.magic.count + 1 + Int(count) else { return nil }
        return String(decoding: privateData.dropFirst(PairProtocol.magic.count + 1).prefix(Int(count)), as: UTF8.self)
    }
}

/// The operations every iterator kind goes through between the two guests.
enum PairOperation: UInt8, CaseIterable, CustomStringConvertible {
    case send = 1, write, writeWithImmediate, read

    var description: String {
        switch self {
        case .send: "SEND/RECV"
        case .write: "RDMA WRITE"
        case .writeWithImmediate: "RDMA WRITE WITH IMMEDIATE"
        case .read: "RDMA READ"
        }
    }
}

/// A control message, sent by SEND from a slot of ``PairProtocol/slotSize`` bytes.
enum PairMessage: Equatable {
    /// Client: post receives of these sizes, in order, over the transfer buffer.
    case expectSends(sizes: [Int])
    /// Client: post a receive without SGEs for one RDMA WRITE WITH IMMEDIATE.
    case expectImmediate
    /// Client: `operation` put the pattern of `seed` into the write buffer; check it.
    case verify(PairOperation, seed: UInt64)
    /// Client: fill the read buffer with the pattern of `seed`.
    case prepareRead(seed: UInt64)
    /// Server: done as asked.
    case ready
    /// Server: the CRC32C of the buffer after the operation, and whether it holds the pattern.
    case verified(crc: UInt32, matches: Bool)
    /// Client: the session is over.
    case bye

    var bytes: [UInt8] {
        var writer = WireWriter(magic: false)
        switch self {
        case .expectSends(let sizes):
            writer.put(UInt8(1))
            writer.put(UInt8(sizes.count))
            for size in sizes { writer.put(UInt32(size)) }
        case .expectImmediate: writer.put(UInt8(2))
        case .verify(let operation, let seed):
            writer.put(UInt8(3))
            writer.put(operation.rawValue)
            writer.put(seed)
        case .prepareRead(let seed):
            writer.put(UInt8(4))
            writer.put(seed)
        case .ready: writer.put(UInt8(5))
        case .verified(let crc, let matches):
            writer.put(UInt8(6))
            writer.put(crc)
            writer.put(UInt8(matches ? 1 : 0))
        case .bye: writer.put(UInt8(7))
        }
        return writer.bytes
    }

    init(bytes: [UInt8]) throws {
        var reader = WireReader(bytes, magic: false)!
        switch try reader.take(UInt8.self) {
        case 1:
            let count = Int(try reader.take(UInt8.self))
            self = .expectSends(sizes: try (0..<count).map { _ in Int(try reader.take(UInt32.self)) })
        case 2: self = .expectImmediate
        case 3:
            guard let operation = PairOperation(rawValue: try reader.take()) else { throw Failure("operation unknown") }
            self = .verify(operation, seed: try reader.take())
        case 4: self = .prepareRead(seed: try reader.take())
        case 5: self = .ready
        case 6: self = .verified(crc: try reader.take(), matches: try reader.take(UInt8.self) == 1)
        case 7: self = .bye
        case let tag: throw Failure("message \(tag) unknown")
        }
    }
}
#endif
