#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IterExtract
import RDMASGE

/// The in-process receiver: an SMB2 server over SMB Direct that answers exactly
/// NEGOTIATE (3.0, 3.0.2, 3.1.1 with its contexts), SESSION_SETUP (NTLMv2 for the
/// users it knows, anonymous when it knows none), TREE_CONNECT, CREATE, WRITE, READ
/// and CLOSE (MS-SMB2 3.3), and writes and reads the files of a local directory.
///
/// A user's session signs when either side requires it: every response is signed
/// (but interim ones), and a request of that session that is not signed with its key
/// is refused with `STATUS_ACCESS_DENIED` (MS-SMB2 3.3.5.2.4).
///
/// A WRITE through the RDMA channel is served as a server must: the data is pulled
/// from the client's buffer descriptors by RDMA READ into a registered staging
/// buffer, then written to the file. A READ through the RDMA channel is read from the
/// file into the staging buffer and pushed by RDMA WRITE into the client's buffers;
/// the response has DataLength 0 and DataRemaining the bytes written (MS-SMB2
/// 3.3.5.12). A CREATE with `FILE_OPEN` opens an existing file for reading, any other
/// disposition creates or truncates one for writing. Any other command is answered
/// with `STATUS_NOT_SUPPORTED`.
///
/// Every request is treated as hostile: one the server cannot parse is answered with
/// `STATUS_INVALID_PARAMETER`, a WRITE or READ outside the range a file offset can
/// hold or longer than MaxReadWriteSize likewise, and a CREATE beyond ``maxOpenFiles`` open files with
/// `STATUS_TOO_MANY_OPENED_FILES`. A message that breaks the exchange itself (not a
/// request, or out of sequence) stops the server.
///
/// Credits: each response grants what the request asked for (at least one), up to
/// ``maxCredits`` held by the client at once, as ksmbd grants them. WRITEs and READs
/// are answered at once and in order, or, with ``writeScheduling``, as a busy server
/// may answer them: later, last first, after an interim `STATUS_PENDING` response.
public final class SMB2Server<Domain: ProtectionDomain> {
    /// What the server has done.
    public struct Statistics: Hashable, Sendable {
        /// Requests answered.
        public var requests = 0
        /// Bytes written to files.
        public var bytesWritten = 0
        /// The part of ``bytesWritten`` pulled by RDMA READ.
        public var rdmaReadBytes = 0
        /// Bytes read from files for READs.
        public var bytesRead = 0
        /// The part of ``bytesRead`` pushed by RDMA WRITE.
        public var rdmaWriteBytes = 0
        /// The statistics of a server that has answered nothing.
        public init() {}
    }

    /// The transport.
    public let connection: SMBDirectConnection<Domain>
    /// The users who may set up a session, and their passwords; none lets anyone in anonymously.
    public let users: [String: String]
    /// Whether every user's session must sign (NEGOTIATE's `SMB2_NEGOTIATE_SIGNING_REQUIRED`).
    public let requiresSigning: Bool
    /// For tests: the message id whose response goes out with a wrong signature, as a
    /// tampering peer would send it.
    package var corruptsSignatureOf: UInt64?
    /// For tests: the message id whose response goes out unsigned in a signing session.
    package var leavesUnsignedResponseTo: UInt64?
    /// The directory files are written into.
    public let root: String
    /// The share name a tree connect must name.
    public let shareName: String
    /// The most files open at once.
    public let maxOpenFiles: Int
    /// The default of ``maxOpenFiles``.
    public static var defaultMaxOpenFiles: Int { 128 }
    /// The most credits the client may hold at once: a response grants what its
    /// request asked for up to this, and at least one.
    public var maxCredits: Int
    /// The default of ``maxCredits`` (ksmbd's default `max_credits`).
    public static var defaultMaxCredits: Int { 8192 }
    /// When and in what order WRITEs and READs are answered; at once and in order by default.
    public var writeScheduling = SMB2WriteScheduling.immediate
    /// The most WRITEs and READs held for ``writeScheduling`` at once.
    public static var maxHeldWrites: Int { 64 }
    /// The counters.
    public internal(set) var statistics = Statistics()
    /// The error that stopped the server, if one did.
    public private(set) var failure: SMB2Error?
    /// The WRITEs and READs held for ``writeScheduling``, not answered yet.
    public var heldWriteCount: Int { heldWrites.count }

