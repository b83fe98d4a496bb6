#if RDMA
import IterExtract
import RDMASGE

/// RDMA WRITE of 64 KiB messages on a connected queue pair into a peer's buffer
/// (wrapping around it), each message built by extracting an IOVEC of 16 separate
/// 4 KiB buffers through an MR cache, for a fixed volume, with up to `depth` plans in
/// flight (a plan per message, released when its completion comes back).
struct Throughput<Domain: ProtectionDomain> {
    let queuePair: Domain.QueuePairType
    /// The queue `queuePair` reports its sends to, and nothing else.
    let queue: Domain.CompletionQueueType
    let target: RemoteBuffer
    /// The cache the messages' SGEs resolve through; it should know nothing of
    /// memory that is gone (each run maps its buffers anew).
    let keys: MRCache<Domain>

    /// What the queue pair needs for `depth` messages in flight.
    static func capabilities(depth: Int) -> QueuePairCapabilities {
        QueuePairCapabilities(maxSendWorkRequests: depth, maxReceiveWorkRequests: 1, maxSendSGEs: 16, maxReceiveSGEs: 1)
    }

    struct Measurement {
        var bytes: Int
        var seconds: Double
        /// Mebibytes per second, the unit perftest's `MB/sec` column uses (its
        /// `--report_gbits` help: "MB=2^20 byte").
        var mebibytesPerSecond: Double { Double(bytes) / seconds / Double(1 << 20) }
    }

    /// A stream that stopped before its volume. By the time it is thrown, every
    /// request that went out has completed (the queue pair was moved to the error
    /// state to flush the rest) and every plan is released.
    struct Interrupted: Error, CustomStringConvertible {
        enum Cause {
            /// A completion that was not a success: the first one.
            case completion(WorkCompletion)
            /// A post the queue pair refused.
            case refused(VerbsError)
        }

        let cause: Cause
        /// The messages that completed successfully.
        let delivered: Int
        /// The completions taken after the first failure (flushed requests).
        let flushed: Int

        var description: String {
            let first = switch cause {
            case .completion(let completion): "completion \(completion)"
            case .refused(let error): "refused post: \(error)"
            }
            return "stream stopped by \(first) after \(delivered) messages; \(flushed) more flushed"
        }
    }

    /// Writes `volume` bytes with up to `depth` messages in flight. `watch` runs
    /// whenever a poll finds nothing (to take connection events, say).
    /// - Throws: ``Interrupted`` when a request fails or is refused; `Failure` when
    ///   the MR cache did not register each buffer exactly once, or after 120 s.
    func run(volume: Int, depth: Int, watch: () throws -> Void = {}) throws -> Measurement {
        let memory = try SeparateBuffers(count: 16)
        let message = memory.byteCount
        let missesBefore = keys.statistics.misses
        let limits = WorkRequestPlan.Limits(maxSGEs: 16, maxMessageSize: message)
        let plans = (0..<depth).map { _ in WorkRequestPlan(requestCapacity: 1, limits: limits) }
        var free = Array(plans.indices.reversed())
        let messages = volume / message
        let slots = target.length / message
        var posted = 0, taken = 0, delivered = 0, flushed = 0
        var failure: Interrupted.Cause?
        let start = now()
        let deadline = start + 120
        while taken < posted || (failure == nil && posted < messages) {
            while failure == nil, posted < messages, let slot = free.popLast() {
                var iterator = memory.iterator()
                let remote = target.address + UInt64((posted % slots) * message)
                let bytes = try plans[slot].build(from: &iterator, operation: .rdmaWrite(remoteAddress: remote, rkey: target.rkey),
                                                  keys: keys)
                guard bytes == message, plans[slot].requests.count == 1 else {
                    plans[slot].release()
                    throw Failure("a message planned as \(plans[slot].requests.count) requests of \(bytes) bytes")
                }
                do {
                    try plans[slot].post(on: queuePair, firstID: UInt64(slot), signaling: .every)
                } catch {
                    // One request per plan: a refused post sent nothing out.
                    plans[slot].release()
                    free.append(slot)
                    failure = .refused(error)
                    try? queuePair.modify(to: .error, remote: nil)
                    break
                }
                posted += 1
            }
            guard let completion = try queue.poll() else {
                try watch()
                guard now() < deadline else { throw Failure("\(taken) of \(messages) messages within 120 s") }
                continue
            }
            plans[Int(completion.id)].release()
            free.append(Int(completion.id))
            taken += 1
            if failure != nil {
                flushed += 1
            } else if completion.status == .success {
                delivered += 1
            } else {
                failure = .completion(completion)
                // What is still in flight flushes at once instead of waiting for retries.
                try? queuePair.modify(to: .error, remote: nil)
            }
        }
        if let failure { throw Interrupted(cause: failure, delivered: delivered, flushed: flushed) }
        let seconds = now() - start
        guard keys.statistics.misses - missesBefore == 16 else {
            throw Failure("MR cache misses \(keys.statistics.misses - missesBefore), expected one per buffer")
        }
        return Measurement(bytes: messages * message, seconds: seconds)
    }
}
#endif
