import IterExtract
import RDMASGE

/// A minimal SMB2 client over SMB Direct: NEGOTIATE (dialect 3.0 or 3.0.2),
/// an anonymous SESSION_SETUP (NTLMSSP NEGOTIATE, then AUTHENTICATE with empty
/// credentials), TREE_CONNECT, CREATE, WRITE and CLOSE (MS-SMB2 3.2).
///
/// Requests go one at a time. A WRITE of more than ``inlineThreshold`` bytes goes
/// through the RDMA channel (`SMB2_CHANNEL_RDMA_V1`): the data's memory is
/// registered, described by buffer descriptors, pulled by the server with RDMA READ,
/// and invalidated once the server has answered. Smaller writes go inline, their
/// data extracted straight into the send's SGEs. Either way the data is not copied.
public final class SMB2Client<Domain: ProtectionDomain> {
    /// What the client has done.
    public struct Statistics: Hashable, Sendable {
        /// Requests sent.
        public var requests = 0
        /// Writes sent inline.
        public var inlineWrites = 0
        /// The bytes the writes sent inline carried.
        public var inlineBytes = 0
        /// Writes sent through the RDMA channel.
        public var rdmaWrites = 0
        /// The bytes the server pulled with RDMA READ for writes sent through the RDMA channel.
        public var rdmaBytes = 0
        /// The buffer descriptors the writes sent through the RDMA channel used.
        public var bufferDescriptors = 0
        /// The statistics of a client that has sent nothing.
        public init() {}
    }

    /// The transport.
    public let connection: SMBDirectConnection<Domain>
    /// Writes larger than this go through the RDMA channel (the kernel's
    /// `rdma_readwrite_threshold` is 4 KiB), and so do writes larger than one SMB Direct
    /// message carries, whatever this says.
    public var inlineThreshold: Int
    /// The most buffer descriptors in one RDMA-channel write: 1...4,095, as the
    /// request's channel information holds (``write(_:to:at:progress:)`` throws
    /// ``SMB2Error/invalidArgument(_:)`` otherwise).
    public var maxDescriptors: Int
    /// The dialect the server chose.
    public private(set) var dialect: UInt16 = 0
    /// The session this client uses.
    public private(set) var sessionID: UInt64 = 0
    /// The tree this client uses.
    public private(set) var treeID: UInt32 = 0
    /// Whether the server made the session a guest or null session.
    public private(set) var sessionFlags: UInt16 = 0
    /// The most bytes one WRITE may carry: the server's MaxWriteSize, and through the
    /// RDMA channel the transport's MaxReadWriteSize too, and at most what a credit
    /// charge can pay for (65,535 credits of 64 KiB).
    public private(set) var maxWriteSize = 65_536
    /// The counters.
    public private(set) var statistics = Statistics()
    private var nextMessageID: UInt64 = 0
    private var credits = 1

    /// A client on `connection` (the initiator's side) that sends writes of more than
    /// `inlineThreshold` bytes through the RDMA channel, described by at most
    /// `maxDescriptors` buffer descriptors each.
    public init(connection: SMBDirectConnection<Domain>, inlineThreshold: Int = 4096, maxDescriptors: Int = 16) {
        self.connection = connection
        self.inlineThreshold = inlineThreshold
        self.maxDescriptors = maxDescriptors
    }

    /// Negotiates the dialect (3.0 or 3.0.2).
    public func negotiate() throws(SMB2Error) {
        let guid = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let response = try exchange(.negotiate, charge: 0) { SMB2NegotiateRequest(clientGUID: guid).encode(into: &$0) }
        let body = try SMB2NegotiateResponse(decoding: response)
        guard SMB2NegotiateRequest.dialects.contains(body.dialect) else { throw .unsupportedDialect(body.dialect) }
        dialect = body.dialect
        let transport = connection.limits?.maxReadWriteSize ?? 0
        maxWriteSize = max(1, min(Int(body.maxWriteSize), transport, Int(UInt16.max) * Self.creditSize))
    }

    /// Sets up an anonymous session: NTLMSSP NEGOTIATE, the server's CHALLENGE, then
    /// an AUTHENTICATE with empty credentials. The server makes it a null or guest session.
    public func setUpAnonymousSession() throws(SMB2Error) {
        let first = try exchange(.sessionSetup, accepting: .moreProcessingRequired) {
            SMB2SessionSetupRequest(securityBlob: NTLMSSP.negotiate()).encode(into: &$0)
        }
        let challenge = try SMB2SessionSetupResponse(decoding: first)
        guard NTLMSSP.messageType(in: challenge.securityBlob[...]) == .challenge else {
            throw .unexpectedResponse("SESSION_SETUP did not return an NTLM challenge")
        }
        sessionID = try SMB2Header(decoding: first).sessionID
        let second = try exchange(.sessionSetup) {
            SMB2SessionSetupRequest(securityBlob: NTLMSSP.anonymousAuthenticate()).encode(into: &$0)
        }
        sessionFlags = try SMB2SessionSetupResponse(decoding: second).sessionFlags
    }

