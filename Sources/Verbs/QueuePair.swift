/// The states of a queue pair, as `enum ibv_qp_state` names them.
public enum QueuePairState: String, Sendable, CustomStringConvertible {
    /// `IBV_QPS_RESET`: just created; nothing may be posted.
    case reset
    /// `IBV_QPS_INIT`: receives may be posted.
    case initialized
    /// `IBV_QPS_RTR`: ready to receive; connected to a remote queue pair.
    case readyToReceive
    /// `IBV_QPS_RTS`: ready to send.
    case readyToSend
    /// `IBV_QPS_ERR`: every outstanding and newly posted request completes with
    /// ``WorkCompletionStatus/workRequestFlushError``.
    case error

    /// The short name libibverbs documentation uses: `RESET`, `INIT`, `RTR`, `RTS` or `ERR`.
    public var description: String {
        switch self {
        case .reset: "RESET"
        case .initialized: "INIT"
        case .readyToReceive: "RTR"
        case .readyToSend: "RTS"
        case .error: "ERR"
        }
    }
}

/// The sizes a queue pair is created with (`struct ibv_qp_cap`, plus `sq_sig_all`).
public struct QueuePairCapabilities: Hashable, Sendable {
    /// The deepest send queue (`max_send_wr`).
    public var maxSendWorkRequests: Int
    /// The deepest receive queue (`max_recv_wr`).
    public var maxReceiveWorkRequests: Int
    /// The most SGEs in one send request (`max_send_sge`).
    public var maxSendSGEs: Int
    /// The most SGEs in one receive request (`max_recv_sge`).
    public var maxReceiveSGEs: Int
    /// The most bytes one send request may carry inline (`max_inline_data`).
    public var maxInlineData: Int
    /// Whether every send request completes with a completion, signalled or not (`sq_sig_all`).
    public var signalsAll: Bool

    /// Queue-pair sizes; by default 64 requests deep on each queue, 6 SGEs per request,
    /// no inline data, and completions for signalled send requests only.
    public init(maxSendWorkRequests: Int = 64, maxReceiveWorkRequests: Int = 64, maxSendSGEs: Int = 6,
                maxReceiveSGEs: Int = 6, maxInlineData: Int = 0, signalsAll: Bool = false) {
        self.maxSendWorkRequests = maxSendWorkRequests
        self.maxReceiveWorkRequests = maxReceiveWorkRequests
        self.maxSendSGEs = maxSendSGEs
        self.maxReceiveSGEs = maxReceiveSGEs
        self.maxInlineData = maxInlineData
        self.signalsAll = signalsAll
    }
}

/// What a peer needs to know to connect to a queue pair: its number, the packet
/// sequence number it starts sending with, and the address of its port (LID, GID and
/// active MTU).
///
/// The two sides of a connection exchange endpoints by any means (a socket, a file,
/// a message of another protocol) and move their queue pairs to RTR with the peer's.
/// Its `Codable` form is a stable shape of five keys:
///
/// ```json
/// {"qpn":17,"psn":9137415,"lid":0,"gid":"0000:0000:0000:0000:0000:ffff:c0a8:0102","mtu":1024}
/// ```
///
/// The GID is eight groups of four hex digits, as sysfs spells it. An endpoint comes
/// from a peer, so decoding validates it: a queue pair number or PSN of more than 24
/// bits, a GID that is not 16 bytes in that spelling, an MTU that is not one of
/// ``PathMTU``'s sizes, a number out of its type's range or a missing key throws a
/// `DecodingError`.
public struct QueuePairEndpoint: Hashable, Sendable, Codable {
    /// The queue pair number (`qp_num`; 24 bits).
    public var number: UInt32
    /// The packet sequence number the queue pair's first request goes out with: its
    /// `sq_psn`, and the peer's `rq_psn` (24 bits).
    public var packetSequenceNumber: UInt32
    /// The port's local identifier (`lid`; 0 on RoCE, where the GID routes).
    public var lid: UInt16
    /// The port's global identifier: 16 bytes, all zero for none. SoftVerbs uses the
    /// device's name.
    public var gid: [UInt8]
    /// The port's active MTU.
    public var mtu: PathMTU

