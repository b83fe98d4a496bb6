import IterExtract
import RDMASGE

/// A minimal SMB2 client over SMB Direct: NEGOTIATE (dialect 3.0 or 3.0.2),
/// an anonymous SESSION_SETUP (NTLMSSP NEGOTIATE, then AUTHENTICATE with empty
/// credentials), TREE_CONNECT, CREATE, WRITE and CLOSE (MS-SMB2 3.2).
///
/// A WRITE of more than ``inlineThreshold`` bytes goes through the RDMA channel
/// (`SMB2_CHANNEL_RDMA_V1`): the data's memory is registered, described by buffer
/// descriptors, pulled by the server with RDMA READ, and invalidated once the server
/// has sent the request's final response. Smaller writes go inline, their data
/// extracted straight into the send's SGEs. Either way the data is not copied.
///
/// Writes are pipelined: up to ``depth`` WRITE requests are in flight at once, as
/// many as the server's credits pay for, each keeping its registration until its own
/// final response; responses may come in any order and after an interim
/// `STATUS_PENDING` response (MS-SMB2 3.2.5.1.5). Other requests go one at a time.
/// A response the client cannot match to a request in flight (an unknown or repeated
/// MessageId) or credits past 65,535 end the session: the connection is closed
/// before any registration is released.
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
        /// The most requests in flight at once.
        public var maxRequestsInFlight = 0
        /// Times a WRITE could not be sent, with room in the window, because the
        /// server's credits did not pay for it: it waited for a response.
        public var creditStalls = 0
        /// Interim `STATUS_PENDING` responses received.
        public var interimResponses = 0
        /// Responses that arrived before the response to an earlier request.
        public var outOfOrderResponses = 0
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
    /// ``SMB2Error/invalidArgument(_:)`` otherwise). Memory that is contiguous goes as
    /// one descriptor, whatever its folios; this bounds scattered memory.
    public var maxDescriptors: Int
    /// The default of ``maxDescriptors``: 8. A server may charge for each descriptor:
    /// ksmbd takes at least one of its rw credits per descriptor and waits, without an
    /// answer, for credits it does not have. It has one credit per 255 pages of its
    /// SMB Direct I/O size (on rxe): 9 at its default 8 MiB, 1 at 1 MiB or less.
    public static var defaultMaxDescriptors: Int { 8 }
    /// The most WRITE requests in flight at once; 1 sends one and waits for its response.
    public let depth: Int
    /// The default of ``depth``.
    public static var defaultDepth: Int { 4 }
    /// Where the pages of user memory the writes pin are counted.
    public let ledger: PinLedger
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
    /// The credits the client holds: what the server granted and requests have not spent.
    public private(set) var credits = 1
    /// The most credits the client holds: more granted is a protocol error.
    public static var maxCredits: Int { Int(UInt16.max) }
    /// The counters.
    public private(set) var statistics = Statistics()
    private var nextMessageID: UInt64 = 0
    /// The requests in flight, by message id.
    private var outstanding: SMB2OutstandingRequests

    /// A client on `connection` (the initiator's side) that sends writes of more than
    /// `inlineThreshold` bytes through the RDMA channel, described by at most
    /// `maxDescriptors` buffer descriptors each, with up to `depth` of them in flight,
    /// counting the pages it pins in `ledger`.
    ///
    /// - Precondition: `depth` is 1...65,535 (the table of requests in flight has `depth` entries).
    public init(connection: SMBDirectConnection<Domain>, inlineThreshold: Int = 4096, maxDescriptors: Int = defaultMaxDescriptors,
                depth: Int = defaultDepth, ledger: PinLedger = .shared) {
        precondition((1...Self.maxCredits).contains(depth), "a depth of \(depth) requests (1...\(Self.maxCredits))")
        self.connection = connection
        self.inlineThreshold = inlineThreshold
        self.maxDescriptors = maxDescriptors
        self.depth = depth
        self.ledger = ledger
        outstanding = SMB2OutstandingRequests(capacity: depth)
    }

    /// Negotiates the dialect (3.0 or 3.0.2).
    public func negotiate() throws(SMB2Error) {
        let guid = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let response = try exchange(.negotiate) { SMB2NegotiateRequest(clientGUID: guid).encode(into: &$0) }
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
    /// up to ``depth`` of them in flight, calling `progress` with the bytes the server
    /// has acknowledged so far after each final response. Advances `data` past the
    /// bytes sent.
    ///
    /// When a request fails, the requests in flight are answered before the error is
    /// thrown (their registrations released), so that the session goes on, unless the
    /// failure ends it.
    ///
    /// - Returns: The bytes written.
    /// - Throws: ``SMB2Error/invalidArgument(_:)``, before anything is sent and with
    ///   `data` where it was, when the range written would end past `UInt64.max` or
    ///   ``maxDescriptors`` is outside 1...4,095, and, with `data` just past the bytes
    ///   sent, when `data` reaches a hole (an XARRAY index with no folio: the bytes
    ///   before it are written, none after); ``SMB2Error/status(_:command:)`` when the
    ///   server refused a request; ``SMB2Error/shortWrite(requested:written:)``
    ///   when the server wrote less than a request carried, and
    ///   ``SMB2Error/unexpectedResponse(_:)`` when it claims more, answers a request
    ///   not in flight, or grants credits past ``maxCredits`` (the session ends then).
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
        var sent = 0
        var written = 0
        var stalled = false
        var failure: SMB2Error?
        while failure == nil, data.count > 0 || !outstanding.isEmpty {
            do throws(SMB2Error) {
                if data.count > 0, !outstanding.isFull {
                    let chunk = min(data.count, maxWriteSize)
                    let cost = Self.creditCharge(chunk)
                    if credits >= cost {
                        stalled = false
                        sent += chunk > inlineLimit
                            ? try postThroughChannel(&data, chunk: chunk, to: file, at: offset + UInt64(sent))
                            : try postInline(&data, chunk: chunk, to: file, at: offset + UInt64(sent))
                        continue
                    }
                    guard !outstanding.isEmpty else {
                        throw .unexpectedResponse("the server left \(credits) credits, a WRITE of \(chunk) bytes needs \(cost)")
                    }
                    if !stalled { statistics.creditStalls += 1 }
                    stalled = true
                }
                guard let answer = try collect() else { continue }
                guard answer.status == .success else { throw .status(answer.status, command: .write) }
                try Self.expectWritten(SMB2WriteResponse(decoding: answer.reply).count, of: answer.length)
                written += answer.length
                progress(written)
            } catch {
                failure = error
            }
        }
        if let failure {
            settle(after: failure)
            throw failure
        }
        return written
    }

    /// Closes `file`.
    public func close(_ file: SMB2FileID) throws(SMB2Error) {
        let response = try exchange(.close) { SMB2CloseRequest(fileID: file).encode(into: &$0) }
        try SMB2CloseResponse.validate(response)
    }

    // MARK: Writes

    /// Sends an inline WRITE of up to `chunk` bytes of `data` (fewer when a hole
    /// stops them) and advances `data` past them; returns the bytes sent.
    private func postInline(_ data: inout IOIterator, chunk: Int, to file: SMB2FileID, at offset: UInt64) throws(SMB2Error) -> Int {
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
        try post(.write, charge: Self.creditCharge(chunk), length: chunk, registration: nil, payload: &piece) {
            SMB2WriteRequest(fileID: file, offset: offset, length: chunk, descriptors: []).encode(into: &$0)
        }
        data.advance(before - piece.count)
        statistics.inlineWrites += 1
        statistics.inlineBytes += chunk
        return chunk
    }

    /// Registers up to `chunk` bytes of `data`, sends a WRITE that describes them,
    /// and advances `data` past them; returns the bytes registered. The registration
    /// goes with the request into the table of requests in flight.
    private func postThroughChannel(_ data: inout IOIterator, chunk: Int, to file: SMB2FileID,
                                    at offset: UInt64) throws(SMB2Error) -> Int {
        let registration: SMBDirectRegistration
        do {
            registration = try connection.register(&data, maxSize: chunk, maxDescriptors: maxDescriptors, ledger: ledger)
        } catch {
            throw .transport(error)
        }
        let length = registration.byteCount
        guard length > 0 else {
            connection.release(registration)
            throw Self.hole(in: data)
        }
        let request = SMB2WriteRequest(fileID: file, offset: offset, length: length, descriptors: registration.descriptors)
        var nothing = IOIterator(source: UnsafeRawBufferPointer(start: nil, count: 0))
        try post(.write, charge: Self.creditCharge(length), length: length, registration: registration, payload: &nothing) {
            request.encode(into: &$0)
        }
        statistics.rdmaWrites += 1
        statistics.rdmaBytes += length
        statistics.bufferDescriptors += request.descriptors.count
        return length
    }

    /// After `failure` ended a write: collects the responses still due, unless the
    /// failure (or one while collecting) leaves the exchange in doubt (a response that
    /// matches nothing, a connection that ended), in which case the session ends; then
    /// releases what every request left in flight retained. The connection is closed
    /// before a registration is released, so that the server cannot reach memory
    /// given back.
    private func settle(after failure: SMB2Error) {
        var endsSession = Self.endsSession(failure)
        while !endsSession, !outstanding.isEmpty {
            do { _ = try collect() } catch { endsSession = true }
        }
        if endsSession { connection.disconnect() }
        while let request = outstanding.removeAny() {
            if let registration = request.registration { connection.release(registration) }
        }
    }

    /// Whether `error` shows a server whose responses can no longer be trusted.
    private static func endsSession(_ error: SMB2Error) -> Bool {
        switch error {
        case .malformed, .unexpectedResponse: true
        case .transport, .status, .shortWrite, .invalidArgument, .unsupportedDialect: false
        }
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

    /// The credits the client aims to hold: enough for ``depth`` WRITEs of ``maxWriteSize`` bytes.
    private var creditTarget: Int { min(Self.maxCredits, depth * Self.creditCharge(maxWriteSize)) }

    // MARK: Exchanges

    /// A request's final response, its request taken out of the table.
    private struct Answer {
        let status: NTStatus
        /// A WRITE's bytes; 0 for other commands.
        let length: Int
        /// The whole response.
        let reply: [UInt8]
    }

    private func exchange(_ command: SMB2Command, charge: Int = 1, accepting accepted: NTStatus = .success,
                          body: (inout SMB2MessageWriter) -> Void) throws(SMB2Error) -> [UInt8] {
        precondition(outstanding.isEmpty, "\(command) is sent with no request in flight")
        guard credits >= charge else { throw .unexpectedResponse("the server left \(credits) credits, \(command) needs \(charge)") }
        var nothing = IOIterator(source: UnsafeRawBufferPointer(start: nil, count: 0))
        try post(command, charge: charge, length: 0, registration: nil, payload: &nothing, body: body)
        var answer: Answer?
        do throws(SMB2Error) {
            while answer == nil { answer = try collect() }
        } catch {
            settle(after: error)
            throw error
        }
        guard let answer else { preconditionFailure("the loop ends with an answer") }
        guard answer.status == .success || answer.status == accepted else { throw .status(answer.status, command: command) }
        return answer.reply
    }

    /// Sends one request (header, `body`, then the bytes of `payload`), asking for the
    /// credits that bring the client back to its target once every request in flight
    /// is answered, and keeps it, with `registration`, in the table of requests in
    /// flight. `charge` (positive) is what it costs; 0 goes in the header of a NEGOTIATE.
    ///
    /// - Precondition: The table has room and the client holds `charge` credits.
    private func post(_ command: SMB2Command, charge: Int, length: Int, registration: consuming SMBDirectRegistration?,
                      payload: inout IOIterator, body: (inout SMB2MessageWriter) -> Void) throws(SMB2Error) {
        precondition(!outstanding.isFull && credits >= charge, "\(command) is sent with room and credits for it")
        let messageID = nextMessageID
        let asked = max(1, min(Int(UInt16.max), creditTarget - (credits - charge) - outstanding.creditsAwaited))
        var writer = SMB2MessageWriter()
        SMB2Header(command: command, creditCharge: command == .negotiate ? 0 : UInt16(charge), credits: UInt16(asked),
                   messageID: messageID, treeID: treeID, sessionID: sessionID).encode(into: &writer)
        body(&writer)
        let message = writer.bytes
        let sent = message.withUnsafeBytes { prefix in
            Result { () throws(SMBDirectError) in
                try connection.send(prefix, payload: &payload, keys: connection.sendRegistrations, ledger: ledger)
            }
        }
        do {
            try sent.get()
        } catch {
            // Nothing reached the server, or the connection ended: the memory is no longer exposed.
            if let registration { connection.release(registration) }
            throw .transport(error)
        }
        nextMessageID += UInt64(charge)
        credits -= charge
        outstanding.insert(SMB2OutstandingRequests.Request(
            messageID: messageID, command: command, creditsAsked: asked, length: length, registration: registration))
        statistics.requests += 1
        statistics.maxRequestsInFlight = max(statistics.maxRequestsInFlight, outstanding.count)
    }

    /// Waits for the next response and matches it to its request by MessageId: an
    /// interim `STATUS_PENDING` response marks the request, which keeps its
    /// registration (the server may still be reading the memory), and returns `nil`;
    /// a final response takes the request out of the table, releases its
    /// registration and returns the answer. Either grants credits.
    private func collect() throws(SMB2Error) -> Answer? {
        let reply: [UInt8]
        do { reply = try connection.receiveMessage() } catch { throw .transport(error) }
        let header = try SMB2Header(decoding: reply)
        guard header.isResponse else { throw .unexpectedResponse("a request from the server") }
        guard let index = outstanding.index(of: header.messageID) else {
            throw .unexpectedResponse("a \(header.command) response for message \(header.messageID), which is not in flight")
        }
        let command = outstanding.command(at: index)
        guard header.command == command else {
            throw .unexpectedResponse("\(header.command) for message \(header.messageID), expected \(command)")
        }
        guard Int(header.credits) <= Self.maxCredits - credits else {
            throw .unexpectedResponse("\(header.credits) credits granted to a client holding \(credits): past \(Self.maxCredits)")
        }
        credits += Int(header.credits)
        outstanding.answerCredits(at: index)
        let pending = outstanding.asyncID(at: index)
        if header.status == .pending {
            guard header.isAsync, pending == nil else {
                throw .unexpectedResponse("an interim response for message \(header.messageID) "
                                          + (pending == nil ? "without an AsyncId" : "after another"))
            }
            outstanding.markPending(at: index, asyncID: header.asyncID)
            statistics.interimResponses += 1
            return nil
        }
        if let pending, header.isAsync, header.asyncID != pending {
            throw .unexpectedResponse("AsyncId \(header.asyncID) for message \(header.messageID), interim was \(pending)")
        }
        if outstanding.hasOlder(than: header.messageID) { statistics.outOfOrderResponses += 1 }
        let request = outstanding.remove(at: index)
        let length = request.length
        if let registration = request.registration { connection.release(registration) }
        return Answer(status: header.status, length: length, reply: reply)
    }
}
