#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX thread running a closure, for tests and examples that need a real second
/// thread (a peer that blocks, a waiter that must not be a task of the concurrency
/// pool). Joined with ``join()``; a thread never joined is detached when released.
public final class JoinableThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private var thread = pthread_t()
    private var joined = false

    /// Starts `body` on a new thread, after `delay` when one is given.
    public init(after delay: Duration = .zero, _ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body {
            if delay > .zero {
                let (seconds, attoseconds) = delay.components
                usleep(useconds_t(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
            }
            body()
        }).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed (\(status))")
    }

    /// Waits until the thread has finished.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    deinit { if !joined { pthread_detach(thread) } }

    /// Runs `body(0..<count)` on `count` threads at once and waits for all of them.
    public static func run(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let threads = (0..<count).map { index in JoinableThread { body(index) } }
        for thread in threads { thread.join() }
    }
}