    let staging: UnsafeMutableRawBufferPointer
    let stagingRegion: Domain.Region
    var sessionID: UInt64 = 0
    var isAuthenticated = false
    private var treeID: UInt32 = 0
    /// The open files' descriptors by volatile file id.
    package internal(set) var openFiles: [UInt64: Int32] = [:]
    var nextFileID: UInt64 = 1
    /// The dialect negotiated, 0 before NEGOTIATE.
    var dialect: UInt16 = 0
    /// The connection's and, during SESSION_SETUP, the session's preauthentication integrity hash (3.1.1).
    var preauth: SMB2PreauthIntegrity?
    var sessionPreauth: SMB2PreauthIntegrity?
    /// The NTLM NEGOTIATE and CHALLENGE of the session being set up, which the AUTHENTICATE's MIC covers.
    var ntlmExchange: (negotiate: [UInt8], challenge: NTLMChallenge)?
    /// The signer of the user's session: it signs the final SESSION_SETUP response and,
    /// when ``signsSession``, every response, and checks every request.
    var signer: SMB2Signer?
    /// Whether the session signs: either side required it.
    var signsSession = false
    private var expectedMessageID: UInt64 = 0
    /// The credits the client holds: granted and not spent.
    private var clientCredits = 1
    /// WRITEs and READs held for ``writeScheduling``, each with the AsyncId its interim response gave it, if one did.
    private var heldWrites: [(header: SMB2Header, request: [UInt8], asyncID: UInt64?)] = []
    private var nextAsyncID: UInt64 = 1

    /// A server on `connection` (the responder) that writes into the directory `root`
    /// and serves the share `shareName`, with at most `maxOpenFiles` files open at once
    /// and at most `maxCredits` credits held by the client. With `users` (name to
    /// password), only those users may set up a session; with `requiresSigning`, their
    /// sessions sign.
    ///
    /// - Precondition: `connection` is a responder's, and `maxOpenFiles` and `maxCredits` are positive.
    public init(connection: SMBDirectConnection<Domain>, root: String, shareName: String = "share",
                maxOpenFiles: Int = defaultMaxOpenFiles, maxCredits: Int = defaultMaxCredits,
                users: [String: String] = [:], requiresSigning: Bool = false) throws(SMBDirectError) {
        precondition(connection.role == .responder, "the server answers on the responder's side")
        precondition(maxOpenFiles > 0, "a server opens at least one file")
        precondition(maxCredits > 0, "a server grants at least one credit")
        self.maxCredits = maxCredits
        self.connection = connection
        self.users = users
        self.requiresSigning = requiresSigning
        self.root = root
        self.shareName = shareName
        self.maxOpenFiles = maxOpenFiles
        let size = connection.configuration.maxReadWriteSize
        staging = .allocate(byteCount: size, alignment: pageSize)
        do {
            stagingRegion = try connection.domain.registerMemory(
                address: UInt(bitPattern: staging.baseAddress), length: size, access: .localWrite)
        } catch {
            staging.deallocate()
            throw .verbs(error)
        }
    }

    deinit {
        for descriptor in openFiles.values { close(descriptor) }
        try? stagingRegion.deregister()
        staging.deallocate()
    }

    /// Answers every request that has arrived, without waiting for more, and the
    /// WRITEs and READs held for ``writeScheduling`` when none arrived. After an error the server
    /// disconnects and stops: ``failure`` tells why.
    public func serve() {
        guard failure == nil else { return }
        do throws(SMB2Error) {
            var arrived = false
            while let request = try nextRequest() {
                arrived = true
                try take(request)
            }
            if !arrived { try answerHeldWrites() }
        } catch {
            failure = error
            connection.disconnect()
        }
    }

    private func nextRequest() throws(SMB2Error) -> [UInt8]? {
        do { return try connection.nextMessage() } catch { throw .transport(error) }
    }

    // MARK: Requests

    /// Answers `request`, or holds it (after an interim response) for ``writeScheduling``.
    private func take(_ request: [UInt8]) throws(SMB2Error) {
        let header = try admit(request)
        guard header.command == .write || header.command == .read, writeScheduling.holds else {
            return try send(respond(to: header, request))
        }
        if heldWrites.count == Self.maxHeldWrites { try answerHeldWrites() }
        var asyncID: UInt64?
        if writeScheduling.interimResponses {
            let id = nextAsyncID
            nextAsyncID += 1
            asyncID = id
            var interim = SMB2MessageWriter(capacity: SMB2Header.size + 9)
            SMB2Header(command: header.command, creditCharge: header.creditCharge, credits: grant(header.credits),
                       messageID: header.messageID, status: .pending, flags: SMB2Header.responseFlag | SMB2Header.asyncFlag,
                       asyncID: id, sessionID: header.sessionID).encode(into: &interim)
            SMB2ErrorResponse.encode(into: &interim)
            try send(interim.bytes)
        }
        heldWrites.append((header, request, asyncID))
    }

    /// Does what the held WRITEs and READs ask and sends their final responses, in the order ``writeScheduling`` asks.
    private func answerHeldWrites() throws(SMB2Error) {
        let writes = writeScheduling.reversed ? heldWrites.reversed() : heldWrites
        heldWrites.removeAll(keepingCapacity: true)
        for write in writes { try send(respond(to: write.header, write.request, asyncID: write.asyncID)) }
    }

    private func send(_ response: [UInt8]) throws(SMB2Error) {
        do { try connection.send(response) } catch { throw .transport(error) }
    }

