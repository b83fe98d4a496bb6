#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Waiting for a posted plan: by polling, by sleeping on the queue's completion
/// channel, or by awaiting it. Each waits for the last posted request that asked for a
/// completion (requests of one queue pair complete in order, and errors and flushes
/// always report), then releases the plan, and returns the first status that was not
/// success, or success. The queue should carry this queue pair's sends only.
extension WorkRequestPlan {
    /// Polls `queue` until the plan has completed, then releases it.
    ///
    /// - Throws: `ETIMEDOUT` (call `ibv_poll_cq`) after `maxEmptyPolls` polls in a row
    ///   found nothing, or `EINVAL` when requests went out but none asked for a
    ///   completion; the plan is not released then.
    @discardableResult
    public func complete<Queue: CompletionQueue>(polling queue: Queue, maxEmptyPolls: Int = 1 << 20) throws(VerbsError) -> WorkCompletionStatus {
        var emptyPolls = 0
        return try complete { () throws(VerbsError) -> WorkCompletion? in
            while true {
                if let completion = try queue.poll() {
                    emptyPolls = 0
                    return completion
                }
                emptyPolls += 1
                if emptyPolls >= maxEmptyPolls { return nil }
            }
        }
    }

    /// Sleeps on `queue`'s completion channel until the plan has completed, at most
    /// `timeout` between completions (for ever when `nil`), then releases it. The
    /// thread does not spin (see `CompletionQueue.wait(into:timeout:solicitedOnly:interruption:)`).
    ///
    /// - Throws: `ETIMEDOUT` when `timeout` passed without a completion, `EINVAL` when
    ///   requests went out but none asked for a completion; the plan is not released then.
    /// - Precondition: The queue was created with a channel.
    @discardableResult
    public func complete<Queue: CompletionQueue>(waitingOn queue: Queue, timeout: Duration? = nil) throws(VerbsError) -> WorkCompletionStatus {
        try complete { () throws(VerbsError) -> WorkCompletion? in try queue.wait(timeout: timeout) }
    }

    /// Awaits the plan's completion on `queue` without blocking a thread (the queue's
    /// channel is watched by `loop`), then releases it.
    ///
    /// - Throws: `ECANCELED` when the task is cancelled first, `EINVAL` when requests
    ///   went out but none asked for a completion; the plan is not released then (its
    ///   requests may still be in flight: complete it again, or destroy the queue pair
    ///   and drain the flushes, before releasing).
    /// - Precondition: The queue was created with a channel.
    @discardableResult
    public func complete<Queue: CompletionQueue>(
        on queue: Queue, loop: CompletionEventLoop = .shared
    ) async throws(VerbsError) -> WorkCompletionStatus {
        var outcome = WorkCompletionStatus.success
        if postedCount > 0 {
            let lastID = try lastIDToAwait()
            var completions = queue.completions(on: loop).makeAsyncIterator()
            while true {
                guard let completion = try await completions.next() else {
                    throw VerbsError(.pollCompletionQueue, errno: ECANCELED, "the wait for request \(lastID) was cancelled")
                }
                if outcome == .success, completion.status != .success { outcome = completion.status }
                if completion.id == lastID { break }
            }
        }
        release()
        return outcome
    }

    /// Takes completions from `next` (`nil`: the wait gave up) until the last
    /// signalled request's, then releases the plan.
    private func complete(_ next: () throws(VerbsError) -> WorkCompletion?) throws(VerbsError) -> WorkCompletionStatus {
        var outcome = WorkCompletionStatus.success
        if postedCount > 0 {
            let lastID = try lastIDToAwait()
            while true {
                guard let completion = try next() else {
                    throw VerbsError(.pollCompletionQueue, errno: ETIMEDOUT, "request \(lastID) did not complete")
                }
                if outcome == .success, completion.status != .success { outcome = completion.status }
                if completion.id == lastID { break }
            }
        }
        release()
        return outcome
    }

    /// The identifier of the last posted request that asked for a completion.
    private func lastIDToAwait() throws(VerbsError) -> UInt64 {
        guard let lastID = lastSignalledID else {
            throw VerbsError(.pollCompletionQueue, errno: EINVAL, "no posted request asked for a completion")
        }
        return lastID
    }
}
