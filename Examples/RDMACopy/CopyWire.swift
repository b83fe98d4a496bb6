// The rdma-copy wire protocol, version 1. Every integer is little-endian; every
// message starts with the magic "RCPY" (52 43 50 59) and is checked on receipt.
//
// Connection request, private data of rdma_connect (client → server, 16 bytes; over
// InfiniBand and RoCE rdma_cm pads it with zeros to 56):
//     0  magic "RCPY"
//     4  version: 1
//     5  operation: 1 push (the client RDMA WRITEs), 2 fetch (the client RDMA READs)
//     6  flags: bit 0, the client's last session (a pair-server may exit after it)
//     7  reserved, 0
//     8  length, UInt64: push, the bytes the client will write; fetch, 0
//
// Accept, private data of rdma_accept (server → client, 32 bytes; padded to 196):
//     0  magic, 4 version, 5 operation (the request's), 6..7 reserved
//     8  address, UInt64: the first byte of the buffer the server exposes
//    16  rkey, UInt32: the buffer's region, registered for exactly the buffer with
//        remote write (push) or remote read (fetch) only; 20..23 reserved
//    24  length, UInt64: the buffer's size (push: the request's; fetch: the file's)
//
// Reject, private data of rdma_reject (server → client, 16 bytes; padded to 148):
//     0  magic, 4 version, 5 reason (``CopyRejection/Reason``), 6..7 reserved
//     8  limit, UInt64: for a length over the server's maximum, that maximum
//
// Messages, by SEND after the connection is made (48 bytes each):
//     0  magic, 4 kind (``CopyMessage/Kind``), 5 status (``CopyStatus``), 6..7 reserved
//     8  length, UInt64
//    16  SHA-256, 32 bytes
//
// push: the client RDMA WRITEs the file into the buffer, the last request a WRITE
// WITH IMMEDIATE whose immediate is the length's low 32 bits; then it SENDs `digest`
// (length, SHA-256). The server, once both have arrived, deregisters the buffer,
// computes the SHA-256 and SENDs `verdict` (status, the SHA-256 it computed).
// fetch: the client RDMA READs the buffer, then SENDs `done` (the bytes read); the
// server deregisters the buffer and SENDs `digest` (length, the file's SHA-256).
// Then the client disconnects.

/// What a session does.
public enum CopyOperation: UInt8, Sendable, CustomStringConvertible {
    /// The client writes its file into the server's buffer by RDMA WRITE.
    case push = 1
    /// The client reads the server's file by RDMA READ.
    case fetch = 2

    /// `push` or `fetch`.
    public var description: String { self == .push ? "push" : "fetch" }
}

/// What opens every rdma-copy message.
let copyMagic: [UInt8] = Array("RCPY".utf8)
/// The protocol version this program speaks.
let copyVersion: UInt8 = 1

/// A client's connection request: the private data it connects with.
public struct CopyRequest: Hashable, Sendable {
    /// What the client wants.
    public var operation: CopyOperation
    /// For a push, the bytes the client will write; 0 for a fetch.
    public var length: UInt64
    /// Whether this is the client's last session.
    public var isLastSession: Bool

    /// A request for `operation` of `length` bytes.
    public init(operation: CopyOperation, length: UInt64, isLastSession: Bool = false) {
        self.operation = operation
        self.length = length
        self.isLastSession = isLastSession
    }

    /// The request's private data, 16 bytes.
    public var privateData: [UInt8] {
        var bytes = copyMagic + [copyVersion, operation.rawValue, isLastSession ? 1 : 0, 0]
        bytes.appendLittleEndian(length)
        return bytes
    }