    /// Connects to the share at `path` (`\\server\share`).
    ///
    /// - Throws: ``SMB2Error/invalidArgument(_:)``, before anything is sent, for a
    ///   path longer than 32,767 UTF-16 units.
    public func connectTree(_ path: String) throws(SMB2Error) {
        let request = try SMB2TreeConnectRequest(path: path)
        let response = try exchange(.treeConnect) { request.encode(into: &$0) }
        _ = try SMB2TreeConnectResponse(decoding: response)
        treeID = try SMB2Header(decoding: response).treeID
    }

    /// Creates (or truncates) the file `name` (relative to the share) and opens it for writing.
    ///
    /// - Throws: ``SMB2Error/invalidArgument(_:)``, before anything is sent, for a
    ///   name longer than 32,767 UTF-16 units.
    public func create(_ name: String) throws(SMB2Error) -> SMB2FileID {
        let request = try SMB2CreateRequest(name: name)
        let response = try exchange(.create) { request.encode(into: &$0) }
        return try SMB2CreateResponse(decoding: response).fileID
    }

    /// Writes the bytes of `data` to `file` from `offset` on, in WRITE requests of up
    /// to ``maxWriteSize`` bytes, each inline or through the RDMA channel by its size,
    /// calling `progress` with the bytes written so far after each. Advances `data`.
    ///
    /// - Returns: The bytes written.
    /// - Throws: ``SMB2Error/invalidArgument(_:)``, before anything is sent and with
    ///   `data` where it was, when the range written would end past `UInt64.max` or
    ///   ``maxDescriptors`` is outside 1...4,095, and, with `data` just past the bytes
    ///   written, when `data` reaches a hole (an XARRAY index with no folio: the bytes
    ///   before it are written, none after); ``SMB2Error/shortWrite(requested:written:)``
    ///   when the server wrote less than a request carried, and
    ///   ``SMB2Error/unexpectedResponse(_:)`` when it claims more.
    @discardableResult
    public func write(_ data: inout IOIterator, to file: SMB2FileID, at offset: UInt64 = 0,
                      progress: (Int) -> Void = { _ in }) throws(SMB2Error) -> Int {
        guard (1...SMB2WriteRequest.maxDescriptors).contains(maxDescriptors) else {
            throw .invalidArgument("\(maxDescriptors) buffer descriptors per WRITE (1...\(SMB2WriteRequest.maxDescriptors) fit)")
        }
        guard UInt64(data.count) <= UInt64.max - offset else {
            throw .invalidArgument("\(data.count) bytes at offset \(offset) end past the largest file offset")
        }
        // An inline WRITE is one SMB Direct message: its data fits what one message carries.
        let inlineLimit = min(inlineThreshold, (connection.limits?.maxFragmentedSendSize ?? 0) - SMB2WriteRequest.dataOffset)
        var written = 0
        while data.count > 0 {
            let chunk = min(data.count, maxWriteSize)
            let bytes = chunk > inlineLimit
                ? try writeThroughChannel(&data, chunk: chunk, to: file, at: offset + UInt64(written))
                : try writeInline(&data, chunk: chunk, to: file, at: offset + UInt64(written))
            written += bytes
            progress(written)
        }
        return written
    }

    /// Closes `file`.
    public func close(_ file: SMB2FileID) throws(SMB2Error) {
        let response = try exchange(.close) { SMB2CloseRequest(fileID: file).encode(into: &$0) }
        try SMB2CloseResponse.validate(response)
    }

    // MARK: Writes

    private func writeInline(_ data: inout IOIterator, chunk: Int, to file: SMB2FileID, at offset: UInt64) throws(SMB2Error) -> Int {
        var chunk = chunk
        if data.kind == .xarray {
            // The request states its length before the data is extracted into the
            // sends: stop where a hole stops the data, not in the middle of the message.
            chunk = data.walk(maxBytes: chunk) { $0.length }
            guard chunk > 0 else { throw Self.hole(in: data) }
        }
        var piece = data
        piece.truncate(chunk)
        let before = piece.count
        let response = try exchange(.write, charge: UInt16(Self.creditCharge(chunk)), payload: &piece) {
            SMB2WriteRequest(fileID: file, offset: offset, length: chunk, descriptors: []).encode(into: &$0)
        }
        try Self.expectWritten(SMB2WriteResponse(decoding: response).count, of: chunk)
        data.advance(before - piece.count)
        statistics.inlineWrites += 1
        statistics.inlineBytes += chunk
        return chunk
    }