    /// The response to `request`, one whole SMB2 message, as ``serve()`` sends it
    /// without ``writeScheduling``, after doing what the request asks. Throws for a
    /// message that breaks the exchange (no SMB2 request, or not the message id
    /// expected), after which the server must stop.
    package func response(to request: [UInt8]) throws(SMB2Error) -> [UInt8] {
        respond(to: try admit(request), request)
    }

    /// Decodes the header of `request`, checks that it is a request in sequence, and
    /// counts the credits it spends.
    private func admit(_ request: [UInt8]) throws(SMB2Error) -> SMB2Header {
        let header = try SMB2Header(decoding: request)
        guard !header.isResponse else { throw .malformed("a response sent to the server") }
        guard !header.isAsync else { throw .malformed("an ASYNC request (this server cancels nothing)") }
        guard header.messageID == expectedMessageID else {
            throw .malformed("message id \(header.messageID), expected \(expectedMessageID)")
        }
        let cost = max(1, Int(header.creditCharge))
        expectedMessageID += UInt64(cost)
        clientCredits = max(0, clientCredits - cost)
        return header
    }

    /// The credits a response grants for a request that asked for `requested`: that
    /// many, up to ``maxCredits`` held by the client, and at least one.
    private func grant(_ requested: UInt16) -> UInt16 {
        let granted = max(1, min(Int(requested), maxCredits - clientCredits))
        clientCredits += granted
        return UInt16(granted)
    }

    /// Does what the admitted request asks and returns its final response; `asyncID`
    /// names the operation an interim response announced (which granted the credits).
    private func respond(to header: SMB2Header, _ request: [UInt8], asyncID: UInt64? = nil) -> [UInt8] {
        statistics.requests += 1
        var writer = SMB2MessageWriter()
        let status: NTStatus
        do {
            status = try checkSignature(of: request, header) ?? handle(header, request, body: &writer)
        } catch {
            // A request this server cannot parse is refused, as a server refuses it.
            status = .invalidParameter
            writer = SMB2MessageWriter()
        }
        var response = SMB2MessageWriter(capacity: SMB2Header.size + writer.count)
        let flags = SMB2Header.responseFlag | (asyncID == nil ? 0 : SMB2Header.asyncFlag)
        SMB2Header(command: header.command, creditCharge: header.creditCharge,
                   credits: asyncID == nil ? grant(header.credits) : 0, messageID: header.messageID, status: status,
                   flags: flags, treeID: asyncID != nil ? 0 : header.command == .treeConnect ? treeID : header.treeID,
                   asyncID: asyncID ?? 0,
                   sessionID: header.command == .sessionSetup ? sessionID : header.sessionID).encode(into: &response)
        if status.isError && status != .moreProcessingRequired {
            SMB2ErrorResponse.encode(into: &response)
        } else {
            response.append(writer.bytes)
        }
        var message = response.bytes
        seal(&message, header, request, status)
        return message
    }

    /// Handles one request, appending the response body to `body`; returns the status.
    private func handle(_ header: SMB2Header, _ request: [UInt8], body: inout SMB2MessageWriter) throws(SMB2Error) -> NTStatus {
        if header.command != .negotiate, header.command != .sessionSetup {
            guard isAuthenticated, header.sessionID == sessionID else { return .userSessionDeleted }
            if header.command != .treeConnect, header.treeID != treeID || treeID == 0 { return .networkNameDeleted }
        }
        switch header.command {
        case .negotiate:
            return try negotiate(SMB2NegotiateRequest(decoding: request), body: &body)
        case .sessionSetup:
            return try setUpSession(header, request, body: &body)
        case .treeConnect:
            let path = try SMB2TreeConnectRequest(decoding: request).path
            guard path.split(separator: "\\").last.map(String.init)?.lowercased() == shareName.lowercased() else {
                return .badNetworkName
            }
            treeID = 1
            SMB2TreeConnectResponse(shareType: SMB2TreeConnectResponse.diskShare, maximalAccess: 0x001F_01FF).encode(into: &body)
            return .success
        case .create:
            return try create(SMB2CreateRequest(decoding: request), body: &body)
        case .write:
            let write = try SMB2WriteRequest(decoding: request, maxTransferSize: connection.configuration.maxReadWriteSize)
            guard Int(header.creditCharge) >= SMB2Client<Domain>.creditCharge(write.length) else { return .invalidParameter }
            return try self.write(write, request, body: &body)
        case .read:
            // The length is checked against MaxReadWriteSize first, before anything else is read.
            let read = try SMB2ReadRequest(decoding: request, maxTransferSize: connection.configuration.maxReadWriteSize)
            guard Int(header.creditCharge) >= SMB2Client<Domain>.creditCharge(read.length) else { return .invalidParameter }
            return try self.read(read, body: &body)
        case .close:
            let fileID = try SMB2CloseRequest(decoding: request).fileID
            guard let descriptor = openFiles.removeValue(forKey: fileID.volatile) else { return .fileClosed }
            close(descriptor)
            SMB2CloseResponse.encode(into: &body)
            return .success
        default:
            return .notSupported
        }
    }
}
