/// When and in what order the in-process ``SMB2Server`` answers WRITEs: at once and
/// in order, or as a busy server may (later, last first, after an interim response),
/// so that a client's pipelining meets both.
public struct SMB2WriteScheduling: Hashable, Sendable {
    /// Answers each WRITE first with an interim `STATUS_PENDING` response in the
    /// ASYNC header form (MS-SMB2 3.3.4.2), which grants its credits; the data is
    /// pulled and the final response sent later, as held WRITEs are.
    public var interimResponses: Bool
    /// Answers held WRITEs last first.
    public var reversed: Bool

    /// WRITEs held while `interimResponses` or `reversed` holds: answered in the
    /// first `SMB2Server.serve()` round that finds no new request (the client
    /// waits for an answer), or once `SMB2Server.maxHeldWrites` are held.
    public init(interimResponses: Bool = false, reversed: Bool = false) {
        self.interimResponses = interimResponses
        self.reversed = reversed
    }

    /// Every WRITE answered at once, in order.
    public static let immediate = SMB2WriteScheduling()

    var holds: Bool { interimResponses || reversed }
}
