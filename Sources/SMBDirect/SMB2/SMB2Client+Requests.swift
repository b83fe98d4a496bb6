import IterExtract
import RDMASGE

// How requests go out and responses come back: the window of requests in flight,
// credits, and matching responses to requests by MessageId (MS-SMB2 3.2.4.1, 3.2.5.1).
extension SMB2Client {
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
        case .malformed, .unexpectedResponse, .badSignature, .signingUnavailable: true
        case .transport, .status, .shortWrite, .invalidArgument, .unsupportedDialect, .extraction: false
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
    package static func creditCharge(_ length: Int) -> Int { max(1, length / creditSize + (length % creditSize == 0 ? 0 : 1)) }

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

    func exchange(_ command: SMB2Command, charge: Int = 1, accepting accepted: NTStatus = .success,
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
        var message = writer.bytes
        do throws(SMB2Error) {
            try seal(&message, command, payload: payload)
        } catch {
            if let registration { connection.release(registration) }
            throw error
        }
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
        try checkSignature(of: reply, header)
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
