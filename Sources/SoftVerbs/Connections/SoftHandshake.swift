#if canImport(Glibc)
import Glibc
#endif
import Locking
import Verbs

/// One connection attempt between ``SoftConnection/connect(to:port:queuePair:parameters:timeout:)``
/// and the listening side: what the requester sent, where the attempt stands, and an
/// `eventfd(2)` the requester sleeps on until the listening side answers.
final class SoftHandshake: @unchecked Sendable {
    /// Where the attempt stands.
    enum Phase {
        /// Queued at the listener or taken as a request, not answered yet.
        case waiting
        /// The listening side is moving both queue pairs; the requester waits for the
        /// outcome even past its timeout.
        case accepting
        /// Accepted: the requester's side of the connection, for it to take.
        case accepted(SoftConnection)
        /// Rejected, with the rejection's private data (empty when the listener closed).
        case rejected(privateData: [UInt8])
        /// The accept failed; the error the requester reports.
        case failed(VerbsError)
        /// The requester gave up (its timeout passed) before an answer.
        case withdrawn
    }

    /// The requester's queue pair.
    let queuePair: SoftQueuePair
    /// What the requester sent.
    let parameters: ConnectionParameters
    /// The address the requester connected to, which is also its own in process.
    let requesterHost: String
    let phase = LockedValue(Phase.waiting)
    /// Readable once the phase is final (accepted, rejected or failed).
    let descriptor: Int32

    init(queuePair: SoftQueuePair, parameters: ConnectionParameters, requesterHost: String) throws(VerbsError) {
        self.queuePair = queuePair
        self.parameters = parameters
        self.requesterHost = requesterHost
        descriptor = try makeEventDescriptor(for: .connect)
    }

    deinit { close(descriptor) }

    /// Answers the attempt with `outcome` when it still waits; whether it did.
    @discardableResult
    func answer(_ outcome: Phase) -> Bool {
        let answered = phase.withLock { phase in
            guard case .waiting = phase else { return false }
            phase = outcome
            return true
        }
        if answered { SoftVerbsState.signal(descriptor) }
        return answered
    }

    /// Ends an accept (begun by moving the phase to `accepting`) with `outcome`.
    func finishAccepting(_ outcome: Phase) {
        phase.withLock { phase in
            guard case .accepting = phase else { preconditionFailure("finishing an accept that did not begin") }
            phase = outcome
        }
        SoftVerbsState.signal(descriptor)
    }
}
