import IterExtract
import RDMASGE

/// A minimal SMB2 client over SMB Direct: NEGOTIATE (dialect 3.0 or 3.0.2),
/// an anonymous SESSION_SETUP (NTLMSSP NEGOTIATE, then AUTHENTICATE with empty
/// credentials), TREE_CONNECT, CREATE, WRITE, READ and CLOSE (MS-SMB2 3.2).
///
/// A WRITE of more than ``inlineThreshold`` bytes goes through the RDMA channel
/// (`SMB2_CHANNEL_RDMA_V1`): the data's memory is registered, described by buffer
/// descriptors, pulled by the server with RDMA READ, and invalidated once the server
/// has sent the request's final response. Smaller writes go inline, their data
/// extracted straight into the send's SGEs. Either way the data is not copied.
/// A READ of more than ``inlineThreshold`` bytes registers the destination's memory
/// for the server's RDMA WRITE (user pages pinned until the final response); a
/// smaller one gets its data in the response, copied into the destination.
///
/// Writes and reads are pipelined: up to ``depth`` requests are in flight at once, as
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
        /// Reads answered inline (the data in the response).
        public var inlineReads = 0
        /// The bytes the reads answered inline carried.
        public var inlineReadBytes = 0
        /// Reads sent through the RDMA channel.
        public var rdmaReads = 0
        /// The bytes the server wrote with RDMA WRITE for reads sent through the RDMA channel.
        public var rdmaReadBytes = 0
        /// The buffer descriptors the reads sent through the RDMA channel used.
        public var readBufferDescriptors = 0
        /// The most requests in flight at once.
        public var maxRequestsInFlight = 0
        /// Times a WRITE or READ could not be sent, with room in the window, because the
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
    /// Writes and reads larger than this go through the RDMA channel (the kernel's
    /// `rdma_readwrite_threshold` is 4 KiB), and so do those larger than one SMB Direct
    /// message carries, whatever this says.
    public var inlineThreshold: Int
    /// The most buffer descriptors in one RDMA-channel write or read: 1...4,095, as the
    /// request's channel information holds (``write(_:to:at:progress:)`` and
    /// ``read(from:at:into:progress:)`` throw ``SMB2Error/invalidArgument(_:)`` otherwise).
    public var maxDescriptors: Int
    /// The most WRITE or READ requests in flight at once; 1 sends one and waits for its response.
    public let depth: Int
    /// The default of ``depth``.
    public static var defaultDepth: Int { 4 }
    /// Where the pages of user memory the writes and reads pin are counted.
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
    public internal(set) var maxWriteSize = 65_536
    /// The most bytes one READ may ask for: the server's MaxReadSize, and through the
    /// RDMA channel the transport's MaxReadWriteSize too, and at most what a credit
    /// charge can pay for.
    public internal(set) var maxReadSize = 65_536
    /// The credits the client holds: what the server granted and requests have not spent.
    public internal(set) var credits = 1
    /// The most credits the client holds: more granted is a protocol error.
    public static var maxCredits: Int { Int(UInt16.max) }
    /// The counters.
    public internal(set) var statistics = Statistics()
    private var nextMessageID: UInt64 = 0
    /// The requests in flight, by message id.
    var outstanding: SMB2OutstandingRequests

    /// A client on `connection` (the initiator's side) that sends writes and reads of
    /// more than `inlineThreshold` bytes through the RDMA channel, described by at most
    /// `maxDescriptors` buffer descriptors each, with up to `depth` of them in flight,
    /// counting the pages it pins in `ledger`.
    ///
    /// - Precondition: `depth` is 1...65,535 (the table of requests in flight has `depth` entries).
    public init(connection: SMBDirectConnection<Domain>, inlineThreshold: Int = 4096, maxDescriptors: Int = 16,
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
        maxReadSize = max(1, min(Int(body.maxReadSize), transport, Int(UInt16.max) * Self.creditSize))
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

    /// Opens the existing file `name` (relative to the share) for reading
    /// (`FILE_OPEN`, `GENERIC_READ`) and returns it with its size (EndofFile).
    ///
    /// - Throws: ``SMB2Error/invalidArgument(_:)``, before anything is sent, for a
    ///   name longer than 32,767 UTF-16 units; ``SMB2Error/status(_:command:)`` with
    ///   `STATUS_OBJECT_NAME_NOT_FOUND` when there is no such file.
    public func open(_ name: String) throws(SMB2Error) -> (file: SMB2FileID, size: UInt64) {
        var request = try SMB2CreateRequest(name: name)
        request.createDisposition = SMB2CreateRequest.open
        request.desiredAccess = SMB2CreateRequest.readAccess
        let response = try exchange(.create) { request.encode(into: &$0) }
        let body = try SMB2CreateResponse(decoding: response)
        return (body.fileID, body.endOfFile)
    }

    /// Closes `file`.
    public func close(_ file: SMB2FileID) throws(SMB2Error) {
        let response = try exchange(.close) { SMB2CloseRequest(fileID: file).encode(into: &$0) }
        try SMB2CloseResponse.validate(response)
    }

    // MARK: The pipeline

    /// Registers up to `chunk` bytes of `data` for the server's RDMA (read access for a
    /// source, write access for a destination) and advances `data` past them; throws
    /// for a hole at its start, with nothing registered.
    func register(_ data: inout IOIterator, chunk: Int) throws(SMB2Error) -> SMBDirectRegistration {
        let registration: SMBDirectRegistration
        do {
            registration = try connection.register(&data, maxSize: chunk, maxDescriptors: maxDescriptors, ledger: ledger)
        } catch {
            throw .transport(error)
        }
        guard registration.byteCount > 0 else {
            connection.release(registration)
            throw Self.hole(in: data)
        }
        return registration
    }

    /// Moves the bytes of a WRITE or READ in requests of up to `maxSize` bytes, up to
    /// ``depth`` of them in flight as the credits pay for them: while `remaining` says
    /// bytes are left, `post` sends a request for up to the bytes it is given and
    /// returns the bytes it covered; `complete` takes each final response. When
    /// anything fails, the requests in flight are settled (see `settle(after:)`)
    /// before the error is thrown.
    func pipeline(_ command: SMB2Command, maxSize: Int, remaining: () -> Int,
                  post: (Int) throws(SMB2Error) -> Void, complete: (Answer) throws(SMB2Error) -> Void) throws(SMB2Error) {
        var stalled = false
        var failure: SMB2Error?
        while failure == nil, remaining() > 0 || !outstanding.isEmpty {
            do throws(SMB2Error) {
                let left = remaining()
                if left > 0, !outstanding.isFull {
                    let chunk = min(left, maxSize)
                    let cost = Self.creditCharge(chunk)
                    if credits >= cost {
                        stalled = false
                        try post(chunk)
                        continue
                    }
                    guard !outstanding.isEmpty else {
                        throw .unexpectedResponse("the server left \(credits) credits, a \(command) of \(chunk) bytes needs \(cost)")
                    }
                    if !stalled { statistics.creditStalls += 1 }
                    stalled = true
                }
                guard let answer = try collect() else { continue }
                try complete(answer)
            } catch {
                failure = error
            }
        }
        if let failure {
            settle(after: failure)
            throw failure
        }
    }

    /// After `failure` ended a write or read: collects the responses still due, unless the
    /// failure (or one while collecting) leaves the exchange in doubt (a response that
    /// matches nothing, a connection that ended), in which case the session ends; then
    /// releases what every request left in flight retained. The connection is closed
    /// before a registration is released, so that the server cannot reach memory
    /// given back.
    func settle(after failure: SMB2Error) {
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
    static func hole(in data: IOIterator) -> SMB2Error {
        .invalidArgument("the data has a hole: no memory describes its next byte (\(data.count) bytes left)")
    }

    /// The bytes, up to `chunk`, of `data` before a hole stops them: a request states its
    /// length before the data is moved, so it must end where an XARRAY's hole does.
    static func contiguous(_ data: IOIterator, upTo chunk: Int) throws(SMB2Error) -> Int {
        guard data.kind == .xarray else { return chunk }
        let length = data.walk(maxBytes: chunk) { $0.length }
        guard length > 0 else { throw hole(in: data) }
        return length
    }

    /// The bytes one credit pays for (MS-SMB2 3.1.5.2).
    static var creditSize: Int { 65_536 }

    /// The credits a READ or WRITE of `length` (non-negative) bytes costs (MS-SMB2 3.1.5.2).
    static func creditCharge(_ length: Int) -> Int { max(1, length / creditSize + (length % creditSize == 0 ? 0 : 1)) }

    /// The credits the client aims to hold: enough for ``depth`` WRITEs or READs of the largest size.
    private var creditTarget: Int { min(Self.maxCredits, depth * Self.creditCharge(max(maxWriteSize, maxReadSize))) }

    // MARK: Exchanges

    /// A request's final response, its request taken out of the table.
    struct Answer {
        let status: NTStatus
        /// A WRITE's or READ's file offset.
        let offset: UInt64
        /// A WRITE's or READ's bytes (what the request carried or asked for); 0 for other commands.
        let length: Int
        /// The bytes a successful WRITE or READ response counts (checked to be at most
        /// `length`); 0 otherwise.
        let count: Int
        /// An inline READ's destination and where the data is in `reply`.
        let inlineRead: (destination: IOIterator, data: Range<Int>)?
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
    func post(_ command: SMB2Command, charge: Int, offset: UInt64 = 0, length: Int, registration: consuming SMBDirectRegistration?,
              inlineDestination: IOIterator? = nil, payload: inout IOIterator,
              body: (inout SMB2MessageWriter) -> Void) throws(SMB2Error) {
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
            messageID: messageID, command: command, creditsAsked: asked, offset: offset, length: length,
            registration: registration, inlineDestination: inlineDestination))
        statistics.requests += 1
        statistics.maxRequestsInFlight = max(statistics.maxRequestsInFlight, outstanding.count)
    }

    /// Waits for the next response and matches it to its request by MessageId: an
    /// interim `STATUS_PENDING` response marks the request, which keeps its
    /// registration (the server may still be reading the memory), and returns `nil`;
    /// a final response takes the request out of the table, releases its
    /// registration and returns the answer. Either grants credits. A WRITE's or READ's
    /// success is checked against its request before the request leaves the table, so
    /// that a response claiming more than was asked ends the session (see
    /// `settle(after:)`) with the registration still held.
    func collect() throws(SMB2Error) -> Answer? {
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
        let (count, inlineData) = try Self.checkCount(of: reply, header.status, command, length: outstanding.length(at: index),
                                                      registered: outstanding.isRegistered(at: index))
        if outstanding.hasOlder(than: header.messageID) { statistics.outOfOrderResponses += 1 }
        let request = outstanding.remove(at: index)
        let (offset, length) = (request.offset, request.length)
        let inlineRead = inlineData.flatMap { data in request.inlineDestination.map { ($0, data) } }
        if let registration = request.registration { connection.release(registration) }
        return Answer(status: header.status, offset: offset, length: length, count: count, inlineRead: inlineRead, reply: reply)
    }

    /// The bytes a final WRITE or READ response `reply` counts and, for an inline
    /// READ, where its data is; throws ``SMB2Error/unexpectedResponse(_:)`` when it
    /// counts more than the request's `length` or (READ) returns data in a form the
    /// request did not ask for, ``SMB2Error/malformed(_:)`` when the data lies outside the message.
    private static func checkCount(of reply: [UInt8], _ status: NTStatus, _ command: SMB2Command, length: Int,
                                   registered: Bool) throws(SMB2Error) -> (Int, Range<Int>?) {
        guard status == .success else { return (0, nil) }
        switch command {
        case .write:
            let count = try SMB2WriteResponse(decoding: reply).count
            guard count <= length else { throw .unexpectedResponse("a WRITE of \(length) bytes answered with a count of \(count)") }
            return (count, nil)
        case .read:
            let body = try SMB2ReadResponse(decoding: reply)
            if registered {
                guard body.dataLength == 0, body.dataRemaining <= length else {
                    throw .unexpectedResponse("an RDMA-channel READ of \(length) bytes answered with \(body.dataLength) inline "
                                              + "and \(body.dataRemaining) written")
                }
                return (body.dataRemaining, nil)
            }
            guard body.dataLength <= length else {
                throw .unexpectedResponse("an inline READ of \(length) bytes answered with \(body.dataLength)")
            }
            return (body.dataLength, body.inlineData)
        default:
            return (0, nil)
        }
    }
}