    /// Reads and checks a request a peer sent, against a server that takes pushes of
    /// at most `maxSize` bytes.
    /// - Throws: The rejection to answer with: a wrong magic (or too short), another
    ///   version, an unknown operation, a push of no bytes or of more than `maxSize`.
    public init(parsing bytes: [UInt8], maxSize: UInt64) throws(CopyRejection) {
        guard bytes.count >= 16, bytes.starts(with: copyMagic) else { throw CopyRejection(.badMagic) }
        guard bytes[4] == copyVersion else { throw CopyRejection(.unsupportedVersion) }
        guard let operation = CopyOperation(rawValue: bytes[5]) else { throw CopyRejection(.unknownOperation) }
        let length = bytes.littleEndian(UInt64.self, at: 8)
        if operation == .push {
            guard length > 0 else { throw CopyRejection(.empty) }
            guard length <= maxSize else { throw CopyRejection(.tooLarge, limit: maxSize) }
        }
        self.init(operation: operation, length: length, isLastSession: bytes[6] & 1 != 0)
    }
}

/// The server's answer to a request it accepts: the buffer the client may access.
public struct CopyOffer: Hashable, Sendable {
    /// The request's operation.
    public var operation: CopyOperation
    /// The buffer's first byte in the server's address space.
    public var address: UInt64
    /// The rkey of the buffer's region.
    public var rkey: UInt32
    /// The buffer's size.
    public var length: UInt64

    /// An offer of `length` bytes at `address` under `rkey`.
    public init(operation: CopyOperation, address: UInt64, rkey: UInt32, length: UInt64) {
        self.operation = operation
        self.address = address
        self.rkey = rkey
        self.length = length
    }

    /// The offer's private data, 32 bytes.
    public var privateData: [UInt8] {
        var bytes = copyMagic + [copyVersion, operation.rawValue, 0, 0]
        bytes.appendLittleEndian(address)
        bytes.appendLittleEndian(rkey)
        bytes.appendLittleEndian(UInt32(0))
        bytes.appendLittleEndian(length)
        return bytes
    }

    /// Reads and checks the server's offer for `request`, from a client that takes at
    /// most `maxSize` bytes.
    /// - Throws: ``RDMACopyError/protocolViolation(_:)`` for a wrong magic or version,
    ///   another operation, a push length other than the request's, a fetch of no bytes
    ///   or more than `maxSize`, or a buffer that wraps around the address space.
    public init(parsing bytes: [UInt8], for request: CopyRequest, maxSize: UInt64) throws(RDMACopyError) {
        guard bytes.count >= 32, bytes.starts(with: copyMagic), bytes[4] == copyVersion else {
            throw .protocolViolation("the accept's private data is not an rdma-copy offer")
        }
        guard bytes[5] == request.operation.rawValue else {
            throw .protocolViolation("the server offered operation \(bytes[5]) for a \(request.operation)")
        }
        self.init(operation: request.operation, address: bytes.littleEndian(UInt64.self, at: 8),
                  rkey: bytes.littleEndian(UInt32.self, at: 16), length: bytes.littleEndian(UInt64.self, at: 24))
        switch operation {
        case .push:
            guard length == request.length else {
                throw .protocolViolation("the server offered \(length) bytes for a push of \(request.length)")
            }
        case .fetch:
            guard length > 0, length <= maxSize else {
                throw .protocolViolation("the server offered \(length) bytes; this client takes 1 to \(maxSize)")
            }
        }
        guard !address.addingReportingOverflow(length).overflow else {
            throw .protocolViolation("the server's buffer of \(length) bytes at 0x\(String(address, radix: 16)) wraps around")
        }
    }
}