    private func writeThroughChannel(_ data: inout IOIterator, chunk: Int, to file: SMB2FileID,
                                     at offset: UInt64) throws(SMB2Error) -> Int {
        let registration: SMBDirectRegistration
        do {
            registration = try connection.register(&data, maxSize: chunk, maxDescriptors: maxDescriptors)
        } catch {
            throw .transport(error)
        }
        let length = registration.byteCount
        guard length > 0 else {
            connection.release(registration)
            throw Self.hole(in: data)
        }
        let request = SMB2WriteRequest(fileID: file, offset: offset, length: length, descriptors: registration.descriptors)
        let outcome = Result { () throws(SMB2Error) -> Int in
            let response = try exchange(.write, charge: UInt16(Self.creditCharge(length))) { request.encode(into: &$0) }
            return try SMB2WriteResponse(decoding: response).count
        }
        connection.release(registration)
        try Self.expectWritten(outcome.get(), of: length)
        statistics.rdmaWrites += 1
        statistics.rdmaBytes += length
        statistics.bufferDescriptors += request.descriptors.count
        return length
    }

    /// The error for data whose next byte no memory describes (a hole in an XARRAY).
    private static func hole(in data: IOIterator) -> SMB2Error {
        .invalidArgument("the data has a hole: no memory describes its next byte (\(data.count) bytes left)")
    }

    /// Throws unless the server's WRITE response counts all `length` bytes of the request.
    private static func expectWritten(_ count: Int, of length: Int) throws(SMB2Error) {
        guard count <= length else { throw .unexpectedResponse("a WRITE of \(length) bytes answered with a count of \(count)") }
        guard count == length else { throw .shortWrite(requested: length, written: count) }
    }

    /// The bytes one credit pays for (MS-SMB2 3.1.5.2).
    static var creditSize: Int { 65_536 }

    /// The credits a READ or WRITE of `length` (non-negative) bytes costs (MS-SMB2 3.1.5.2).
    static func creditCharge(_ length: Int) -> Int { max(1, length / creditSize + (length % creditSize == 0 ? 0 : 1)) }

    // MARK: Exchanges

    private func exchange(_ command: SMB2Command, charge: UInt16 = 1, accepting accepted: NTStatus = .success,
                          body: (inout SMB2MessageWriter) -> Void) throws(SMB2Error) -> [UInt8] {
        var nothing = IOIterator(source: UnsafeRawBufferPointer(start: nil, count: 0))
        return try exchange(command, charge: charge, accepting: accepted, payload: &nothing, body: body)
    }

    /// Sends one request (header, `body`, then the bytes of `payload`) and returns
    /// its response, checked to answer it with success or `accepted`.
    private func exchange(_ command: SMB2Command, charge: UInt16, accepting accepted: NTStatus = .success,
                          payload: inout IOIterator, body: (inout SMB2MessageWriter) -> Void) throws(SMB2Error) -> [UInt8] {
        let cost = max(1, Int(charge))
        guard credits >= cost else { throw .unexpectedResponse("the server left \(credits) credits, \(command) needs \(cost)") }
        let messageID = nextMessageID
        var writer = SMB2MessageWriter()
        SMB2Header(command: command, creditCharge: charge, credits: 256, messageID: messageID,
                   treeID: treeID, sessionID: sessionID).encode(into: &writer)
        body(&writer)
        let message = writer.bytes
        let sent = message.withUnsafeBytes { prefix in
            Result { () throws(SMBDirectError) in
                try connection.send(prefix, payload: &payload, keys: connection.sendRegistrations)
            }
        }
        let reply: [UInt8]
        do {
            try sent.get()
            reply = try connection.receiveMessage()
        } catch {
            throw .transport(error)
        }
        nextMessageID += UInt64(cost)
        credits -= cost
        statistics.requests += 1
        let header = try SMB2Header(decoding: reply)
        guard header.isResponse, header.command == command, header.messageID == messageID else {
            throw .unexpectedResponse("\(header.command) for message \(header.messageID), expected \(command) for \(messageID)")
        }
        credits += Int(header.credits)
        guard header.status == .success || header.status == accepted else { throw .status(header.status, command: command) }
        return reply
    }
}
