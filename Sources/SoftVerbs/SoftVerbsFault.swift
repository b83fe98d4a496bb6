#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Verbs

/// A failure ``SoftVerbs`` injects on purpose, to drive error paths in tests.
///
/// Counting starts when the fault is injected: `nth: 1` fails the very next call.
/// Moving a queue pair to the error state mid-transfer needs no fault: call
/// `QueuePair.modify(to:remote:)` with `QueuePairState.error`.
public enum SoftVerbsFault: Hashable, Sendable {
    /// The `nth` memory registration fails with `ENOMEM`.
    case registration(nth: Int)
    /// The `nth` post (send or receive) is refused with `ENOMEM`, as a full queue would be.
    case post(nth: Int)
    /// The `nth` send-queue request to finish completes with `status` instead of
    /// success (its data may already have moved, as when an acknowledgement is lost),
    /// and its queue pair moves to the error state.
    case completion(nth: Int, status: WorkCompletionStatus)
    /// The `nth` completion polled is delivered twice, as a faulty device or driver
    /// might: consumers must not count or release the same work twice.
    case duplicateCompletion(nth: Int)
    /// The `nth` poll that returns more than one completion returns them in reverse
    /// order (completions of different queues have no order among themselves).
    case reversedPoll(nth: Int)
    /// The `nth` queue pair destruction fails with `EBUSY` and leaves the queue pair
    /// in place, as `ibv_destroy_qp` may.
    case destroyQueuePair(nth: Int)
}

/// Countdowns of the faults in force.
struct SoftVerbsFaults {
    var registration: Int?
    var post: Int?
    var completion: (countdown: Int, status: WorkCompletionStatus)?
    var duplicateCompletion: Int?
    var reversedPoll: Int?
    var destroyQueuePair: Int?

    mutating func inject(_ fault: SoftVerbsFault) {
        switch fault {
        case .registration(let nth):
            precondition(nth > 0, "a fault counts calls from 1")
            registration = nth
        case .post(let nth):
            precondition(nth > 0, "a fault counts calls from 1")
            post = nth
        case .completion(let nth, let status):
            precondition(nth > 0, "a fault counts calls from 1")
            completion = (nth, status)
        case .duplicateCompletion(let nth):
            precondition(nth > 0, "a fault counts calls from 1")
            duplicateCompletion = nth
        case .reversedPoll(let nth):
            precondition(nth > 0, "a fault counts calls from 1")
            reversedPoll = nth
        case .destroyQueuePair(let nth):
            precondition(nth > 0, "a fault counts calls from 1")
            destroyQueuePair = nth
        }
    }

    /// Counts a registration; true when it must fail.
    mutating func registrationFails() -> Bool { Self.tick(&registration) }

    /// Counts a post; true when it must fail.
    mutating func postFails() -> Bool { Self.tick(&post) }

    /// Counts a polled completion; true when it must be delivered twice.
    mutating func completionRepeats() -> Bool { Self.tick(&duplicateCompletion) }

    /// Counts a poll of several completions; true when it must return them reversed.
    mutating func pollReverses() -> Bool { Self.tick(&reversedPoll) }

    /// Counts a queue pair destruction; true when it must fail.
    mutating func destroyFails() -> Bool { Self.tick(&destroyQueuePair) }

    /// Counts a finished send request; the status it must complete with instead of success.
    mutating func completionStatus() -> WorkCompletionStatus? {
        guard let (countdown, status) = completion else { return nil }
        if countdown == 1 {
            completion = nil
            return status
        }
        completion = (countdown - 1, status)
        return nil
    }

    private static func tick(_ countdown: inout Int?) -> Bool {
        guard let n = countdown else { return false }
        if n == 1 {
            countdown = nil
            return true
        }
        countdown = n - 1
        return false
    }
}