/// Why a server refused a request: what the rejection's private data carries.
public struct CopyRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// The reason codes.
    public enum Reason: UInt8, Sendable {
        /// The request did not start with the magic.
        case badMagic = 1
        /// The request's version is not 1.
        case unsupportedVersion = 2
        /// The operation is neither push nor fetch.
        case unknownOperation = 3
        /// A push longer than the server's maximum (in ``CopyRejection/limit``).
        case tooLarge = 4
        /// A push of no bytes.
        case empty = 5
        /// A fetch from a server that exposes no file.
        case nothingToFetch = 6
        /// The server could not set up the session (memory, registration, queue pair).
        case noResources = 7
    }

    /// Why.
    public var reason: Reason
    /// For ``Reason/tooLarge``, the server's maximum; else 0.
    public var limit: UInt64

    /// A rejection for `reason`.
    public init(_ reason: Reason, limit: UInt64 = 0) {
        self.reason = reason
        self.limit = limit
    }

    /// The rejection's private data, 16 bytes.
    public var privateData: [UInt8] {
        var bytes = copyMagic + [copyVersion, reason.rawValue, 0, 0]
        bytes.appendLittleEndian(limit)
        return bytes
    }

    /// Reads a rejection's private data; `nil` when it is no rdma-copy rejection (a
    /// connection manager refusing for want of a listener sends none, or zeros).
    /// - Throws: ``RDMACopyError/protocolViolation(_:)`` for an rdma-copy rejection
    ///   with an unknown reason code.
    public init?(parsing bytes: [UInt8]) throws(RDMACopyError) {
        guard bytes.count >= 16, bytes.starts(with: copyMagic) else { return nil }
        guard let reason = Reason(rawValue: bytes[5]) else {
            throw .protocolViolation("the server rejected the request with unknown reason \(bytes[5])")
        }
        self.init(reason, limit: bytes.littleEndian(UInt64.self, at: 8))
    }

    /// The reason, in a sentence.
    public var description: String {
        switch reason {
        case .badMagic: "bad magic (not an rdma-copy request)"
        case .unsupportedVersion: "unsupported protocol version"
        case .unknownOperation: "unknown operation"
        case .tooLarge: "too large: the server takes at most \(limit) bytes"
        case .empty: "nothing to copy (0 bytes)"
        case .nothingToFetch: "the server exposes no file to fetch (serve --file)"
        case .noResources: "the server could not set up the session"
        }
    }
}

/// How a session ended, as a verdict carries it.
public enum CopyStatus: UInt8, Sendable {
    /// The SHA-256 matched.
    case verified = 0
    /// The SHA-256 of the bytes that arrived is not the one the client sent.
    case digestMismatch = 1
    /// The WRITE WITH IMMEDIATE's immediate is not the length's low 32 bits.
    case lengthMismatch = 2
}

/// A message sent by SEND once the connection is made.
struct CopyMessage: Hashable {
    /// What the message says.
    enum Kind: UInt8 {
        /// A length and the SHA-256 of those bytes.
        case digest = 1
        /// The server's verdict on a push, with the SHA-256 it computed.
        case verdict = 2
        /// A fetch's READs are done.
        case done = 3
    }

    /// The size of every message.
    static let size = 48

    var kind: Kind
    var status: CopyStatus = .verified
    var length: UInt64
    var sha256: [UInt8] = Array(repeating: 0, count: 32)

    /// The message's 48 bytes.
    var bytes: [UInt8] {
        var bytes = copyMagic + [kind.rawValue, status.rawValue, 0, 0]
        bytes.appendLittleEndian(length)
        return bytes + sha256
    }

    /// Reads a message of `kind` from `bytes`, the received bytes.
    /// - Throws: ``RDMACopyError/protocolViolation(_:)`` for a short message, a wrong
    ///   magic, another kind or an unknown status.
    init(parsing bytes: [UInt8], expecting kind: Kind) throws(RDMACopyError) {
        guard bytes.count >= Self.size, bytes.starts(with: copyMagic) else {
            throw .protocolViolation("a \(bytes.count)-byte message that is no rdma-copy message")
        }
        guard bytes[4] == kind.rawValue else { throw .protocolViolation("message kind \(bytes[4]) where \(kind) was due") }
        guard let status = CopyStatus(rawValue: bytes[5]) else { throw .protocolViolation("unknown status \(bytes[5])") }
        self.init(kind: kind, status: status, length: bytes.littleEndian(UInt64.self, at: 8), sha256: Array(bytes[16..<48]))
    }

    init(kind: Kind, status: CopyStatus = .verified, length: UInt64, sha256: [UInt8]) {
        self.kind = kind
        self.status = status
        self.length = length
        self.sha256 = sha256
    }
}

extension [UInt8] {
    /// Appends `value`'s bytes, least significant first.
    fileprivate mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// The little-endian `T` at `offset`; the caller checked the bounds.
    fileprivate func littleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        (0..<MemoryLayout<T>.size).reduce(T.zero) { $0 | T(self[offset + $1]) << ($1 * 8) }
    }
}