    /// One more than the largest queue pair number or PSN: both have 24 bits.
    public static let numberLimit: UInt32 = 1 << 24

    /// The endpoint of queue pair `number` that starts at `packetSequenceNumber`, on the
    /// port with `lid`, `gid` and `mtu`.
    public init(number: UInt32, packetSequenceNumber: UInt32 = 0, lid: UInt16 = 0, gid: [UInt8], mtu: PathMTU = .bytes4096) {
        self.number = number
        self.packetSequenceNumber = packetSequenceNumber
        self.lid = lid
        self.gid = gid
        self.mtu = mtu
    }

    /// Why a queue pair cannot connect to this endpoint (a number or PSN beyond 24
    /// bits, a GID that is not 16 bytes), or `nil` when it can.
    package var defect: String? {
        if number >= Self.numberLimit { return "queue pair number \(number) has more than 24 bits" }
        if packetSequenceNumber >= Self.numberLimit { return "PSN \(packetSequenceNumber) has more than 24 bits" }
        if gid.count != 16 { return "a GID has 16 bytes, not \(gid.count)" }
        return nil
    }

    /// Whether ``gid`` has a byte that is not zero; an all-zero GID is none, and a
    /// packet to it needs no global route header.
    package var hasGID: Bool { gid.contains { $0 != 0 } }

    private enum CodingKeys: String, CodingKey {
        case number = "qpn", packetSequenceNumber = "psn", lid, gid, mtu
    }

