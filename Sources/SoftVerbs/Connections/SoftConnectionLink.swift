#if canImport(Glibc)
import Glibc
#endif
import Locking
import Verbs

/// What the two sides of one ``SoftConnection`` share: whether it is still up, each
/// side's queue of events and the `eventfd(2)` readable while that queue holds one.
///
/// The link knows the queue pairs by number only, so that neither side keeps the
/// other's queue pair alive; a queue pair already destroyed is skipped.
final class SoftConnectionLink: @unchecked Sendable {
    /// One side of the link: 0 for the requester, 1 for the accepting side.
    typealias Side = Int

    private struct State {
        var connected = true
        var events: [[ConnectionEvent]] = [[.established], [.established]]
    }

    private let device: SoftVerbs
    private let queuePairs: [UInt32]
    /// Each side's descriptor, readable while its queue holds an event.
    let descriptors: [Int32]
    private let state = LockedValue(State())

    /// A link between the requester's queue pair and the accepting side's, both
    /// established: each side's queue starts with `ConnectionEvent.established`.
    init(device: SoftVerbs, requester: UInt32, acceptor: UInt32) throws(VerbsError) {
        self.device = device
        queuePairs = [requester, acceptor]
        let first = try makeEventDescriptor(for: .accept)
        do throws(VerbsError) {
            descriptors = [first, try makeEventDescriptor(for: .accept)]
        } catch {
            close(first)
            throw error
        }
        for descriptor in descriptors { SoftVerbsState.signal(descriptor) }
    }

    deinit { for descriptor in descriptors { close(descriptor) } }

    /// The oldest event of `side`, if any; its descriptor stays readable while more wait.
    func takeEvent(_ side: Side) -> ConnectionEvent? {
        state.withLock { state in
            guard !state.events[side].isEmpty else {
                SoftVerbsState.drain(descriptors[side])
                return nil
            }
            let event = state.events[side].removeFirst()
            if state.events[side].isEmpty { SoftVerbsState.drain(descriptors[side]) }
            return event
        }
    }

    /// Ends the link once: both queue pairs move to the error state (flushing what is
    /// outstanding) before both sides see `ConnectionEvent.disconnected`. A queue
    /// pair no longer connected to the other one (reset, perhaps reused for another
    /// connection, or destroyed) is left alone.
    func disconnect() {
        state.withLock { state in
            guard state.connected else { return }
            state.connected = false
            device.state.withLock { soft in
                for (number, peer) in zip(queuePairs, queuePairs.reversed()) where soft.pairs[number]?.remote == peer {
                    soft.moveToError(number)
                }
            }
            for side in 0..<2 {
                state.events[side].append(.disconnected)
                SoftVerbsState.signal(descriptors[side])
            }
        }
    }
}
