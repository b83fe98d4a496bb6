#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CEventPoll
import Locking

/// One dedicated thread that watches the descriptors of completion channels and
/// devices with `epoll(7)` and resumes the Swift tasks waiting on them.
///
/// Swift concurrency must never block a thread of its pool in `poll(2)` or
/// `ibv_get_cq_event`, and a thread per queue does not scale to many connections; so
/// `async` waits (``CompletionQueue/completions(on:solicitedOnly:)``,
/// ``VerbsDevice/events(on:)``) suspend as continuations that this loop resumes. It
/// watches a descriptor only while a task waits on it, so an idle channel costs
/// nothing and a channel nobody waits on is left to its queue's blocking
/// ``CompletionQueue/wait(into:timeout:solicitedOnly:interruption:)``. When a watched descriptor
/// becomes readable the loop drains it (``CompletionChannel/takeEvents()``) and resumes
/// the waiters whose condition now holds. Cancelling a waiting task resumes it at
/// once, and the loop stops watching a descriptor nobody waits on.
///
/// A program with its own event loop can skip this one and watch
/// ``CompletionChannel/fileDescriptor`` and ``VerbsDevice/eventFileDescriptor`` itself.
public final class CompletionEventLoop: @unchecked Sendable {
    /// The loop `async` waits use unless told otherwise; its thread starts on first use.
    public static let shared = CompletionEventLoop()

    /// What one suspended task waits for.
    struct Waiter {
        var id: UInt64
        var isReady: () -> Bool
        /// Whether the descriptor being readable is itself what the task waits for.
        var wakesOnReadable: Bool
        var continuation: CheckedContinuation<WaitOutcome, Never>
    }

    /// A watched descriptor: how to drain it, and who waits on it.
    struct Watch {
        var drain: () throws(VerbsError) -> Void
        var waiters: [Waiter]
    }

    struct State {
        var watches: [Int32: Watch] = [:]
        /// The descriptor of each waiter, for cancellation.
        var waiterDescriptors: [UInt64: Int32] = [:]
        var nextID: UInt64 = 1
    }

    private let epoll: Int32
    private let state = LockedValue(State())

    /// Starts a loop on a thread of its own. The loop lives as long as the process.
    public init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed (errno \(errno))")
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            let loop = Unmanaged<CompletionEventLoop>.fromOpaque(context!).takeRetainedValue()
            loop.run()
            return nil
        }, context)
        precondition(started == 0, "pthread_create failed (\(started))")
        pthread_detach(thread)
    }

    /// How a wait ended.
    enum WaitOutcome: Sendable {
        case ready
        case cancelled
        case failed(VerbsError)
    }

    /// Suspends until `isReady()` holds after the loop drained `descriptor` with
    /// `drain` (or, with `wakesOnReadable`, until the descriptor is readable), until
    /// the task is cancelled, or until draining fails. `isReady` is asked once at once
    /// (under the loop's lock) and again after every drain.
    func wait(
        on descriptor: Int32, drain: @escaping () throws(VerbsError) -> Void, wakesOnReadable: Bool = false,
        until isReady: @escaping () -> Bool
    ) async -> WaitOutcome {
        let id = state.withLock { state in
            defer { state.nextID &+= 1 }
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WaitOutcome, Never>) in
                let immediate: WaitOutcome? = state.withLock { state in
                    // The task's flag is set before its cancellation handler runs, so a
                    // cancellation either shows here or finds the registered waiter.
                    if Task.isCancelled { return .cancelled }
                    if isReady() { return .ready }
                    let waiter = Waiter(id: id, isReady: isReady, wakesOnReadable: wakesOnReadable, continuation: continuation)
                    if state.watches[descriptor] == nil {
                        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: descriptor))
                        guard epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) == 0 else {
                            return .failed(VerbsError(.getCompletionEvent, errno: errno, "epoll_ctl could not watch descriptor \(descriptor)"))
                        }
                        state.watches[descriptor] = Watch(drain: drain, waiters: [waiter])
                    } else {
                        state.watches[descriptor]!.waiters.append(waiter)
                    }
                    state.waiterDescriptors[id] = descriptor
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            cancel(id)
        }
    }

    /// Resumes waiter `id` as cancelled, unless it is not waiting (any more).
    private func cancel(_ id: UInt64) {
        let continuation: CheckedContinuation<WaitOutcome, Never>? = state.withLock { state in
            guard let descriptor = state.waiterDescriptors.removeValue(forKey: id) else { return nil }
            guard let index = state.watches[descriptor]?.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            let waiter = state.watches[descriptor]!.waiters.remove(at: index)
            unwatchIfIdle(descriptor, &state)
            return waiter.continuation
        }
        continuation?.resume(returning: .cancelled)
    }

    /// Stops watching `descriptor` when nobody waits on it.
    private func unwatchIfIdle(_ descriptor: Int32, _ state: inout State) {
        guard state.watches[descriptor]?.waiters.isEmpty == true else { return }
        state.watches[descriptor] = nil
        epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, nil)
    }

    /// The loop: waits for readable descriptors, drains each, resumes the waiters
    /// whose condition holds.
    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 32)
        while true {
            let ready = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), -1) }
            if ready < 0 {
                precondition(errno == EINTR, "epoll_wait failed (errno \(errno))")
                continue
            }
            var resumed: [(CheckedContinuation<WaitOutcome, Never>, WaitOutcome)] = []
            state.withLock { state in
                for event in events[..<Int(ready)] {
                    let descriptor = event.data.fd
                    guard let watch = state.watches[descriptor] else { continue }
                    var failure: VerbsError?
                    do throws(VerbsError) { try watch.drain() } catch { failure = error }
                    var waiting: [Waiter] = []
                    for waiter in watch.waiters {
                        if let failure {
                            resumed.append((waiter.continuation, .failed(failure)))
                        } else if waiter.wakesOnReadable || waiter.isReady() {
                            resumed.append((waiter.continuation, .ready))
                        } else {
                            waiting.append(waiter)
                            continue
                        }
                        state.waiterDescriptors[waiter.id] = nil
                    }
                    state.watches[descriptor]!.waiters = waiting
                    unwatchIfIdle(descriptor, &state)
                }
            }
            for (continuation, outcome) in resumed { continuation.resume(returning: outcome) }
        }
    }
}