    /// Decodes and validates an endpoint, as the type's description lists.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        number = try container.decode(UInt32.self, forKey: .number)
        packetSequenceNumber = try container.decode(UInt32.self, forKey: .packetSequenceNumber)
        lid = try container.decode(UInt16.self, forKey: .lid)
        mtu = try container.decode(PathMTU.self, forKey: .mtu)
        let spelled = try container.decode(String.self, forKey: .gid)
        guard let gid = Self.gid(spelled) else {
            throw DecodingError.dataCorruptedError(forKey: .gid, in: container,
                                                   debugDescription: "a GID is eight groups of four hex digits, not \"\(spelled.prefix(64))\"")
        }
        self.gid = gid
        if number >= Self.numberLimit {
            throw DecodingError.dataCorruptedError(forKey: .number, in: container,
                                                   debugDescription: "queue pair number \(number) has more than 24 bits")
        }
        if packetSequenceNumber >= Self.numberLimit {
            throw DecodingError.dataCorruptedError(forKey: .packetSequenceNumber, in: container,
                                                   debugDescription: "PSN \(packetSequenceNumber) has more than 24 bits")
        }
    }

    /// Encodes the endpoint in the shape the type's description shows.
    /// - Throws: `EncodingError.invalidValue` for a GID that is not 16 bytes.
    public func encode(to encoder: any Encoder) throws {
        guard gid.count == 16 else {
            throw EncodingError.invalidValue(gid, EncodingError.Context(
                codingPath: encoder.codingPath + [CodingKeys.gid], debugDescription: "a GID has 16 bytes, not \(gid.count)"))
        }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(number, forKey: .number)
        try container.encode(packetSequenceNumber, forKey: .packetSequenceNumber)
        try container.encode(lid, forKey: .lid)
        try container.encode(Self.spelling(gid), forKey: .gid)
        try container.encode(mtu, forKey: .mtu)
    }

    /// `gid` as eight colon-separated groups of four lowercase hex digits.
    private static func spelling(_ gid: [UInt8]) -> String {
        stride(from: 0, to: 16, by: 2).map { i in
            let group = String(UInt16(gid[i]) << 8 | UInt16(gid[i + 1]), radix: 16)
            return String(repeating: "0", count: 4 - group.count) + group
        }.joined(separator: ":")
    }

    /// The 16 bytes `text` spells as eight colon-separated groups of four hex digits,
    /// or `nil` when it spells anything else.
    private static func gid(_ text: String) -> [UInt8]? {
        let groups = text.utf8.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard groups.count == 8, groups.allSatisfy({ $0.count == 4 }) else { return nil }
        var digits: [UInt8] = []
        digits.reserveCapacity(32)
        for character in groups.joined() {
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(character - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digits.append(character - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digits.append(character - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        return stride(from: 0, to: 32, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }
}

/// A reliable-connected queue pair: a send queue and a receive queue, connected to
/// exactly one remote queue pair.
public protocol QueuePair: AnyObject, Sendable {
    /// What a peer uses to connect to this queue pair; its PSN is chosen at random when
    /// the queue pair is created.
    var endpoint: QueuePairEndpoint { get }
    /// The current state. The corresponding C function is `ibv_query_qp`.
    var state: QueuePairState { get }
    /// The sizes it was created with.
    var capabilities: QueuePairCapabilities { get }

    /// Moves the queue pair to `state`: reset → init → RTR (which needs `remote`) → RTS;
    /// any state → error or reset. Moving to error flushes every outstanding request.
    /// RTR connects to `remote`'s number and expects its PSN, on a path with the smaller
    /// of the two MTUs; RTS starts sending at the queue pair's own ``endpoint``'s PSN.
    /// The corresponding C function is `ibv_modify_qp`.
    /// - Throws: `EINVAL` for any other transition, RTR without a remote endpoint, or
    ///   a remote endpoint whose number or PSN has more than 24 bits or whose GID is not
    ///   16 bytes.
    func modify(to state: QueuePairState, remote: QueuePairEndpoint?) throws(VerbsError)

    /// Posts a send-queue request. The corresponding C function is `ibv_post_send`.
    /// - Throws: `EINVAL` in a state that cannot send, with more SGEs than
    ///   ``QueuePairCapabilities/maxSendSGEs``, or inline data beyond the limit;
    ///   `ENOMEM` when the send queue is full. A refused request is not queued.
    func postSend(_ request: SendWorkRequest) throws(VerbsError)

    /// Posts a chain of send-queue requests in one call, in order: one doorbell for
    /// all of them on a device. The corresponding C function is `ibv_post_send` with
    /// the requests linked by `next`.
    /// - Throws: What ``postSend(_:)`` lists, with ``VerbsError/failedRequest`` set to
    ///   the position of the refused request: those before it were posted, it and the
    ///   ones after it were not.
    func postSend(chain requests: UnsafeBufferPointer<SendWorkRequest>) throws(VerbsError)

    /// Posts a receive-queue request. The corresponding C function is `ibv_post_recv`.
    /// - Throws: `EINVAL` in the reset state or with more SGEs than
    ///   ``QueuePairCapabilities/maxReceiveSGEs``; `ENOMEM` when the receive queue is full.
    func postReceive(_ request: ReceiveWorkRequest) throws(VerbsError)

    /// Destroys the queue pair. The corresponding C function is `ibv_destroy_qp`.
    func close() throws(VerbsError)
}

extension QueuePair {
    /// Connects two queue pairs to each other and makes both ready to send: each goes
    /// reset → init → RTR → RTS, as an out-of-band exchange of endpoints would do.
    public static func connect<Peer: QueuePair>(_ local: Self, _ remote: Peer) throws(VerbsError) {
        for state in [QueuePairState.initialized, .readyToReceive, .readyToSend] {
            try local.modify(to: state, remote: state == .readyToReceive ? remote.endpoint : nil)
            try remote.modify(to: state, remote: state == .readyToReceive ? local.endpoint : nil)
        }
    }
}
