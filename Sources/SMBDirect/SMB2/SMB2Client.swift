import IterExtract
import RDMASGE
import ScatterList

/// A minimal SMB2 client over SMB Direct: NEGOTIATE (dialect 3.0, 3.0.2 or 3.1.1, with
/// the 3.1.1 preauthentication integrity hash), SESSION_SETUP (NTLMv2 with a user and
/// password, or anonymous), TREE_CONNECT, CREATE, WRITE, READ and CLOSE (MS-SMB2 3.2).
///
/// When the client or the server requires signing, every message of a user's session
/// is signed and every response's signature checked (AES-CMAC, MS-SMB2 3.1.4.1); a
/// response that does not verify ends the session. A signature covers the message it
/// is in, not what the RDMA channel moves, so a signing client sends every WRITE and
/// READ inline, as the kernel's cifs client does: no memory is registered for the
/// server, and each request carries at most what one SMB Direct message does.
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
        /// The bytes the reads sent through the RDMA channel registered for the server's RDMA WRITE.
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
    /// Memory that is contiguous goes as one descriptor, whatever its folios; this
    /// bounds scattered memory.
    public var maxDescriptors: Int
    /// The default of ``maxDescriptors``: 8. A server may charge for each descriptor:
    /// ksmbd takes at least one of its rw credits per descriptor and waits, without an
    /// answer, for credits it does not have. It has one credit per 255 pages of its
    /// SMB Direct I/O size (on rxe): 9 at its default 8 MiB, 1 at 1 MiB or less.
    public static var defaultMaxDescriptors: Int { 8 }
    /// The most WRITE or READ requests in flight at once; 1 sends one and waits for its response.
    public let depth: Int
    /// The default of ``depth``.
    public static var defaultDepth: Int { 4 }
    /// Where the pages of user memory the writes and reads pin are counted.
    public let ledger: PinLedger
    /// The dialect the server chose.
    public internal(set) var dialect: UInt16 = 0
    /// The session this client uses.
    public internal(set) var sessionID: UInt64 = 0
    /// The tree this client uses.
    public private(set) var treeID: UInt32 = 0
    /// Whether the server made the session a guest or null session.
    public internal(set) var sessionFlags: UInt16 = 0
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
    /// Whether this client requires its sessions to sign, whatever the server asks.
    public let requiresSigning: Bool
    /// Whether the server requires signing (its NEGOTIATE response's SecurityMode).
    public internal(set) var serverRequiresSigning = false
    /// The algorithm that signs this session's messages; `nil` when they are not signed.
    public var signingAlgorithm: SMB2SigningAlgorithm? { signer?.algorithm }
    /// Whether WRITEs and READs larger than ``inlineThreshold`` may go through the RDMA
    /// channel: not when the session signs, as signatures do not cover the channel's data.
    public var usesRDMAChannel: Bool { signer == nil }
    var nextMessageID: UInt64 = 0
    /// The connection's preauthentication integrity hash (dialect 3.1.1), from NEGOTIATE.
    var preauth: SMB2PreauthIntegrity?
    /// The session's preauthentication integrity hash while SESSION_SETUP runs.
    var sessionPreauth: SMB2PreauthIntegrity?
    /// Signs requests and checks responses once the session signs.
    var signer: SMB2Signer?
    /// The table the payload of a signed request is described in, reused from request to request.
    lazy var signingTable = ScatterTable()
    /// The requests in flight, by message id.
    var outstanding: SMB2OutstandingRequests

    /// A client on `connection` (the initiator's side) that sends writes and reads of
    /// more than `inlineThreshold` bytes through the RDMA channel, described by at most
    /// `maxDescriptors` buffer descriptors each, with up to `depth` of them in flight,
    /// counting the pages it pins in `ledger`; with `requiresSigning`, its sessions sign
    /// every message even when the server does not ask for it.
    ///
    /// - Precondition: `depth` is 1...65,535 (the table of requests in flight has `depth` entries).
    public init(connection: SMBDirectConnection<Domain>, inlineThreshold: Int = 4096, maxDescriptors: Int = defaultMaxDescriptors,
                depth: Int = defaultDepth, ledger: PinLedger = .shared, requiresSigning: Bool = false) {
        precondition((1...Self.maxCredits).contains(depth), "a depth of \(depth) requests (1...\(Self.maxCredits))")
        self.connection = connection
        self.inlineThreshold = inlineThreshold
        self.maxDescriptors = maxDescriptors
        self.depth = depth
        self.ledger = ledger
        self.requiresSigning = requiresSigning
        outstanding = SMB2OutstandingRequests(capacity: depth)
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
}
