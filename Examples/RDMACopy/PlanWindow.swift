#if canImport(Glibc)
import Glibc
#endif
import IterExtract
import RDMASGE

/// Moves an iterator's bytes through work-request plans, several in flight: each plan
/// takes the next chunk (extracted through the MR cache, pinned for a user-backed
/// iterator), is posted as one chain, and is completed, in posting order, once the
/// window is full or the iterator is used up.
struct PlanWindow<Domain: ProtectionDomain> {
    let endpoint: CopyEndpoint<Domain>
    let cache: MRCache<Domain>
    let ledger: PinLedger
    let tuning: CopyTuning

    /// Moves all of `iterator`; `operation(offset, isLast)` is the plan's operation for
    /// the chunk at `offset` (the last chunk's plan is the last). `progress` gets the
    /// bytes completed so far.
    /// - Throws: ``RDMACopyError/extraction(_:)``, ``RDMACopyError/verbs(_:)``,
    ///   ``RDMACopyError/transferFailed(_:step:)`` for a request that did not succeed.
    ///   Every plan is completed or flushed and released first: nothing stays pinned
    ///   or referenced.
    func run(_ iterator: inout IOIterator, step: String,
             operation: (_ offset: UInt64, _ isLast: Bool) -> WorkRequestPlan.Operation,
             progress: (Int) -> Void) throws(RDMACopyError) {
        let limits = WorkRequestPlan.Limits(maxSGEs: min(tuning.maxSGEs, endpoint.queuePair.capabilities.maxSendSGEs),
                                            maxMessageSize: min(tuning.messageSize, cache.domain.attributes.maxMessageSize))
        let plans = (0..<tuning.window).map { _ in WorkRequestPlan(requestCapacity: tuning.requestsPerPlan, limits: limits) }
        let total = iterator.count
        var inFlight: [WorkRequestPlan] = []
        var next = 0
        var nextID: UInt64 = 0
        var completed = 0
        var failure: RDMACopyError?
        while failure == nil && iterator.count > 0 || !inFlight.isEmpty {
            if failure == nil, iterator.count > 0, inFlight.count < plans.count {
                let plan = plans[next]
                next = (next + 1) % plans.count
                let isLast = iterator.count <= tuning.chunkSize
                do throws(RDMAError) {
                    try plan.build(from: &iterator, operation: operation(UInt64(total - iterator.count), isLast), keys: cache,
                                   ledger: ledger, maxSize: tuning.chunkSize)
                } catch {
                    failure = .extraction(error)
                    continue
                }
                precondition(!isLast || iterator.count == 0, "a chunk fits one plan: \(tuning.requestsPerPlan) requests")
                inFlight.append(plan)
                do throws(VerbsError) {
                    try plan.post(on: endpoint.queuePair, firstID: nextID, signaling: .every)
                } catch {
                    failure = .verbs(error)
                }
                nextID &+= UInt64(plan.requests.count)
            } else {
                let plan = inFlight.removeFirst()
                do throws(VerbsError) {
                    let status = try plan.complete(waitingOn: endpoint.sendQueue, timeout: tuning.timeout)
                    if status != .success, failure == nil { failure = .transferFailed(status, step: step) }
                } catch {
                    // The peer went quiet: the error state flushes what is outstanding.
                    if failure == nil { failure = error.errno == ETIMEDOUT ? .timedOut(step: step) : .verbs(error) }
                    try? endpoint.queuePair.modify(to: .error, remote: nil)
                    _ = try? plan.complete(polling: endpoint.sendQueue)
                }
                completed += plan.byteCount
                if failure == nil { progress(completed) }
            }
        }
        if let failure { throw failure }
    }
}
