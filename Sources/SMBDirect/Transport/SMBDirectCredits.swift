/// The credit accounting of one side of a connection (MS-SMBD 3.1.1.1 and 3.1.5).
///
/// A send credit is the peer's promise of one posted receive. Every message this side
/// sends spends one; the peer gives them back, as an increment in CreditsGranted, as
/// it reposts receives. CreditsRequested, in the other direction, is a total: the
/// credits a side wants to hold. This side grants the peer a credit only for a
/// receive it has posted and not yet promised, and never beyond the peer's target.
///
/// Deadlock is avoided as the specification suggests: a side spends its last credit
/// only when the peer is left holding a credit of its own, so that someone can
/// always send the next grant.
public struct SMBDirectCredits: Hashable, Sendable {
    /// The messages this side may still send.
    public private(set) var sendCredits = 0
    /// The credits the peer holds: receives promised and not yet consumed.
    public private(set) var peerCredits = 0
    /// The receives posted and not yet consumed.
    public private(set) var postedReceives = 0
    /// The credits the peer wants to hold (its last CreditsRequested).
    public private(set) var peerTarget = 1
    /// The credits this side asks for, as a total.
    public let target: Int
    /// The most credits one message grants.
    public let maxGrant: Int

    /// The accounting of a side that asks for `target` credits (1 through 65,535) and grants
    /// at most `maxGrant` in one message; it holds no credit until the peer grants some.
    public init(target: Int, maxGrant: Int = .max) {
        precondition(target > 0 && target <= Int(UInt16.max), "a credit target is 1...65535")
        precondition(maxGrant > 0, "a grant gives at least one credit")
        self.target = target
        self.maxGrant = maxGrant
    }

    /// Receives that could be promised to the peer now, before the per-message limit.
    public var pendingGrant: Int { max(0, min(postedReceives - peerCredits, peerTarget - peerCredits)) }

    /// Whether a message that grants `grant` credits may be sent now.
    public func maySend(granting grant: Int) -> Bool {
        sendCredits > 1 || (sendCredits == 1 && peerCredits + grant > 0)
    }

    /// Records `count` receives posted.
    public mutating func posted(_ count: Int) { postedReceives += count }

    /// Records the credits the peer granted and the total it asked for, and returns
    /// the credits ignored: this side never holds more than its ``target``, the total
    /// it asked for, however much a peer grants.
    @discardableResult
    public mutating func received(granted: Int, requested: Int) -> Int {
        let kept = min(granted, max(0, target - sendCredits))
        sendCredits += kept
        if requested > 0 { peerTarget = requested }
        return granted - kept
    }

    /// Records a message that arrived, which spent one of the peer's credits and one
    /// posted receive. Returns false when the peer held no credit: a protocol violation.
    public mutating func consumeReceive() -> Bool {
        guard peerCredits > 0, postedReceives > 0 else { return false }
        peerCredits -= 1
        postedReceives -= 1
        return true
    }

    /// Takes the credits the next message grants (up to ``maxGrant``) and counts them as the peer's.
    public mutating func takeGrant() -> Int {
        let grant = min(pendingGrant, maxGrant)
        peerCredits += grant
        return grant
    }

    /// Spends a send credit.
    public mutating func spendSendCredit() {
        precondition(sendCredits > 0, "sent a message without a send credit")
        sendCredits -= 1
    }

    /// Records the first grant of a negotiation: `granted` credits given by the
    /// responder (initiator side, kept up to ``target``) or promised to the initiator
    /// (responder side).
    public mutating func negotiated(sendCredits: Int, peerCredits: Int, peerTarget: Int) {
        self.sendCredits = min(sendCredits, target)
        self.peerCredits = peerCredits
        self.peerTarget = max(1, peerTarget)
    }
}
