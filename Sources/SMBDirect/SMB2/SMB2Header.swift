/// The 64-byte header of every SMB2 message: MS-SMB2 2.2.1.2 (SYNC) or, with
/// ``asyncFlag`` set, 2.2.1.1 (ASYNC), which carries an AsyncId where the SYNC form
/// has Reserved and TreeId.
public struct SMB2Header: Hashable, Sendable {
    /// The encoded size.
    public static let size = 64
    /// `SMB2_FLAGS_SERVER_TO_REDIR`: the message is a response.
    public static let responseFlag: UInt32 = 0x0000_0001
    /// `SMB2_FLAGS_ASYNC_COMMAND`: the header is the ASYNC form, as an interim
    /// `STATUS_PENDING` response and the final response after it are (MS-SMB2 3.3.4.2).
    public static let asyncFlag: UInt32 = 0x0000_0002
    static let protocolID: [UInt8] = [0xFE, 0x53, 0x4D, 0x42]

    /// The credits the request costs (its message ids).
    public var creditCharge: UInt16
    /// Responses: the status. Requests: 0 (ChannelSequence and Reserved).
    public var status: NTStatus
    /// The command.
    public var command: SMB2Command
    /// Requests: the credits asked for. Responses: the credits granted.
    public var credits: UInt16
    /// Flags; ``responseFlag`` marks a response.
    public var flags: UInt32
    /// The request's first message id.
    public var messageID: UInt64
    /// The tree the request addresses (SYNC form; 0 in the ASYNC form).
    public var treeID: UInt32
    /// The id the server gave an operation it finishes asynchronously (ASYNC form; 0 in the SYNC form).
    public var asyncID: UInt64
    /// The session the request belongs to.
    public var sessionID: UInt64

    /// A header for `command`; a request by default, with a credit charge of 1, status
    /// success and no tree or session. With ``asyncFlag`` in `flags` it is the ASYNC
    /// form, which carries `asyncID` instead of `treeID`.
    ///
    /// - Precondition: `treeID` is 0 in the ASYNC form and `asyncID` is 0 in the SYNC form.
    public init(command: SMB2Command, creditCharge: UInt16 = 1, credits: UInt16, messageID: UInt64,
                status: NTStatus = .success, flags: UInt32 = 0, treeID: UInt32 = 0, asyncID: UInt64 = 0,
                sessionID: UInt64 = 0) {
        precondition(flags & Self.asyncFlag != 0 ? treeID == 0 : asyncID == 0,
                     "a header carries a TreeId (SYNC) or an AsyncId (ASYNC), not both")
        self.creditCharge = creditCharge
        self.status = status
        self.command = command
        self.credits = credits
        self.flags = flags
        self.messageID = messageID
        self.treeID = treeID
        self.asyncID = asyncID
        self.sessionID = sessionID
    }

    /// Whether the message is a response.
    public var isResponse: Bool { flags & Self.responseFlag != 0 }

    /// Whether the message is signed (``SMB2Signer/signedFlag``).
    public var isSigned: Bool { flags & SMB2Signer.signedFlag != 0 }

    /// Whether the header is the ASYNC form.
    public var isAsync: Bool { flags & Self.asyncFlag != 0 }

    /// Decodes the header at the start of `message`, in the SYNC or the ASYNC form;
    /// compound messages (NextCommand) are refused, as this client never sends them.
    public init(decoding message: [UInt8]) throws(SMB2Error) {
        let reader = SMB2MessageReader(message)
        guard message.count >= Self.size, Array(message[0..<4]) == Self.protocolID else {
            throw .malformed("no SMB2 header")
        }
        try reader.expectStructureSize(64, at: 4)
        let code = try reader.integer(UInt16.self, at: 12)
        guard let command = SMB2Command(rawValue: code) else { throw .malformed("unknown command 0x\(String(code, radix: 16))") }
        guard try reader.integer(UInt32.self, at: 20) == 0 else { throw .malformed("compound messages are not supported") }
        self.creditCharge = try reader.integer(UInt16.self, at: 6)
        self.status = NTStatus(rawValue: try reader.integer(UInt32.self, at: 8))
        self.command = command
        self.credits = try reader.integer(UInt16.self, at: 14)
        self.flags = try reader.integer(UInt32.self, at: 16)
        self.messageID = try reader.integer(UInt64.self, at: 24)
        if flags & Self.asyncFlag != 0 {
            self.treeID = 0
            self.asyncID = try reader.integer(UInt64.self, at: 32)
        } else {
            self.treeID = try reader.integer(UInt32.self, at: 36)
            self.asyncID = 0
        }
        self.sessionID = try reader.integer(UInt64.self, at: 40)
    }

    /// Appends the 64 header bytes (no signature) to `writer`.
    package func encode(into writer: inout SMB2MessageWriter) {
        writer.append(Self.protocolID)
        writer.append(UInt16(Self.size))
        writer.append(creditCharge)
        writer.append(status.rawValue)
        writer.append(command.rawValue)
        writer.append(credits)
        writer.append(flags)
        writer.append(UInt32(0))
        writer.append(messageID)
        if isAsync {
            writer.append(asyncID)
        } else {
            writer.append(UInt32(0))
            writer.append(treeID)
        }
        writer.append(sessionID)
        writer.appendZeros(16)
    }
}
